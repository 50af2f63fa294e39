"""``motiontransfer serve``: the page's checks, and the page itself driven in headless Chromium.

The browser tests start the real command (``python -m motiontransfer serve``) on a free loopback port with its own
TMPDIR, HOME and working folder (benchmarks/web_page.py), upload files, click Run and read the page. They need
Debian's ``chromium`` and Python's ``playwright`` (the README's test command installs both) and skip, naming what is
missing, only when they are absent.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec
from motiontransfer.errors import UserError
from motiontransfer.pretrained import BUNDLED_MODELS, bundled_model_path
from motiontransfer.video.io import VideoWriter, count_frames, probe, write_image
from motiontransfer.web import Limits, ServeOptions
from motiontransfer.web.jobs import check_driving, check_source, model_choices, parse_best_frame

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import web_page

DRIVING_FRAMES = 12
QUEUE_FRAMES = 150
MY_MODEL = "my-faces.mt"
MAX_UPLOAD_MB = 1
MAX_SECONDS = 8
ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------------- inputs


def _driving(path: Path, frames: int, audio: Path | None = None, size: int = 64) -> Path:
    """A procedural face clip of ``frames`` frames at 25 fps (with the audio of ``audio``), via VideoWriter."""
    data = ProceduralSource(ProceduralSpec(family="faces", size=size, videos=2, frames=frames, split="test"))
    with VideoWriter(path, fps=25, audio_from=audio) as writer:
        for frame in data.frames(1):
            writer.write(frame.tensor())
    return path


def _source(path: Path, size: int = 96) -> Path:
    data = ProceduralSource(ProceduralSpec(family="faces", size=size, videos=1, frames=1, split="test"))
    return write_image(path, data.frame(0, 0).tensor())


def _tone(path: Path, seconds: float = 1.0, rate: int = 44100) -> Path:
    """An audio-only AAC file with a 440 Hz sine."""
    samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)[None]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


# ------------------------------------------------------------------------------------------ checks (no browser)


def test_best_frame_field() -> None:
    assert parse_best_frame("") is None
    assert parse_best_frame("first") is None
    assert parse_best_frame(" Auto ") == "auto"
    assert parse_best_frame("7") == 7
    for bad in ("-1", "1.5", "best"):
        with pytest.raises(UserError, match="best frame"):
            parse_best_frame(bad)


def test_models_on_offer(tmp_path: Path) -> None:
    assert list(model_choices(None)) == list(BUNDLED_MODELS)
    (tmp_path / "b.mt").write_bytes(b"")
    (tmp_path / "a.mt").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a model")
    choices = model_choices(tmp_path)
    assert list(choices) == [*BUNDLED_MODELS, "a.mt", "b.mt"]
    assert choices["a.mt"] == str((tmp_path / "a.mt").resolve())
    with pytest.raises(UserError, match=r"--models .*not a folder"):
        model_choices(tmp_path / "missing")


def test_upload_limits(tmp_path: Path) -> None:
    clip = _driving(tmp_path / "clip.mp4", DRIVING_FRAMES)
    image = _source(tmp_path / "face.png")
    assert check_driving(clip, Limits()).num_frames == DRIVING_FRAMES
    check_source(image, Limits())
    with pytest.raises(UserError, match=r"^clip\.mp4 is 0\.5 s long; the limit is 0\.2 s \(serve --max-seconds\)$"):
        check_driving(clip, Limits(max_seconds=0.2))
    with pytest.raises(UserError, match=r"^face\.png is 0\.0 MB; the limit is 0\.001 MB \(serve --max-upload-mb\)$"):
        check_source(image, Limits(max_upload_mb=0.001))
    (tmp_path / "notes.mp4").write_text("not a video\n")
    with pytest.raises(UserError, match=r"notes\.mp4: cannot be read as a video"):
        check_driving(tmp_path / "notes.mp4", Limits())
    with pytest.raises(UserError, match="unknown image format"):
        check_source(tmp_path / "notes.mp4", Limits())
    for bad in ({"max_upload_mb": 0}, {"max_seconds": float("nan")}):
        with pytest.raises(UserError, match="must be a positive number"):
            Limits(**bad)
    with pytest.raises(UserError, match="--port"):
        ServeOptions(port=70000)


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [line for line in readme.splitlines() if line.endswith("python -m pytest")]
    assert len(commands) == 1, commands
    assert "apt-get install -y chromium" in commands[0] and ".[dev,eval,web,export]" in commands[0]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ci[-1] == commands[0]


# ----------------------------------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium and playwright, or a skip naming what is missing."""
    path = web_page.find_chromium()
    if path is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; the README's test command "
                    "installs it)")
    for module, where in (("playwright", "the dev extra"), ("gradio", "the web extra")):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed ({where}; the README's test command installs it)")
    return path


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    with web_page.chromium_browser(chromium) as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, chromium: str) -> Iterator[web_page.Server]:
    """The command with a models folder holding a copy of the bundled faces model; on the way out it must stop on
    Ctrl-C with code 130 and leave its TMPDIR, HOME and working folder empty."""
    folder = tmp_path_factory.mktemp("serve")
    models = folder / "models"
    models.mkdir()
    shutil.copyfile(bundled_model_path("fomm-faces"), models / MY_MODEL)
    options = ["--models", str(models), "--max-upload-mb", str(MAX_UPLOAD_MB), "--max-seconds", str(MAX_SECONDS)]
    with web_page.running_server(folder, options) as running:
        yield running
        assert running.stop() == 130, running.output()
    assert "Traceback" not in running.output(), running.output()
    for place in (running.temp, running.home, running.cwd):
        assert list(place.iterdir()) == [], f"the server left files in {place}"


@pytest.mark.slow
def test_page_animates_an_upload(server: web_page.Server, browser: Any, tmp_path: Path) -> None:
    source = _source(tmp_path / "face.png")
    driving = _driving(tmp_path / "talk.mp4", DRIVING_FRAMES, audio=_tone(tmp_path / "tone.m4a"))
    page = web_page.open_page(browser, server.url)
    web_page.upload(page, source, driving)
    web_page.choose_model(page, MY_MODEL)
    started = time.monotonic()
    status = web_page.run_and_wait(page)
    assert status.startswith(f"Done: {DRIVING_FRAMES} frames at 25 fps with {MY_MODEL}"), status
    assert server.job_folders() == []  # removed once gradio has its copies
    result = web_page.download(page, "animation.mp4", tmp_path / "result.mp4")
    assert count_frames(result) == DRIVING_FRAMES
    assert probe(result).has_audio
    viz = web_page.download(page, "animation-viz.mp4", tmp_path / "viz.mp4")
    assert count_frames(viz) == DRIVING_FRAMES
    assert probe(viz).width > probe(result).width
    assert time.monotonic() - started < 120
    page.close()


@pytest.mark.slow
@pytest.mark.parametrize(("name", "message"), [
    ("notes.mp4", "notes.mp4: cannot be read as a video"),  # our check on the server
    ("notes.txt", "Invalid file type: notes.txt"),  # refused by the page before any upload
])
def test_page_refuses_a_text_file_as_the_video(server: web_page.Server, browser: Any, tmp_path: Path, name: str,
                                               message: str) -> None:
    text = tmp_path / name
    text.write_text("this is not a video\n")
    _expect_message(server, browser, _source(tmp_path / "face.png"), text, message)


@pytest.mark.slow
def test_page_refuses_too_large_and_too_long_uploads(server: web_page.Server, browser: Any, tmp_path: Path) -> None:
    big = tmp_path / "big.mp4"
    big.write_bytes(np.random.default_rng(0).bytes(int(1.2 * MAX_UPLOAD_MB * 1024 * 1024)))
    _expect_message(server, browser, _source(tmp_path / "face.png"), big, "exceed the maximum allowed size")
    long = _driving(tmp_path / "long.mp4", int(25 * (MAX_SECONDS + 1)))
    _expect_message(server, browser, _source(tmp_path / "face.png"), long,
                    f"long.mp4 is {MAX_SECONDS + 1:.1f} s long; the limit is {MAX_SECONDS} s (serve --max-seconds)")


def _expect_message(server: web_page.Server, browser: Any, source: Path, driving: Path, message: str) -> None:
    """Upload, click Run and find ``message`` among the page's one-line messages, with no result."""
    page = web_page.open_page(browser, server.url)
    web_page.upload(page, source, driving)
    page.locator("#run").click()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(message in error for error in web_page.page_errors(page)):
        time.sleep(0.25)
    errors = web_page.page_errors(page)
    assert any(message in error for error in errors), errors
    assert all("\n" not in error and "Traceback" not in error for error in errors), errors
    assert page.locator("#downloads a").count() == 0
    page.close()


@pytest.mark.slow
def test_second_user_sees_the_queue(server: web_page.Server, browser: Any, tmp_path: Path) -> None:
    source = _source(tmp_path / "face.png")
    first, second = (web_page.open_page(browser, server.url) for _ in range(2))
    web_page.upload(first, source, _driving(tmp_path / "long.mp4", QUEUE_FRAMES))
    web_page.upload(second, source, _driving(tmp_path / "short.mp4", DRIVING_FRAMES))
    first.locator("#run").click()
    first.wait_for_function(f"document.querySelector('#result').innerText.includes('/{QUEUE_FRAMES} frames')",
                            timeout=60_000)  # the progress bar counts frames
    second.locator("#run").click()
    second.wait_for_function("/queue: 1\\/\\d+/.test(document.querySelector('#result').innerText)", timeout=30_000)
    assert re.search(r"\d+/150 frames", first.locator("#result").inner_text())
    assert web_page.wait_for_result(second, timeout=300).startswith(f"Done: {DRIVING_FRAMES} frames")
    for page in (first, second):
        page.close()
