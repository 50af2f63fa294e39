"""The gradio page of ``motiontransfer serve``: inputs, the Run button, the results.

A job checks its uploads (:mod:`motiontransfer.web.jobs`), animates into a fresh folder under the server's job
folder, hands the two videos to gradio (which copies them into its cache, inside the server's temporary folder, to
serve them) and then deletes its folder. A user mistake raises :class:`gradio.Error` with one line; a bug logs its
traceback on the server and shows one line too.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from motiontransfer.errors import UserError
from motiontransfer.fileio import OUTPUT_FAULTS
from motiontransfer.web.jobs import (
    AUTO_FRAME,
    CROPS,
    FIRST_FRAME,
    LANDMARKS,
    MODES,
    JobRequest,
    Limits,
    check_choice,
    check_driving,
    check_source,
    parse_best_frame,
    render,
)
from motiontransfer.web.samples import Samples

LOGGER = logging.getLogger("motiontransfer.web")
TITLE = "motiontransfer"
RESULT_NAME = "animation.mp4"
VIDEO_HEIGHT = 320
JobOutputs = tuple[str, str, list[str], str]
STOPPING = "the server is stopping; the job was cancelled"


@dataclass(frozen=True)
class PageInputs:
    """The page's inputs as a job receives them (uploads as server paths, or None when missing)."""

    source: str | None
    driving: str | None
    model: str
    mode: str
    adapt_scale: bool
    best_frame: str | None
    crop: str
    smooth: bool
    landmarks: str


@dataclass
class PageContext:
    """What the page's jobs share: the models on offer, the limits, where jobs write, and the last loaded model
    (reused by the next job with the same model; jobs run one at a time).

    Attributes:
        models: display name -> checkpoint (see :func:`motiontransfer.web.jobs.model_choices`).
        limits: upload limits.
        jobs_dir: the folder that holds one temporary folder per running job.
        samples: the sample inputs.
        device: as :func:`motiontransfer.load`.
    """

    models: dict[str, str]
    limits: Limits
    jobs_dir: Path
    samples: Samples
    device: str | None = None
    _loaded: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _running: threading.Condition = field(default_factory=threading.Condition)
    _jobs: int = 0
    _stopping: bool = False

    @contextlib.contextmanager
    def job(self) -> Iterator[None]:
        """Count a running job (see :meth:`stop`).

        Raises:
            UserError: the server is stopping.
        """
        with self._running:
            if self._stopping:
                raise UserError(STOPPING)
            self._jobs += 1
        try:
            yield
        finally:
            with self._running:
                self._jobs -= 1
                self._running.notify_all()

    def check_running(self) -> None:
        """Called between frames: raises UserError when the server is stopping, which ends the job cleanly."""
        if self._stopping:
            raise UserError(STOPPING)

    def stop(self, timeout: float) -> bool:
        """Refuse new jobs, make running ones stop at their next frame and wait up to ``timeout`` seconds for
        them; True when none is left."""
        with self._running:
            self._stopping = True
            return self._running.wait_for(lambda: self._jobs == 0, timeout)

    def animator(self, name: str) -> Any:
        """The loaded model called ``name`` (one of :attr:`models`), kept for the next job.

        Raises:
            UserError: an unknown name, or a model file that cannot be loaded.
        """
        from motiontransfer.api import load

        checkpoint = self.models.get(name)
        if checkpoint is None:
            raise UserError(f"unknown model {name!r}; choose one of {', '.join(self.models)}")
        with self._lock:
            if name not in self._loaded:
                self._loaded.clear()
                self._loaded[name] = load(checkpoint, device=self.device)
            return self._loaded[name]


def build_page(context: PageContext, delete_cache: tuple[int, int] | None = None) -> gr.Blocks:
    """The page: source and driving inputs with samples, the options of ``motiontransfer animate``, a Run button
    with a progress bar in frames, and the results (animation, visualisation, downloads, a status line).

    Args:
        context: what the jobs share.
        delete_cache: gradio's (every N seconds, delete files older than M seconds) for its cache.

    Call ``.queue(...)`` and ``.launch(...)`` on the result (see :func:`motiontransfer.web.server.serve`).
    """
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=delete_cache) as page:
        gr.Markdown("# motiontransfer\nAnimate a still image with the motion of a driving video: upload both (or "
                    "click a sample), choose a model and press **Run**. Jobs run one at a time; the page shows "
                    f"your place in the queue. Uploads up to {context.limits.max_upload_mb:g} MB, driving videos up "
                    f"to {context.limits.max_seconds:g} s.")
        with gr.Row():
            with gr.Column():
                source = gr.Image(label="Source image", type="filepath", sources=["upload", "clipboard"],
                                  height=VIDEO_HEIGHT, elem_id="source")
                gr.Examples([[str(path)] for path in context.samples.sources], inputs=[source],
                            label="Sample sources", examples_per_page=8, elem_id="source-samples")
            with gr.Column():
                driving = gr.Video(label="Driving video (upload, or record with the webcam)",
                                   sources=["upload", "webcam"], height=VIDEO_HEIGHT, elem_id="driving")
                gr.Examples([[str(path)] for path in context.samples.drivings], inputs=[driving],
                            label="Sample driving videos", examples_per_page=8, elem_id="driving-samples")
            with gr.Column():
                model = gr.Dropdown(list(context.models), value=next(iter(context.models)), label="Model",
                                    info="the bundled models and every .mt file of serve --models", elem_id="model")
                mode = gr.Radio(list(MODES), value=MODES[0], label="Motion transfer",
                                info="relative: the source keeps its pose and follows the driving's changes")
                adapt_scale = gr.Checkbox(False, label="Adapt scale", info="scale movements by the keypoint hulls")
                best_frame = gr.Dropdown([FIRST_FRAME, AUTO_FRAME], value=FIRST_FRAME, allow_custom_value=True,
                                         label="Initial driving frame",
                                         info="first, auto (best pose match) or type a frame number")
                with gr.Accordion("Crop, paste back, smoothing", open=False):
                    crop = gr.Radio(list(CROPS), value=CROPS[0], label="Crop",
                                    info="face or body: animate the photo's subject and paste it back")
                    smooth = gr.Checkbox(False, label="Smooth the driving motion (against jitter)")
                    landmarks = gr.Radio(list(LANDMARKS), value=LANDMARKS[0], label="Pose detector for auto",
                                         info="dlib needs the eval extra")
                run = gr.Button("Run", variant="primary", elem_id="run")
        with gr.Row():
            result = gr.Video(label="Animation (with the driving video's audio)", height=VIDEO_HEIGHT,
                              interactive=False, elem_id="result")
            visualization = gr.Video(label="Visualisation: source | driving | occlusion | animation",
                                     height=VIDEO_HEIGHT, interactive=False, elem_id="visualization")
        with gr.Row():
            downloads = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="downloads")
            status = gr.Markdown(elem_id="status")

        def run_job(source_file: Any, driving_file: Any, model_name: str, mode_name: str, adapt: bool,
                    best: str | None, crop_name: str, smooth_motion: bool, pose: str,
                    progress: gr.Progress = gr.Progress()) -> Iterator[JobOutputs]:  # noqa: B008 (gradio's API)
            inputs = PageInputs(_upload_path(source_file), _upload_path(driving_file), model_name, mode_name,
                                adapt, best, crop_name, smooth_motion, pose)
            yield from _run(context, inputs, progress)

        # preprocess=False: the job gets the uploads as gradio stored them (in its cache, checked to be uploads) and
        # reads them itself, so that a file that is not an image or a video gets our one-line message
        run.click(run_job, inputs=[source, driving, model, mode, adapt_scale, best_frame, crop, smooth, landmarks],
                  outputs=[result, visualization, downloads, status], show_progress="full", api_name="animate",
                  preprocess=False)
    return page


def _run(context: PageContext, inputs: PageInputs, progress: gr.Progress) -> Iterator[JobOutputs]:
    """One job: check and animate into a fresh job folder, yield the results (gradio copies them into its cache)
    and remove the folder when gradio comes back for more."""
    uploads = [Path(path) for path in (inputs.source, inputs.driving) if path]
    folder = Path(tempfile.mkdtemp(prefix="job-", dir=context.jobs_dir))
    try:
        try:
            with context.job():
                outputs = _animate(context, inputs, folder, progress)
        except UserError as exc:
            raise _message(_public(str(exc), uploads)) from None
        except gr.Error:
            raise
        except Exception as exc:
            raise _server_error(exc) from None
        yield outputs
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _animate(context: PageContext, inputs: PageInputs, folder: Path, progress: gr.Progress) -> JobOutputs:
    """The job's work (see :func:`_run`): the results written into ``folder``; UserError for the user's
    mistakes."""
    request = _request(context, inputs)
    driving_info = check_driving(request.driving, context.limits)
    started = time.monotonic()
    animator = context.animator(request.model)
    paths = render(animator, request, folder / RESULT_NAME, _frame_progress(progress, request.crop, context))
    seconds = time.monotonic() - started
    status = (f"Done: {driving_info.num_frames} frames at {driving_info.fps:g} fps with {inputs.model} in "
              f"{seconds:.1f} s.")
    return str(paths[0]), str(paths[1]), [str(path) for path in paths], status


def _server_error(exc: Exception) -> gr.Error:
    """The one line shown for a failure that is not the user's: a full disk or the like, else a bug (whose
    traceback goes to the server's log)."""
    errno = getattr(exc, "errno", None)
    if isinstance(exc, OSError) and errno in OUTPUT_FAULTS:
        LOGGER.error("a job could not write its output: %s", exc)
        return _message(f"the server could not write the result: {OUTPUT_FAULTS[errno]}")
    LOGGER.error("a job failed (a bug in motiontransfer)", exc_info=exc)
    return _message("the job failed with an internal error (a bug); the server's log has the details")


def _message(text: str) -> gr.Error:
    """The one-line message shown on the page until the user closes it (no traceback in the server's log)."""
    return gr.Error(text, duration=None, print_exception=False)


def _request(context: PageContext, inputs: PageInputs) -> JobRequest:
    """The job's request after checking every field and the source image (the driving video is checked next)."""
    if not inputs.source:
        raise UserError("choose a source image: upload one or click a sample")
    if not inputs.driving:
        raise UserError("choose a driving video: upload one, record one or click a sample")
    check_source(Path(inputs.source), context.limits)
    return JobRequest(source=Path(inputs.source), driving=Path(inputs.driving),
                      model=check_choice("model", inputs.model, context.models),
                      mode=check_choice("mode", inputs.mode, MODES), adapt_scale=bool(inputs.adapt_scale),
                      best_frame=parse_best_frame(inputs.best_frame), crop=check_choice("crop", inputs.crop, CROPS),
                      smooth=bool(inputs.smooth), landmarks=check_choice("pose detector", inputs.landmarks, LANDMARKS))


def _upload_path(payload: Any) -> str | None:
    """The server path of an upload as an unprocessed input gives it (gradio's file data: ``{"path": ...}``)."""
    if isinstance(payload, dict):
        if isinstance(payload.get("video"), dict):  # gradio < 5 wrapped videos once more
            payload = payload["video"]
        return payload.get("path") or None
    return str(payload) if payload else None


def _frame_progress(progress: gr.Progress, crop: str, context: PageContext) -> Any:
    """The page's progress bar over frames (with a crop the detection pass comes first), which also ends the job
    between two frames when the server stops."""
    stages = iter(["finding the subject", "animating"] if crop != "none" else ["animating"])

    def wrap(items: Iterable[dict[str, Any]], total: int | None) -> Iterator[dict[str, Any]]:
        for item in progress.tqdm(items, desc=next(stages, "animating"), total=total, unit="frames"):
            context.check_running()
            yield item

    return wrap


def _public(message: str, uploads: list[Path]) -> str:
    """``message`` on one line, naming uploads by their file name instead of their place on the server."""
    for path in uploads:
        message = message.replace(str(path), path.name)
    return " ".join(part.strip() for part in message.splitlines() if part.strip())
