"""Drive ``motiontransfer serve`` in headless Chromium: the screenshot of docs/web.md, and the helpers
tests/test_web.py uses.

Usage::

    python benchmarks/web_page.py                     # run a sample job, save docs/images/web.png
    python benchmarks/web_page.py --out shot.png --model fomm-puppets

The server runs as a child process (``python -m motiontransfer serve`` on a free loopback port) with its own
temporary folder, home and working folder, so a caller can check that it writes nothing else; the browser is
Debian's ``chromium`` (``apt-get install chromium``) driven by Python's ``playwright`` through ``executable_path``,
without playwright's own browser download.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "images" / "web.png"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
SERVE_COMMAND = (sys.executable, "-m", "motiontransfer", "serve")
START_SECONDS = 180.0
STOP_SECONDS = 60.0
JOB_SECONDS = 300.0
VIEWPORT = {"width": 1400, "height": 1000}


def find_chromium() -> str | None:
    """The Chromium executable on PATH (Debian's package), or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path is not None:
            return path
    return None


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A running ``motiontransfer serve`` child process.

    Attributes:
        url: the page.
        process: the child.
        temp: its TMPDIR (the server's temporary folder goes in there).
        home: its HOME.
        cwd: its working folder.
        log: its stdout and stderr.
    """

    url: str
    process: subprocess.Popen[bytes]
    temp: Path
    home: Path
    cwd: Path
    log: Path

    def server_folders(self) -> list[Path]:
        """The server's temporary folders (one while it runs, none after a clean stop)."""
        return sorted(self.temp.glob("motiontransfer-serve-*"))

    def job_folders(self) -> list[Path]:
        """The per-job folders that exist right now."""
        return [job for folder in self.server_folders() for job in sorted((folder / "jobs").glob("*"))]

    def stop(self, timeout: float = STOP_SECONDS) -> int:
        """Ctrl-C the server and wait for it; returns its exit code (killed after ``timeout`` seconds)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def output(self) -> str:
        """What the server printed."""
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def running_server(folder: Path, options: Sequence[str] = (), timeout: float = START_SECONDS) -> Iterator[Server]:
    """Start ``motiontransfer serve`` on a free loopback port with TMPDIR, HOME and the working folder inside
    ``folder``; yield once the page answers; Ctrl-C it on exit.

    Raises:
        RuntimeError: the server exits or does not answer within ``timeout`` seconds (with its output).
    """
    temp, home, cwd = folder / "tmp", folder / "home", folder / "cwd"
    for path in (temp, home, cwd):
        path.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "TMPDIR": str(temp), "HOME": str(home), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("GRADIO_TEMP_DIR", None)
    log = folder / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([*SERVE_COMMAND, "--port", str(port), *options], cwd=cwd, env=env,
                                   stdout=sink, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}/", process, temp, home, cwd, log)
    try:
        _wait_until_up(server, timeout)
        yield server
    finally:
        if process.poll() is None:
            server.stop()


def _wait_until_up(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited with {server.process.returncode}:\n{server.output()}")
        with contextlib.suppress(OSError, urllib.error.URLError), \
                urllib.request.urlopen(server.url, timeout=5) as response:
            if response.status == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"the server did not answer within {timeout:.0f} s:\n{server.output()}")


@contextlib.contextmanager
def chromium_browser(executable: str) -> Iterator[Any]:
    """Headless Chromium (the given executable) under playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: Any, url: str) -> Any:
    """A new page (its own context, downloads allowed) showing the app."""
    page = browser.new_page(viewport=VIEWPORT, accept_downloads=True)
    page.goto(url)
    page.wait_for_selector("#run")
    return page


def upload(page: Any, source: Path | None = None, driving: Path | None = None) -> None:
    """Put files into the source and driving inputs and wait until the page shows them."""
    if source is not None:
        page.locator("#source input[type=file]").set_input_files(str(source))
        page.wait_for_selector("#source img", timeout=30_000)
    if driving is not None:
        page.locator("#driving input[type=file]").set_input_files(str(driving))


def choose_sample(page: Any, kind: str, name: str) -> None:
    """Click the sample ``name`` among the ``kind`` (source, driving) samples."""
    page.locator(f"#{kind}-samples button:has([src$='/{name}'])").first.click()


def choose_model(page: Any, name: str) -> None:
    """Pick ``name`` in the model dropdown."""
    page.locator("#model input").click()
    page.get_by_role("option", name=name, exact=True).click()


def run_and_wait(page: Any, timeout: float = JOB_SECONDS) -> str:
    """Click Run and wait for the result (see :func:`wait_for_result`); returns the status line."""
    page.locator("#run").click()
    return wait_for_result(page, timeout)


def wait_for_result(page: Any, timeout: float = JOB_SECONDS) -> str:
    """Wait for the download links of a job; returns the status line.

    Raises:
        RuntimeError: an error message appeared instead (its text), or nothing within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.locator("#downloads a").count() >= 2:
            page.wait_for_function("document.querySelector('#status').innerText.includes('Done')")
            return page.locator("#status").inner_text()
        errors = page_errors(page)
        if errors:
            raise RuntimeError(f"the page shows an error: {errors}")
        time.sleep(0.25)
    raise RuntimeError(f"no result within {timeout:.0f} s")


def page_errors(page: Any) -> list[str]:
    """The texts of the error and warning messages (toasts) the page shows."""
    toasts = page.locator("[data-testid=toast-text]")
    return [re.sub(r"\s+", " ", toasts.nth(i).inner_text()).strip() for i in range(toasts.count())]


def download(page: Any, name: str, target: Path) -> Path:
    """Click the download link ``name`` and save the file at ``target``."""
    with page.expect_download() as event:
        page.locator(f"#downloads a[href$='/{name}']").first.click()
    event.value.save_as(str(target))
    return target


def screenshot(out: Path, model: str) -> Path:
    """Run a sample job on the page (the first sample source and driving clip of the model's family) and save a
    screenshot of the page with the result at ``out`` (atomically)."""
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("no chromium on PATH; apt-get install chromium")
    family = "puppet" if "puppet" in model else "face"
    with tempfile.TemporaryDirectory() as temp, running_server(Path(temp)) as server, \
            chromium_browser(chromium) as browser:
        page = open_page(browser, server.url)
        choose_sample(page, "source", f"{family}-1.png")
        choose_sample(page, "driving", f"{family}-motion.mp4")
        page.wait_for_selector("#source img", timeout=30_000)
        if model != "fomm-faces":
            choose_model(page, model)
        print(run_and_wait(page), file=sys.stderr)
        page.wait_for_function("[...document.querySelectorAll('#result video, #visualization video')]"
                               ".every(v => v.readyState >= 2)", timeout=30_000)
        page.evaluate("for (const v of document.querySelectorAll('video')) { v.pause(); v.currentTime = 1.2; }")
        time.sleep(1)
        temporary = out.with_name(f".{out.stem}.tmp{out.suffix}")
        page.screenshot(path=str(temporary), full_page=True)
        temporary.replace(out)
    return out


def main() -> int:
    """Command line of the script."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=SCREENSHOT, help="the screenshot [docs/images/web.png]")
    parser.add_argument("--model", default="fomm-faces", help="a bundled model [fomm-faces]")
    args = parser.parse_args()
    print(f"wrote {screenshot(args.out, args.model)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
