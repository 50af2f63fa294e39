"""The animate, reconstruct and convert commands end to end on tiny models; user mistakes exit with code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fomm_helpers import SIZE, config_yaml, model_file, official_checkpoint, video_with_audio
from motiontransfer.cli import main
from motiontransfer.video.io import count_frames, probe, write_image


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    write_image(root / "source.png", torch.rand(3, 80, 72))
    official = official_checkpoint(root / "vox-cpk.pth.tar")
    truncated = root / "truncated.pth.tar"
    truncated.write_bytes(official.read_bytes()[:1000])
    lia = root / "lia.pt"
    torch.save({"gen": {"enc.fc.0.weight": torch.zeros(2, 2)}, "args": {}}, lia)
    return {"root": root, "source": root / "source.png", "driving": video_with_audio(root / "driving.mp4"),
            "model": model_file(root / "small.mt"), "official": official, "config": config_yaml(root / "small.yaml"),
            "truncated": truncated, "lia": lia}


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_animate_writes_video_with_audio_and_visualisation(files: dict[str, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "result.mp4"
    code, stdout, err = run(["animate", "--checkpoint", files["model"], "--source", files["source"], "--driving",
                             files["driving"], "--out", out, "--visualize", "--best-frame", "auto",
                             "--adapt-scale", "--batch-size", "4", "--device", "cpu"], capsys)
    assert code == 0, err
    driving = probe(files["driving"])
    result, viz = probe(out), probe(tmp_path / "result-viz.mp4")
    assert (result.width, result.height, result.fps, result.has_audio) == (SIZE, SIZE, driving.fps, True)
    assert (viz.width, viz.height, viz.has_audio) == (4 * SIZE + 10, SIZE + 4, True)
    assert count_frames(out) == count_frames(files["driving"]) == count_frames(tmp_path / "result-viz.mp4")
    assert f"wrote {out}" in stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary files left behind"


def test_convert_then_animate_matches_the_official_checkpoint(files: dict[str, Path], tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    converted = tmp_path / "vox.mt"
    code, stdout, err = run(["convert", "--from", "fomm", "--config", files["config"], "--input", files["official"],
                             "--out", converted], capsys)
    assert code == 0, err
    assert "kp_detector" in stdout and "discriminator" in stdout
    outputs = []
    for name, extra in (("a.mp4", ["--checkpoint", converted]),
                        ("b.mp4", ["--checkpoint", files["official"], "--config", files["config"]])):
        code, _, err = run(["animate", *extra, "--source", files["source"], "--driving", files["driving"],
                            "--out", tmp_path / name, "--mode", "absolute"], capsys)
        assert code == 0, err
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]


def test_reconstruct_prints_l1_and_writes_videos(files: dict[str, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, err = run(["reconstruct", "--checkpoint", files["model"], "--data",
                             "procedural:faces:frames=3", "--num-videos", "2", "--out", tmp_path / "rec"], capsys)
    assert code == 0, err
    lines = stdout.strip().splitlines()
    assert len(lines) == 3 and all("L1 " in line for line in lines) and lines[-1].startswith("mean L1 ")
    assert len(list((tmp_path / "rec").glob("*.mp4"))) == 2
    dataset = tmp_path / "data" / "test"
    dataset.mkdir(parents=True)
    video_with_audio(dataset / "clip#1.mp4", num_frames=3)
    code, stdout, err = run(["reconstruct", "--checkpoint", files["model"], "--data", tmp_path / "data"], capsys)
    assert code == 0, err
    assert stdout.startswith("clip#1\tL1 ") and "over 3 frames" in stdout


def test_evaluate_prints_a_table_writes_a_report_and_explains_skipped_metrics(
        files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, err = run(["evaluate", "--checkpoint", files["model"], "--data", "procedural:shapes:frames=3",
                             "--num-videos", "2", "--metrics", "l1,psnr,lpips", "--metrics-dir", tmp_path,
                             "--out", tmp_path / "report"], capsys)
    assert code == 0, err
    assert "lpips: skipped (needs alexnet-owt-7be5be79.pth" in err
    lines = stdout.splitlines()
    assert lines[0].split() == ["metric", "model", "copy", "source"]
    assert lines[1].startswith("l1") and lines[2].startswith("psnr") and "6 frames" in stdout
    assert {p.name for p in (tmp_path / "report").iterdir()} == {"metrics.json", "curves.png", "contact-sheet.png"}
    code, _, err = run(["evaluate", "--checkpoint", files["model"], "--data", "procedural:shapes",
                        "--metrics", "l1,fidd"], capsys)
    assert code == 2 and "unknown metric(s) fidd" in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--checkpoint", "{root}/missing.mt"], "not found"),
        (["--checkpoint", "{official}"], "needs its config"),
        (["--checkpoint", "{official}", "--config", "vox-256"], "does not match config vox-256"),
        (["--checkpoint", "{truncated}", "--config", "{config}"], "truncated or corrupt"),
        (["--checkpoint", "{lia}", "--config", "{config}"], "looks like a LIA checkpoint"),
        (["--checkpoint", "{model}", "--best-frame", "soon"], "--best-frame"),
        (["--checkpoint", "{model}", "--best-frame", "999"], "beyond the end"),
        (["--checkpoint", "{model}", "--mode", "sideways"], "--mode"),
        (["--checkpoint", "{model}", "--batch-size", "0"], "--batch-size"),
        (["--checkpoint", "{model}", "--source", "{root}/nope.png"], "nope.png"),
    ],
)
def test_animate_mistakes_exit_2(args: list[str], needle: str, files: dict[str, Path], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    given = [arg.format(**files) for arg in args]
    defaults = {"--source": str(files["source"]), "--driving": str(files["driving"])}
    for flag, value in defaults.items():
        if flag not in given:
            given += [flag, value]
    code, _, err = run(["animate", *given, "--out", tmp_path / "out.mp4"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("motiontransfer: error:") and needle in lines[0], err
    assert not list(tmp_path.iterdir()), "nothing is written on a user mistake"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--from", "fomm", "--config", "{config}", "--input", "{lia}"], "use --from lia"),
        (["--from", "fomm", "--config", "{config}", "--input", "{truncated}"], "truncated"),
        (["--from", "lia", "--config", "{config}", "--input", "{lia}"], "--from"),
        (["--from", "fomm", "--config", "no-such-config", "--input", "{official}"], "no-such-config"),
    ],
)
def test_convert_mistakes_exit_2(args: list[str], needle: str, files: dict[str, Path], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["convert", *[arg.format(**files) for arg in args], "--out", tmp_path / "x.mt"], capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.iterdir())
