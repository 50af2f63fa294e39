"""The command line: help texts, user mistakes as one line with exit code 2, and the commands' outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from motiontransfer.cli import main
from motiontransfer.data.video_io import probe


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help_lists_every_command_with_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0
    assert "demo" in out and "Run the embedded default" in out
    assert "make-dataset" in out and "Render a procedural dataset" in out


def test_command_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["make-dataset", "--help"], capsys)
    assert code == 0
    assert "--videos" in out and "default: 100" in out
    assert "--format" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["make-dataset", "faces"], "--out"),
        (["make-dataset", "dragons", "--out", "x"], "dragons"),
        (["make-dataset", "faces", "--out", "x", "--size", "abc"], "--size"),
        (["make-dataset", "faces", "--out", "x", "--size", "8"], "--size"),
        (["make-dataset", "faces", "--out", "x", "--videos", "0"], "--videos"),
        (["make-dataset", "faces", "--out", "x", "--format", "avi"], "--format"),
        (["make-dataset", "faces", "--out", "x", "--preview", "p.txt"], "--preview"),
        (["demo", "--frames", "0"], "--frames"),
        (["demo", "--model", "fomm-dragons"], "--model"),
        (["no-such-command"], "no-such-command"),
    ],
)
def test_user_mistakes_print_one_line_and_exit_2(args: list[str], needle: str,
                                                  capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(args, capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("motiontransfer: error:") and needle in lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "x").exists(), "nothing is written on a user mistake"


def test_console_entry_point_runs_as_a_module() -> None:
    result = subprocess.run([sys.executable, "-m", "motiontransfer", "make-dataset", "faces"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("motiontransfer: error:") and "Traceback" not in result.stderr


def test_make_dataset_writes_fomm_layout_sidecars_and_preview(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ds"
    code, stdout, err = run_cli(["make-dataset", "shapes", "--out", str(out), "--videos", "3", "--test-videos", "1",
                                 "--frames", "5", "--size", "32", "--preview", str(tmp_path / "p.png")], capsys)
    assert code == 0, err
    train = sorted(p.name for p in (out / "train").iterdir())
    assert len([n for n in train if n.endswith(".mp4")]) == 3
    assert len([n for n in train if n.endswith(".json")]) == 3
    assert len(list((out / "test").glob("*.mp4"))) == 1
    video = sorted((out / "train").glob("*.mp4"))[0]
    info = probe(video)
    assert (info.width, info.height) == (32, 32) and info.num_frames == 5
    meta = json.loads(video.with_suffix(".json").read_text())
    assert meta["name"] == video.stem and meta["family"] == "shapes"
    assert len(meta["keypoints"]) == 5 and len(meta["keypoints"][0]) == len(meta["keypoint_names"])
    assert len(meta["visibility"][0]) == len(meta["keypoint_names"])
    assert meta["action"] in meta["motion"].values()
    assert (tmp_path / "p.png").is_file() and "wrote" in stdout


def test_make_dataset_png_frames_match_the_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec
    from motiontransfer.data.video_io import read_frames

    out = tmp_path / "ds"
    code, _, err = run_cli(["make-dataset", "faces", "--out", str(out), "--videos", "1", "--test-videos", "0",
                            "--frames", "3", "--size", "32", "--format", "png", "--seed", "7"], capsys)
    assert code == 0, err
    folder = next(p for p in (out / "train").iterdir() if p.is_dir())
    frames = read_frames(folder, [0, 2])
    source = ProceduralSource(ProceduralSpec("faces", size=32, videos=1, frames=3, seed=7))
    expected = source.frame(0, 2).image
    assert np.abs(frames[1].permute(1, 2, 0).numpy() - expected).max() <= 0.5 / 255 + 1e-6


def test_demo_animates_with_the_bundled_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, err = run_cli(["demo", "--out", str(tmp_path), "--frames", "8"], capsys)
    assert code == 0, err
    video, viz = probe(tmp_path / "demo.mp4"), probe(tmp_path / "demo-viz.mp4")
    assert video.num_frames == 8 and (video.width, video.height) == (256, 256)  # 64-pixel model, shown 4x
    assert viz.num_frames == 8 and viz.width > 5 * 256  # source | driving | occlusion | prediction | truth
    assert str(tmp_path / "demo.mp4") in stdout and str(tmp_path / "demo-viz.mp4") in stdout
    assert "L1 to the ground truth" in stdout
