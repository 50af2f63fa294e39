"""Run the page: ``motiontransfer serve``.

Everything the server writes lives in one temporary folder, removed when the server stops (Ctrl-C, SIGTERM
through the CLI, or an error)::

    motiontransfer-serve-XXXX/
        samples/     the sample inputs (rendered at start-up)
        jobs/job-*/  one folder per running job, removed as soon as gradio has copied its results
        cache/       gradio's cache: the uploads and the copies of the results it serves for download; files
                     older than ``keep_minutes`` are deleted while the server runs

Jobs run one at a time (a gradio queue with concurrency 1); waiting users see their place in the queue.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from motiontransfer.errors import UserError
from motiontransfer.web.jobs import Limits, model_choices

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
GRADIO_CACHE_VARIABLE = "GRADIO_TEMP_DIR"
STOP_SECONDS = 10.0
"""How long a stopping server waits for a running job to end (it stops at its next frame)."""
_WEB_EXTRA_HINT = "the web page needs the web extra: pip install -e \".[web]\" (or pip install 'motiontransfer[web]')"


@dataclass(frozen=True)
class ServeOptions:
    """How ``motiontransfer serve`` runs.

    Attributes:
        host: interface to bind; the default serves this machine only.
        port: TCP port.
        models: a folder whose ``.mt`` files are offered next to the bundled models.
        limits: upload size and driving length limits.
        device: as :func:`motiontransfer.load` (None: CUDA when available, else the CPU).
        keep_minutes: how long uploads and results stay in the server's cache (downloadable).
        queue_size: jobs that may wait in the queue; more are refused with a message.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    models: Path | None = None
    limits: Limits = field(default_factory=Limits)
    device: str | None = None
    keep_minutes: float = 60.0
    queue_size: int = 20

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise UserError(f"--port must be between 0 and 65535, got {self.port}")
        if not (math.isfinite(self.keep_minutes) and self.keep_minutes > 0):
            raise UserError(f"--keep-minutes must be a positive number, got {self.keep_minutes}")
        if self.queue_size < 1:
            raise UserError(f"--queue-size must be at least 1, got {self.queue_size}")


def serve(options: ServeOptions, ready: Callable[[str], None] | None = None) -> None:
    """Serve the page until interrupted (Ctrl-C raises ``KeyboardInterrupt`` out of here, after cleaning up).

    Args:
        options: where and how to serve.
        ready: called with the page's URL once the server listens (default: print it).

    Raises:
        UserError: the web extra is missing, a bad option, a ``--models`` path that is not a folder, or a port
            that cannot be bound.
    """
    models = model_choices(options.models)
    _require_gradio()
    with tempfile.TemporaryDirectory(prefix="motiontransfer-serve-") as temp, _gradio_cache(Path(temp) / "cache"):
        # gradio is imported only now: some of its modules fix their cache folder when imported
        from motiontransfer.web.app import PageContext, build_page
        from motiontransfer.web.samples import write_samples

        root = Path(temp)
        jobs = root / "jobs"
        jobs.mkdir()
        context = PageContext(models=models, limits=options.limits, jobs_dir=jobs,
                              samples=write_samples(root / "samples"), device=options.device)
        keep = round(options.keep_minutes * 60)
        page = build_page(context, delete_cache=(max(60, keep // 4), keep))
        page.queue(default_concurrency_limit=1, max_size=options.queue_size)
        try:
            _, url, _ = page.launch(server_name=options.host, server_port=options.port, prevent_thread_lock=True,
                                    max_file_size=options.limits.max_upload_bytes, show_error=False, quiet=True,
                                    footer_links=[], run_history=False, ssr_mode=False, mcp_server=False)
        except OSError as exc:  # gradio says "Cannot find empty port" for a taken port or an unusable host
            reason = exc.strerror or "the port is in use, or the host is not an address of this machine"
            raise UserError(f"cannot serve on {options.host}:{options.port}: {reason}; choose another --port or "
                            "--host") from None
        try:
            (ready or _announce)(url)
            while page.is_running:
                time.sleep(0.2)
        finally:
            if not context.stop(timeout=STOP_SECONDS):
                print("motiontransfer: warning: a job did not stop in time; its files are removed anyway",
                      file=sys.stderr)
            page.close(verbose=False)


def _announce(url: str) -> None:
    print(f"motiontransfer: serving the page on {url} (Ctrl-C stops)", flush=True)


def _require_gradio() -> None:
    """Raises: UserError naming the web extra when gradio is not installed (without importing it)."""
    if importlib.util.find_spec("gradio") is None:
        raise UserError(_WEB_EXTRA_HINT)


@contextlib.contextmanager
def _gradio_cache(folder: Path) -> Iterator[Path]:
    """Point gradio's cache (uploads, served copies of results) at ``folder`` while the server runs; gradio reads
    the location from the environment, so this sets the variable and restores it on exit. Parts of gradio read it
    once, when first imported: a process that imported gradio earlier keeps some files in their old place."""
    folder.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get(GRADIO_CACHE_VARIABLE)
    os.environ[GRADIO_CACHE_VARIABLE] = str(folder)
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop(GRADIO_CACHE_VARIABLE, None)
        else:
            os.environ[GRADIO_CACHE_VARIABLE] = previous
