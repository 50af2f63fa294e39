"""The command line: help texts, user mistakes as one line with exit code 2, and the commands' outputs."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from motiontransfer.cli import Terminated, main
from motiontransfer.errors import UserError
from motiontransfer.video.io import probe


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
    from motiontransfer.video.io import read_frames

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


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_make_dataset_refuses_an_existing_dataset_and_overwrite_replaces_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ds"
    base = ["make-dataset", "shapes", "--out", str(out), "--frames", "2", "--size", "16"]
    code, _, err = run_cli([*base, "--videos", "2", "--test-videos", "1"], capsys)
    assert code == 0, err
    before = {split: _names(out / split) for split in ("train", "test")}
    code, _, err = run_cli(["make-dataset", "faces", "--out", str(out), "--videos", "1", "--frames", "2",
                            "--size", "16"], capsys)
    assert code == 2 and "already holds a dataset (3 videos" in err and "--overwrite" in err
    assert len(err.strip().splitlines()) == 1
    assert {split: _names(out / split) for split in ("train", "test")} == before, "nothing mixed in"
    code, stdout, err = run_cli(["make-dataset", "faces", "--out", str(out), "--videos", "1", "--test-videos", "0",
                                 "--frames", "2", "--size", "16", "--overwrite"], capsys)
    assert code == 0, err
    assert "wrote 1 train and 0 test videos" in stdout
    train = _names(out / "train")
    assert len(train) == 2 and all(name.startswith("id00000#") for name in train)  # the new video and its sidecar
    assert json.loads(next((out / "train").glob("*.json")).read_text())["family"] == "faces"
    assert not (out / "test").exists(), "the old test split went with the old dataset"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_make_dataset_never_replaces_a_split_holding_other_files(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ds" / "train").mkdir(parents=True)
    (tmp_path / "ds" / "train" / "thesis.tex").write_text("keep me")
    code, _, err = run_cli(["make-dataset", "shapes", "--out", str(tmp_path / "ds"), "--videos", "1", "--frames",
                            "2", "--size", "16", "--overwrite"], capsys)
    assert code == 2 and "thesis.tex" in err
    assert _names(tmp_path / "ds" / "train") == ["thesis.tex"]


@pytest.mark.parametrize("size", ["100000", "1025"])
def test_make_dataset_refuses_a_huge_frame_size_up_front(size: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["make-dataset", "shapes", "--out", str(tmp_path / "big"), "--size", size], capsys)
    assert code == 2 and f"--size must be between 16 and 1024 pixels, got {size}" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "big").exists(), "no empty train/ folder is left behind"


def test_make_dataset_writes_each_split_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from motiontransfer.data.synthetic import writer

    calls = []

    def failing(*args: object, **kwargs: object) -> Path:
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    real = writer.write_video_with_sidecar
    monkeypatch.setattr(writer, "write_video_with_sidecar", failing)
    with pytest.raises(KeyboardInterrupt):
        writer.write_dataset("shapes", tmp_path / "ds", videos=3, frames=2, size=16, seed=0, progress=False)
    assert not (tmp_path / "ds").exists() or not list((tmp_path / "ds").iterdir()), "no partial split"


def test_train_help_says_what_steps_bounds_for_kpvp(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["train", "--help"], capsys)
    assert code == 0 and "stage 3" in " ".join(out.split())


def _make_dataset_doing(action: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """make-dataset args whose writer is replaced by ``action`` (called with no arguments)."""
    from motiontransfer.data.synthetic import writer

    def fake(*args: object, **kwargs: object) -> dict[str, int]:
        action()
        return {"train": 1, "test": 0}

    monkeypatch.setattr(writer, "write_dataset", fake)
    return ["make-dataset", "shapes", "--out", "ds"]


@pytest.mark.parametrize(
    ("action", "code", "line"),
    [
        (lambda: (_ for _ in ()).throw(KeyboardInterrupt()), 130, "motiontransfer: interrupted"),
        (lambda: (_ for _ in ()).throw(Terminated()), 143, "motiontransfer: terminated"),
        (lambda: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device", "ds/x.mp4")), 2,
         "motiontransfer: error: ds/x.mp4: no space left on the device"),
        (lambda: (_ for _ in ()).throw(UserError("two\nlines")), 2, "motiontransfer: error: two lines"),
        (lambda: warnings.warn("a library\nwarning", UserWarning, stacklevel=1), 0,
         "motiontransfer: warning: a library warning"),
    ],
    ids=["sigint", "sigterm", "enospc", "multi-line-error", "warning"],
)
def test_interruptions_faults_and_warnings_are_one_line(action: Any, code: int, line: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    got, _, err = run_cli(_make_dataset_doing(action, monkeypatch), capsys)
    assert (got, err.strip().splitlines()) == (code, [line])
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers, "handlers restored"


def test_an_oserror_that_is_a_bug_keeps_its_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    args = _make_dataset_doing(lambda: (_ for _ in ()).throw(OSError(errno.EBADF, "Bad file descriptor")),
                               monkeypatch)
    with pytest.raises(OSError, match="Bad file descriptor"):
        main(args)


def test_sigterm_in_a_command_unwinds_through_the_atomic_writers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from motiontransfer.fileio import atomic_output

    def write_then_get_terminated() -> None:
        with atomic_output(tmp_path / "out.bin") as temp:
            temp.write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGTERM)  # the CLI's handler raises here
            raise AssertionError("not reached")

    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(_make_dataset_doing(write_then_get_terminated, monkeypatch), capsys)
    assert code == 143 and err.strip() == "motiontransfer: terminated"
    assert list(tmp_path.iterdir()) == []
