"""Animation speed on the CPU (issue 19): every path side by side in one run, as whole processes and as the model
alone, against an in-repo reference loop that does what the official demo loops do.

Paths:

* ``reference``: ``benchmarks/reference_loop.py``, the official demo loop written with our modules (the whole
  driving video in memory as float frames; per frame, batch 1, eager fp32, the full generator forward, which
  encodes the source again every frame; all predictions kept, the video written at the end);
* ``eager``: ``motiontransfer animate ... --eager`` (the streaming pipeline as before issue 19: source encoded
  once, eager fp32);
* ``fast-fp32``: ``motiontransfer animate ...`` (the default: the fast path, fp32);
* ``fast-bf16``: ``motiontransfer animate ... --precision bf16``.

FOMM runs ``--mode relative --adapt-scale`` (the official ``--relative --adapt_scale``); LIA runs relative motion
(it has no keypoints, so no movement scale).

Inputs, made once and cached in ``--work``: random-weight model files (``torch.manual_seed(0)``) of the vox-256
FOMM and the lia-vox-256 LIA, a 256 px source PNG and 256 px driving mp4s of procedural faces, one per length.

Measured:

* whole process (python start, import, load, decode, animate, encode, exit), each path a child process: wall time
  and peak RSS (``ru_maxrss`` of the child from ``os.wait4``, the child started from a bare ``python -S`` so that
  this process's own memory is not counted in it); ``--runs`` runs per path, the paths alternating,
  medians; at every ``--frames`` length for each family, and at ``--long-frames`` for FOMM (``--long-runs`` runs):
  the reference holds the video, so its memory grows with it, while the streaming paths should stay flat;
* model only, in this process, after a warm-up pass: ms/frame of each path on the same driving frames (through
  ``motiontransfer.api.load(..., precision=..., accelerate=...)`` for ours), max |diff| and PSNR of each path's
  predictions against the eager fp32 path, FLOPs per frame (``torch.utils.flop_counter``) and achieved GFLOP/s;
* this machine's fp32 and bf16 rates, measured with torch: a large matrix product and a 256-channel 3x3
  convolution at 64 x 64, channels-last.

Usage:
    python benchmarks/speed.py [--markdown docs/performance.md] [--threads 2] [--runs 3] [--frames 48 100]
        [--long-frames 2000 | --skip-long] [--long-runs 1] [--long-paths PATH ...] [--families fomm lia]
        [--paths reference eager fast-fp32 fast-bf16] [--per-frame-frames 16] [--repeats 3]
        [--work benchmarks/results/speed-work] [--json benchmarks/results/speed.json]
        [--fomm-config vox-256] [--lia-config lia-vox-256] [--size 256]

About 1.5 hours on an idle 2-core machine (the 2000-frame runs take about 55 minutes, the reference's alone about
25; ``--long-paths fast-fp32 fast-bf16`` runs only the paths whose memory must stay flat, about 20), about 30
minutes with ``--skip-long``; the first run also makes the inputs (about 2 minutes). The reference
holds the 2000-frame video as float64 and float32 copies, about 8 GiB at its peak. Run it on an otherwise idle
machine: with other processes on the cores the figures mean nothing. A path that cannot run (a missing CLI flag or
API argument, a failing child, an output with the wrong frame count) stops the benchmark with the reason; nothing is
skipped.
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from machine import describe_machine
from PIL import Image, ImageDraw, ImageFont
from reference_loop import fomm_frame, fomm_predictions, lia_frame, lia_predictions
from torch.utils.flop_counter import FlopCounterMode

from motiontransfer import api
from motiontransfer.checkpoint import load_model_file, save_model_file
from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec
from motiontransfer.evaluation.metrics import psnr
from motiontransfer.experiment import load_experiment, model_from_file
from motiontransfer.families.lia.networks import to_signed
from motiontransfer.fileio import atomic_write_bytes, atomic_write_text
from motiontransfer.models.base import AnimationModel
from motiontransfer.registry import family as family_spec
from motiontransfer.video.io import VideoReader, VideoWriter, count_frames, read_image, write_image

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = Path(__file__).resolve().parent
REFERENCE_SCRIPT = BENCHMARKS / "reference_loop.py"
DEFAULT_WORK = ROOT / "benchmarks" / "results" / "speed-work"
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "speed.json"
DEFAULT_PLOT = ROOT / "docs" / "images" / "performance.png"
DEFAULT_COMMAND = "python benchmarks/speed.py --markdown docs/performance.md"

PATHS = ("reference", "eager", "fast-fp32", "fast-bf16")
BASELINE = "eager"
"""The path every other path's predictions are compared with (eager fp32, source encoded once)."""
CLI_FLAGS: dict[str, list[str]] = {"eager": ["--eager"], "fast-fp32": [], "fast-bf16": ["--precision", "bf16"]}
"""``motiontransfer animate`` flags of each path (issue 19's contract)."""
LOAD_ARGUMENTS: dict[str, dict[str, Any]] = {"eager": {"accelerate": False}, "fast-fp32": {"precision": "fp32"},
                                             "fast-bf16": {"precision": "bf16"}}
"""``motiontransfer.api.load`` keyword arguments of each path (issue 19's contract)."""
PRECISION = {"reference": "fp32", "eager": "fp32", "fast-fp32": "fp32", "fast-bf16": "bf16"}


@dataclass(frozen=True)
class FamilySetup:
    """How a family is benchmarked: its config and whether it adapts the movement scale (FOMM's official demo
    flags; LIA has no keypoints)."""

    config: str
    adapt_scale: bool


FAMILIES = {"fomm": FamilySetup("vox-256", adapt_scale=True), "lia": FamilySetup("lia-vox-256", adapt_scale=False)}


def family_paths(family: str, paths: Sequence[str]) -> list[str]:
    """``paths`` without ``fast-bf16`` for a family that has no bfloat16 path (LIA: the CLI refuses it)."""
    has_bf16 = bool(family_spec(family).model.reduced_precision_modules)
    return [path for path in paths if path != "fast-bf16" or has_bf16]
FAMILY_LABELS = {"fomm": "FOMM", "lia": "LIA"}

# Issue 19's "done when" (2 threads, this machine).
TARGET_FP32_SPEEDUP = 2.0
TARGET_FP32_MAX_DIFF = 1e-4
TARGET_BF16_SPEEDUP = 3.0
TARGET_BF16_PSNR = 40.0
TARGET_RSS_GROWTH_MIB = 100.0
TARGET_LIA_SPEEDUP = 1.5
OUR_PATHS = ("eager", "fast-fp32", "fast-bf16")
NOT_MEASURED_HERE = (
    "ONNX export round trip: tested by the test suite (`motiontransfer export --format onnx`), not by this benchmark",
    "bf16 and fast paths equivalent to eager on a tiny config, official checkpoint parity: the test suite",
)


# ------------------------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Inputs:
    """The benchmark's input files: a model file per family, the source image and a driving video per length."""

    models: dict[str, Path]
    source: Path
    driving: dict[int, Path]
    size: int


def make_model_file(path: Path, config: str, seed: int = 0) -> Path:
    """A random-weight model of ``config`` (``torch.manual_seed(seed)`` before building it) saved to ``path``."""
    experiment = load_experiment(config)
    torch.manual_seed(seed)
    model = family_spec(experiment.family).model(experiment)  # type: ignore[call-arg]
    return save_model_file(path, model.to_model_file())


def render_driving(path: Path, frames: int, size: int, fps: float = 25.0) -> Path:
    """Procedural faces test video 1 (``frames`` frames at ``size`` px) written to ``path``."""
    data = ProceduralSource(ProceduralSpec("faces", size=size, videos=2, frames=frames, split="test"))
    with VideoWriter(path, fps=fps) as writer:
        for frame in data.frames(1):
            writer.write(frame.tensor())
    return path


def make_inputs(work: Path, frame_counts: Sequence[int], configs: Mapping[str, str], size: int = 256,
                seed: int = 0) -> Inputs:
    """The inputs in ``work``, each made only when its file is missing (every file is written atomically, so a file
    that exists is complete). ``configs``: family -> config name (the models must work at ``size``)."""
    work.mkdir(parents=True, exist_ok=True)
    models = {}
    for name, config in configs.items():
        stem = Path(config).stem
        path = work / f"{stem if stem.startswith(name) else f'{name}-{stem}'}-seed{seed}.mt"
        models[name] = path if path.is_file() else make_model_file(path, config, seed)
    source = work / f"source-{size}.png"
    if not source.is_file():
        data = ProceduralSource(ProceduralSpec("faces", size=size, videos=2, frames=1, split="test"))
        write_image(source, data.frame(0, 0).tensor())
    driving = {}
    for frames in sorted(set(frame_counts)):
        path = work / f"driving-{size}-{frames}.mp4"
        driving[frames] = path if path.is_file() else render_driving(path, frames, size)
    return Inputs(models, source, driving, size)


# -------------------------------------------------------------------------------------------- whole processes


@dataclass(frozen=True)
class ProcessRun:
    """One child process: wall time from start to exit and its peak resident set size."""

    seconds: float
    peak_rss_mib: float


class ProcessFailed(RuntimeError):
    """A measured child exited with an error (or wrote the wrong output)."""


LAUNCHER = """
import json, os, sys, time
command, log = json.loads(sys.argv[1]), sys.argv[2]
actions = [(os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), (os.POSIX_SPAWN_DUP2, 1, 2)]
start = time.perf_counter()
pid = os.posix_spawnp(command[0], command, os.environ, file_actions=actions)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "exit": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss}))
"""
"""Starts a measured command from a small process. Linux counts the memory of the process a child was forked from
(at the fork) in the child's ``ru_maxrss``, so a child started by this benchmark directly (which holds torch and
models) would report at least this process's size; started by a bare ``python -S``, a child's peak RSS is its own."""


def run_process(command: Sequence[str], env: Mapping[str, str] | None = None) -> ProcessRun:
    """Run ``command`` to its end: its wall time (spawned to reaped) and its own peak RSS (``ru_maxrss`` from
    ``os.wait4``, KiB on Linux), measured by :data:`LAUNCHER`.

    Raises:
        ProcessFailed: a non-zero exit, with the end of the child's output.
    """
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "output.txt"
        launcher = subprocess.run([sys.executable, "-S", "-c", LAUNCHER, json.dumps(list(map(str, command))),
                                   str(log)], capture_output=True, text=True,
                                  env=None if env is None else dict(env))
        if launcher.returncode != 0:
            raise ProcessFailed(f"the launcher failed ({launcher.returncode}): {launcher.stderr[-3000:]}")
        measured = json.loads(launcher.stdout)
        if measured["exit"] != 0:
            tail = log.read_bytes()[-3000:].decode(errors="replace") if log.exists() else ""
            raise ProcessFailed(f"exit status {measured['exit']}: {' '.join(map(str, command))}\n{tail}")
    return ProcessRun(measured["seconds"], measured["maxrss_kib"] / 1024)


@dataclass(frozen=True)
class Job:
    """A whole-process measurement: the command, the video it writes and the frames that video must have."""

    command: list[str]
    out: Path | None = None
    frames: int | None = None


def child_environment(threads: int) -> dict[str, str]:
    """This environment with the children's thread count pinned (torch's intra-op pool reads OMP_NUM_THREADS)."""
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def jobs_for(inputs: Inputs, family: str, frames: int, out_dir: Path, paths: Sequence[str],
             flags: Mapping[str, list[str]] = CLI_FLAGS,
             adapt_scale: bool | None = None) -> dict[str, Job]:
    """The command of each path for ``family`` driven by the ``frames``-frame video, writing into ``out_dir``."""
    adapt = FAMILIES[family].adapt_scale if adapt_scale is None else adapt_scale
    common = ["--checkpoint", str(inputs.models[family]), "--source", str(inputs.source),
              "--driving", str(inputs.driving[frames]), "--mode", "relative", *(["--adapt-scale"] * adapt)]
    jobs = {}
    for name in paths:
        out = out_dir / f"{family}-{frames}-{name}.mp4"
        if name == "reference":
            command = [sys.executable, str(REFERENCE_SCRIPT), *common, "--out", str(out)]
        else:
            command = [sys.executable, "-m", "motiontransfer", "animate", *common, "--out", str(out), *flags[name]]
        jobs[name] = Job(command, out, frames)
    return jobs


def summarize(runs: Sequence[ProcessRun]) -> dict[str, Any]:
    """Per-run figures and their medians."""
    seconds = [run.seconds for run in runs]
    rss = [run.peak_rss_mib for run in runs]
    return {"seconds": seconds, "peak_rss_mib": rss, "median_seconds": statistics.median(seconds),
            "median_peak_rss_mib": statistics.median(rss)}


def whole_process(jobs: Mapping[str, Job], runs: int, env: Mapping[str, str] | None = None,
                  report: Callable[[str, ProcessRun], None] | None = None) -> dict[str, dict[str, Any]]:
    """``runs`` runs of every job, alternating (A B C, A B C, ...); per job the runs and their medians. Each output
    is removed before its run and must have the job's frame count afterwards.

    Raises:
        ProcessFailed: a child failed or wrote the wrong number of frames.
    """
    measured: dict[str, list[ProcessRun]] = {name: [] for name in jobs}
    for _ in range(runs):
        for name, job in jobs.items():
            if job.out is not None:
                job.out.unlink(missing_ok=True)
            run = run_process(job.command, env)
            if job.out is not None and job.frames is not None:
                written = count_frames(job.out) if job.out.exists() else 0
                if written != job.frames:
                    raise ProcessFailed(f"{name} wrote {written} frames to {job.out}, expected {job.frames}")
            measured[name].append(run)
            if report is not None:
                report(name, run)
    return {name: summarize(found) for name, found in measured.items()}


# ---------------------------------------------------------------------------------------- the contract in place


def cli_help() -> str:
    """``motiontransfer animate --help`` of this interpreter's package."""
    result = subprocess.run([sys.executable, "-m", "motiontransfer", "animate", "--help"], capture_output=True,
                            text=True, check=True)
    return result.stdout


def missing_cli_flags(help_text: str, paths: Sequence[str], flags: Mapping[str, list[str]] = CLI_FLAGS) -> list[str]:
    """The options the CLI paths need that ``help_text`` does not list."""
    needed = sorted({flag for name in paths if name != "reference" for flag in flags[name] if flag.startswith("--")})
    return [flag for flag in needed if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text)]


def missing_load_arguments(load: Callable[..., Any], paths: Sequence[str],
                           arguments: Mapping[str, dict[str, Any]] = LOAD_ARGUMENTS) -> list[str]:
    """The keyword arguments the in-process paths pass to ``load`` that its signature does not take."""
    parameters = inspect.signature(load).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return []
    needed = sorted({key for name in paths if name != "reference" for key in arguments[name]})
    return [key for key in needed if key not in parameters]


# --------------------------------------------------------------------------------------------------- model only


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference between two arrays of the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} and {b.shape}")
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


def psnr_db(prediction: np.ndarray, target: np.ndarray) -> float:
    """PSNR (dB, [0, 1] images) of all frames together: ``10 log10(1 / MSE)`` with the MSE over every pixel of
    every frame; 100 for identical frames (:func:`motiontransfer.evaluation.metrics.psnr`)."""
    return psnr(torch.from_numpy(np.asarray(prediction)), torch.from_numpy(np.asarray(target)))


def count_flops(step: Callable[[], Any], module: torch.nn.Module | None = None) -> int:
    """FLOPs of ``step()`` as torch's flop counter sees them (convolutions and matrix products; a multiply-add is
    2 FLOPs; grid sampling and elementwise work are not counted), without gradients. ``module``: the parameters
    ``step`` uses, frozen while counting (the counter's module tracker refuses outputs that require a gradient
    without having one, such as a view of a parameter)."""
    parameters = [] if module is None else [p for p in module.parameters() if p.requires_grad]
    try:
        for parameter in parameters:
            parameter.requires_grad_(False)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            step()
    finally:
        for parameter in parameters:
            parameter.requires_grad_(True)
    return int(counter.get_total_flops())


def as_hwc(frames: torch.Tensor) -> list[np.ndarray]:
    """(T, 3, H, W) float tensor -> T float64 (H, W, 3) arrays (the reference loop's frames)."""
    return [frame.permute(1, 2, 0).numpy().astype(np.float64) for frame in frames]


def reference_run(model: AnimationModel, source: torch.Tensor, frames: torch.Tensor,
                  adapt_scale: bool) -> np.ndarray:
    """The reference loop's predictions (T, H, W, 3) for (3, H, W) ``source`` and (T, 3, H, W) ``frames``."""
    source_hwc = source.permute(1, 2, 0).numpy().astype(np.float64)
    if model.family == "fomm":
        out = fomm_predictions(model, source_hwc, as_hwc(frames), adapt_scale=adapt_scale)  # type: ignore[arg-type]
    elif model.family == "lia":
        out = lia_predictions(model, source_hwc, frames.clone())  # type: ignore[arg-type]
    else:
        raise ValueError(f"no reference loop for {model.family}")
    return np.stack(out)


def frame_flops(model: AnimationModel, source: torch.Tensor, frames: torch.Tensor,
                adapt_scale: bool) -> dict[str, int]:
    """FLOPs of one frame: ``reference`` (the reference loop's iteration, full generator forward) and ``cached``
    (the streaming pipeline's per-frame work at batch 1: the driving motion, the transfer and the render from the
    source encoded once)."""
    image, first, frame = source[None], frames[:1], frames[1:2] if len(frames) > 1 else frames[:1]
    with torch.no_grad():
        state = model.encode_source(image)
        initial = model.extract_motion(first)
        if model.family == "fomm":
            kp_source, kp_initial = model.kp_detector(image), model.kp_detector(first)  # type: ignore[operator]

            def reference() -> Any:
                return fomm_frame(model, image, kp_source, kp_initial, frame,  # type: ignore[arg-type]
                                  adapt_scale=adapt_scale)
        elif model.family == "lia":
            start = model.generator.enc.motion(to_signed(first))  # type: ignore[union-attr]

            def reference() -> Any:
                return lia_frame(model, to_signed(image), start, to_signed(frame))  # type: ignore[arg-type]
        else:
            raise ValueError(f"no reference loop for {model.family}")

    def cached() -> Any:
        motion = model.extract_motion(frame)
        return model.render(state, model.transfer(state.motion, motion, initial, "relative", adapt_scale))

    return {"reference": count_flops(reference, model), "cached": count_flops(cached, model)}


def timed(step: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    """Median seconds of ``repeats`` calls of ``step`` after one warm-up call, and the last call's result."""
    result = step()
    elapsed = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = step()
        elapsed.append(time.perf_counter() - start)
    return statistics.median(elapsed), result


def per_frame(model_path: Path, source: torch.Tensor, frames: torch.Tensor, paths: Sequence[str], *,
              adapt_scale: bool, repeats: int = 3, load: Callable[..., api.Animator] = api.load,
              arguments: Mapping[str, dict[str, Any]] = LOAD_ARGUMENTS,
              report: Callable[[str, float], None] | None = None) -> dict[str, Any]:
    """Model-only figures of every path on the same ``frames`` (T, 3, H, W), driving ``source`` (3, H, W).

    The reference loop runs on the model file's networks as they are (eager fp32); the others through
    ``load(model_path, device="cpu", **arguments[path])`` and ``Animator.animate`` with its defaults (relative
    motion). Each path: one warm-up pass over the frames, then the median of ``repeats`` timed passes.

    Returns:
        ``frames``, ``flops`` (:func:`frame_flops`) and per path: ``ms_per_frame``, ``speedup`` (vs the reference,
        when measured), ``gflop_per_frame`` (the reference's own FLOPs for the reference, the cached FLOPs for the
        others), ``gflops`` (achieved), and against the eager path (when measured): ``max_abs_diff``, ``psnr_db``.
    """
    model = model_from_file(load_model_file(model_path), device="cpu")
    flops = frame_flops(model, source, frames, adapt_scale)
    measured: dict[str, dict[str, Any]] = {}
    predictions: dict[str, np.ndarray] = {}
    for name in paths:
        if name == "reference":
            def step() -> np.ndarray:
                return reference_run(model, source, frames, adapt_scale)
        else:
            animator = load(model_path, device="cpu", **arguments[name])

            def step(animator: api.Animator = animator) -> np.ndarray:
                return np.stack(list(animator.animate(source, frames, mode="relative", adapt_scale=adapt_scale)))
        seconds, predictions[name] = timed(step, repeats)
        ms = 1000 * seconds / len(frames)
        count = flops["reference" if name == "reference" else "cached"]
        measured[name] = {"ms_per_frame": ms, "gflop_per_frame": count / 1e9, "gflops": count / 1e9 / (ms / 1000)}
        if report is not None:
            report(name, ms)
    for name, figures in measured.items():
        if "reference" in measured:
            figures["speedup"] = measured["reference"]["ms_per_frame"] / figures["ms_per_frame"]
        if BASELINE in predictions:
            figures["max_abs_diff"] = max_abs_diff(predictions[name], predictions[BASELINE])
            figures["psnr_db"] = psnr_db(predictions[name], predictions[BASELINE])
    return {"frames": len(frames), "flops": flops, "paths": measured}


def read_frames_tensor(path: Path, size: int, count: int) -> torch.Tensor:
    """The first ``count`` frames of a video as (count, 3, size, size)."""
    with VideoReader(path, size=size) as reader:
        frames = [frame for _, frame in zip(range(count), reader, strict=False)]
    if len(frames) < count:
        raise ValueError(f"{path} has {len(frames)} frames, fewer than {count}")
    return torch.stack(frames)


# ------------------------------------------------------------------------------------------------ machine rates


def _best_seconds(step: Callable[[], Any], repeats: int) -> float:
    step()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best


@torch.no_grad()
def matmul_rate(size: int, dtype: torch.dtype, repeats: int = 5) -> float:
    """GFLOP/s of a (size x size) @ (size x size) product in ``dtype`` (2 size^3 FLOPs), best of ``repeats``."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(dtype)
    b = torch.randn(size, size, generator=generator).to(dtype)
    return 2 * size**3 / _best_seconds(lambda: a @ b, repeats) / 1e9


@torch.no_grad()
def conv_rate(channels: int, size: int, dtype: torch.dtype, repeats: int = 5) -> float:
    """GFLOP/s of a ``channels`` -> ``channels`` 3x3 convolution (padding 1) of one ``size`` x ``size`` image in
    ``dtype``, channels-last (2 * 9 * channels^2 * size^2 FLOPs), best of ``repeats``."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False).to(dtype=dtype).eval()
    conv = conv.to(memory_format=torch.channels_last)
    x = torch.randn(1, channels, size, size).to(dtype=dtype, memory_format=torch.channels_last)
    return 2 * 9 * channels**2 * size**2 / _best_seconds(lambda: conv(x), repeats) / 1e9


def machine_rates(matmul_size: int = 2048, channels: int = 256, conv_size: int = 64,
                  repeats: int = 5) -> dict[str, Any]:
    """The machine's measured GFLOP/s: ``matmul_fp32``, ``matmul_bf16``, ``conv_fp32``, ``conv_bf16``, with the
    shapes they were measured at."""
    rates: dict[str, Any] = {"matmul_size": matmul_size, "conv_channels": channels, "conv_size": conv_size}
    for label, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        rates[f"matmul_{label}"] = matmul_rate(matmul_size, dtype, repeats)
        rates[f"conv_{label}"] = conv_rate(channels, conv_size, dtype, repeats)
    return rates


def cpu_flags() -> list[str]:
    """The CPU's vector and matrix flags that matter here (AVX2, AVX-512, bf16, AMX) from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    match = re.search(r"^flags\s*:(.*)$", text, re.MULTILINE)
    flags = match.group(1).split() if match else []
    return sorted(f for f in set(flags) if f in ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni")
                  or f.startswith("amx"))


def machine_description(threads: int) -> dict[str, Any]:
    """What the results page says about the machine."""
    model = platform.processor() or platform.machine()
    memory = None
    try:
        text = Path("/proc/cpuinfo").read_text()
        if found := re.search(r"^model name\s*:(.*)$", text, re.MULTILINE):
            model = found.group(1).strip()
        if found := re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE):
            memory = int(found.group(1)) / 2**20
    except OSError:
        pass
    try:
        bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        bf16 = None
    return {"cpu": model, "cores": os.cpu_count(), "flags": cpu_flags(), "memory_gib": memory,
            "threads": threads, "torch": torch.__version__, "python": platform.python_version(),
            "onednn_bf16": bf16, "summary": describe_machine()}


# ------------------------------------------------------------------------------------------------ the done-when


def model_title(results: Mapping[str, Any], family: str) -> str:
    """``FOMM vox-256``, ``LIA vox-256``: the family and the config the results were measured with."""
    config = results.get("settings", {}).get("inputs", {}).get(family)
    if config is None:
        config = FAMILIES[family].config if family in FAMILIES else ""
    config = config.removeprefix(f"{family}-")
    return f"{FAMILY_LABELS.get(family, family)} {config}".strip()


def _median(results: Mapping[str, Any], family: str, frames: int | str, path: str, key: str) -> float | None:
    entry = results.get("whole_process", {}).get(family, {}).get(str(frames), {}).get(path)
    return None if entry is None else entry[key]


def _short_lengths(results: Mapping[str, Any], family: str) -> list[int]:
    settings = results.get("settings", {})
    measured = results.get("whole_process", {}).get(family, {})
    return [n for n in settings.get("frames", []) if str(n) in measured]


def targets(results: Mapping[str, Any]) -> list[tuple[str, bool | None]]:
    """Issue 19's "done when", each computed from the results: (text, met), met None when not measured."""
    checks: list[tuple[str, bool | None]] = []
    settings = results.get("settings", {})

    def speedup(family: str, path: str, goal: float, title: str) -> None:
        lengths = _short_lengths(results, family)
        for frames in lengths:
            ours = _median(results, family, frames, path, "median_seconds")
            reference = _median(results, family, frames, "reference", "median_seconds")
            if ours is None or reference is None:
                checks.append((f"{title} end to end, {frames} frames: {path} at least {goal:g}x the reference loop",
                               None))
                continue
            ratio = reference / ours
            checks.append((f"{title} end to end, {frames} frames: {path} {ratio:.2f}x the reference loop "
                           f"({ours:.1f} s vs {reference:.1f} s; goal {goal:g}x)", ratio >= goal))
        if not lengths:
            checks.append((f"{title} end to end: {path} at least {goal:g}x the reference loop", None))

    def per_frame_value(family: str, path: str, key: str) -> float | None:
        return results.get("per_frame", {}).get(family, {}).get("paths", {}).get(path, {}).get(key)

    speedup("fomm", "fast-fp32", TARGET_FP32_SPEEDUP, "FOMM fp32")
    diff = per_frame_value("fomm", "fast-fp32", "max_abs_diff")
    checks.append((f"FOMM fp32: max |diff| vs eager fp32 {diff:.2g} (goal <= {TARGET_FP32_MAX_DIFF:g})"
                   if diff is not None else f"FOMM fp32: max |diff| vs eager fp32 <= {TARGET_FP32_MAX_DIFF:g}",
                   None if diff is None else diff <= TARGET_FP32_MAX_DIFF))
    speedup("fomm", "fast-bf16", TARGET_BF16_SPEEDUP, "FOMM bf16")
    value = per_frame_value("fomm", "fast-bf16", "psnr_db")
    checks.append((f"FOMM bf16: PSNR vs eager fp32 {value:.1f} dB (goal >= {TARGET_BF16_PSNR:g} dB)"
                   if value is not None else f"FOMM bf16: PSNR vs eager fp32 >= {TARGET_BF16_PSNR:g} dB",
                   None if value is None else value >= TARGET_BF16_PSNR))
    long = settings.get("long_frames") if str(settings.get("long_frames")) in results.get("whole_process", {}).get(
        "fomm", {}) else None
    lengths = _short_lengths(results, "fomm")
    short = max(lengths) if lengths else None
    for path in OUR_PATHS:
        for frames in [n for n in (short, long) if n is not None]:
            ours = _median(results, "fomm", frames, path, "median_peak_rss_mib")
            reference = _median(results, "fomm", frames, "reference", "median_peak_rss_mib")
            if ours is None or reference is None:
                continue
            checks.append((f"FOMM peak RSS, {frames} frames: {path} {ours:.0f} MiB vs the reference loop's "
                           f"{reference:.0f} MiB (goal: at most the reference's)", ours <= reference))
        low = None if short is None else _median(results, "fomm", short, path, "median_peak_rss_mib")
        high = None if long is None else _median(results, "fomm", long, path, "median_peak_rss_mib")
        if low is None or high is None:
            checks.append((f"FOMM peak RSS of {path}: at most the reference loop's, and flat from {short or 100} to "
                           f"{settings.get('long_frames') or 2000} frames (< +{TARGET_RSS_GROWTH_MIB:g} MiB)", None))
        else:
            checks.append((f"FOMM peak RSS from {short} to {long} frames: {path} {high - low:+.0f} MiB "
                           f"({low:.0f} -> {high:.0f}; goal < +{TARGET_RSS_GROWTH_MIB:g} MiB)",
                           high - low < TARGET_RSS_GROWTH_MIB))
    speedup("lia", "fast-fp32", TARGET_LIA_SPEEDUP, "LIA-256 fp32")
    return checks


def target_lines(results: Mapping[str, Any]) -> list[str]:
    """The done-when as markdown bullets: met, **not met** or not measured."""
    lines = []
    for text, met in targets(results):
        status = "not measured" if met is None else "met" if met else "**not met**"
        lines.append(f"* {status}: {text}")
    lines += [f"* not measured here: {text}" for text in NOT_MEASURED_HERE]
    return lines


# -------------------------------------------------------------------------------------------------- the tables


def _format(value: float | None, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def whole_process_table(results: Mapping[str, Any]) -> list[str]:
    """Markdown table of the whole-process runs."""
    lines = ["| model | frames | path | wall s (median) | speed-up | peak RSS MiB (median) | runs, s |",
             "|---|---|---|---|---|---|---|"]
    for family, by_length in results.get("whole_process", {}).items():
        for frames, by_path in by_length.items():
            reference = by_path.get("reference", {}).get("median_seconds")
            for path, entry in by_path.items():
                ratio = None if reference is None else reference / entry["median_seconds"]
                runs = ", ".join(f"{s:.1f}" for s in entry["seconds"])
                lines.append(f"| {model_title(results, family)} | {frames} | {path} | {entry['median_seconds']:.1f} | "
                             f"{_format(ratio, '.2f')}x | {entry['median_peak_rss_mib']:.0f} | {runs} |")
    return lines


def per_frame_table(results: Mapping[str, Any]) -> list[str]:
    """Markdown table of the model-only figures."""
    rates = results.get("machine_rates", {})
    lines = ["| model | path | ms/frame | speed-up | GFLOP/frame | effective GFLOP/s | of the machine's conv rate | "
             "max abs diff vs eager | PSNR vs eager, dB |", "|---|---|---|---|---|---|---|---|---|"]
    for family, entry in results.get("per_frame", {}).items():
        for path, figures in entry["paths"].items():
            rate = rates.get(f"conv_{PRECISION.get(path, 'fp32')}")
            share = None if not rate else figures["gflops"] / rate
            lines.append(f"| {model_title(results, family)} | {path} | {figures['ms_per_frame']:.0f} | "
                         f"{_format(figures.get('speedup'), '.2f')}x | {figures['gflop_per_frame']:.1f} | "
                         f"{figures['gflops']:.0f} | {_format(share, '.0%')} | "
                         f"{_format(figures.get('max_abs_diff'), '.2g')} | {_format(figures.get('psnr_db'), '.1f')} |")
    return lines


def rates_table(rates: Mapping[str, Any]) -> list[str]:
    """Markdown table of the machine's measured rates."""
    if not rates:
        return []
    return ["| operation | fp32 GFLOP/s | bf16 GFLOP/s |", "|---|---|---|",
            f"| matrix product {rates['matmul_size']} x {rates['matmul_size']} | {rates['matmul_fp32']:.0f} | "
            f"{rates['matmul_bf16']:.0f} |",
            f"| 3x3 conv {rates['conv_channels']} -> {rates['conv_channels']} channels, {rates['conv_size']} x "
            f"{rates['conv_size']}, channels-last | {rates['conv_fp32']:.0f} | {rates['conv_bf16']:.0f} |"]


def machine_line(machine: Mapping[str, Any]) -> str:
    """One sentence about the machine."""
    if not machine:
        return "Machine: not recorded."
    memory = f", {machine['memory_gib']:.0f} GiB" if machine.get("memory_gib") else ""
    flags = f" ({', '.join(machine['flags'])})" if machine.get("flags") else ""
    bf16 = {True: "oneDNN bf16 supported", False: "no oneDNN bf16", None: "oneDNN bf16 unknown"}[
        machine.get("onednn_bf16")]
    return (f"Machine: {machine['cpu']}, {machine['cores']} logical cores{flags}{memory}; {bf16}; torch "
            f"{machine['torch']}, Python {machine['python']}; {machine['threads']} threads.")


def commands_lines(settings: Mapping[str, Any]) -> list[str]:
    """How to reproduce the figures, and what each path runs."""
    command = settings.get("command", DEFAULT_COMMAND)
    adapt = " --adapt-scale"
    return ["```", command, "```", "",
            "Each path is one process (M: the model file, S: the source, D: the driving video, all in the work "
            "folder; `--adapt-scale` for FOMM only):", "",
            "```",
            f"python benchmarks/reference_loop.py --checkpoint M --source S --driving D --out O --mode relative{adapt}",
            f"motiontransfer animate --checkpoint M --source S --driving D --out O --mode relative{adapt} --eager",
            f"motiontransfer animate --checkpoint M --source S --driving D --out O --mode relative{adapt}",
            f"motiontransfer animate --checkpoint M --source S --driving D --out O --mode relative{adapt} "
            "--precision bf16",
            "```"]


def markdown(results: Mapping[str, Any], plot: str | None = "images/performance.png") -> str:
    """The results page (``plot``: the chart's path relative to the page, None for none)."""
    settings = results.get("settings", {})
    lines = ["# Animation speed on the CPU", "",
             "Issue 19's benchmark, `benchmarks/speed.py`: every way of animating a video on the CPU side by side in "
             "one run, against `benchmarks/reference_loop.py`, an in-repo loop that does what the official demos do "
             "(FOMM's `demo.py --relative --adapt_scale --cpu`, LIA's `run_demo.py`): the whole driving video read "
             "into memory as float frames, then per frame, batch 1, eager fp32, the full generator forward (which "
             "encodes the source again every frame), every prediction kept in a list and the video written at the "
             "end. Paths: `reference` (that loop), `eager` (`motiontransfer animate --eager`: the streaming pipeline, "
             "source encoded once, eager fp32), `fast-fp32` (`motiontransfer animate`, the default) and `fast-bf16` "
             "(`--precision bf16`).", ""]
    measured = results.get("whole_process") or results.get("per_frame")
    if not measured:
        lines += ["**Not measured yet.** The figures are written here by the command below, run on an otherwise "
                  "idle machine.", "", "## Reproduce", "", *commands_lines(settings), "",
                  "## Done when (issue 19)", "", *target_lines(results)]
        return "\n".join(lines) + "\n"
    inputs = settings.get("inputs", {})
    lines += [machine_line(results.get("machine", {})) + f" Measured {settings.get('date', '?')}.", "",
              f"Inputs (made by the script, cached in `{settings.get('work', 'the work folder')}`): random-weight "
              f"model files (`torch.manual_seed(0)`) of `{inputs.get('fomm', 'vox-256')}` (FOMM) and "
              f"`{inputs.get('lia', 'lia-vox-256')}` (LIA), a {settings.get('size', 256)} px source PNG and "
              f"{settings.get('size', 256)} px driving mp4s of procedural faces. FOMM animates with relative motion "
              "and `--adapt-scale`, LIA with relative motion.", ""]
    if plot is not None:
        lines += [f"![Whole-process seconds, model-only ms/frame and peak RSS per path]({plot})", ""]
    lines += ["## Whole process", "",
              f"Each path is its own process, from `python` starting to its exit (import, load, decode, animate, "
              f"encode), {settings.get('threads', '?')} threads (`OMP_NUM_THREADS`); {settings.get('runs', '?')} "
              f"runs per path at each length{long_runs_text(settings)}, paths alternating, medians of wall time "
              "and of peak RSS "
              "(`ru_maxrss` of the child, `os.wait4`). Speed-up: the reference's wall time over the path's.", "",
              *whole_process_table(results), ""]
    if results.get("per_frame"):
        flops = {family: entry["flops"] for family, entry in results["per_frame"].items()}
        counted = "; ".join(f"{model_title(results, f)}: {v['reference'] / 1e9:.1f} GFLOP per frame for the "
                            f"reference's full forward, {v['cached'] / 1e9:.1f} with the source encoded once"
                            for f, v in flops.items())
        lines += ["## Model only", "",
                  f"In one process, the networks alone on {settings.get('per_frame_frames', '?')} driving frames "
                  f"already in memory (no decoding or encoding), after a warm-up pass; median of "
                  f"{settings.get('repeats', '?')} passes. Ours through `motiontransfer.api.load(..., precision=..., "
                  "accelerate=...)` and `Animator.animate` with its defaults. Differences and PSNR are against the "
                  "eager fp32 path's predictions on the same frames.", "", *per_frame_table(results), "",
                  f"FLOPs from `torch.utils.flop_counter` (convolutions and matrix products; grid sampling and "
                  f"elementwise work not counted): {counted}. The effective GFLOP/s is a path's counted FLOPs per "
                  "frame over its time per frame, next to the machine's measured 3x3 convolution rate at the path's "
                  "precision. The counts are those of direct convolutions: the fast paths run the wide 3x3 "
                  "convolutions as Winograd convolutions (up to 4x fewer multiplications) and the upsampling ones "
                  "at the low resolution (2.25x fewer), so their effective rate can exceed the machine's.", ""]
    if results.get("machine_rates"):
        lines += ["## This machine's rates", "",
                  f"Measured with torch at {settings.get('threads', '?')} threads, best of 5:", "",
                  *rates_table(results["machine_rates"]), ""]
    lines += ["## Done when (issue 19)", "", *target_lines(results), "",
              "## Reproduce", "", *commands_lines(settings), "",
              f"The figures are also in `{settings.get('json', 'benchmarks/results/speed.json')}`."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------- the plot

PATH_COLOURS = {"reference": (150, 150, 150), "eager": (99, 140, 190), "fast-fp32": (31, 119, 180),
                "fast-bf16": (214, 110, 30)}
WIDTH, LABEL_WIDTH, ROW, GAP = 760, 170, 18, 4


def bar_panel(title: str, rows: Sequence[tuple[str, float, str, str]], width: int = WIDTH) -> Image.Image:
    """A horizontal bar chart: ``rows`` of (label, value, path (for the colour), value text), scaled to the largest
    value."""
    font = ImageFont.load_default()
    height = 26 + (ROW + GAP) * max(len(rows), 1) + 6
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.text((8, 6), title, fill=(0, 0, 0), font=font)
    top = max((value for _, value, _, _ in rows), default=0.0) or 1.0
    span = width - LABEL_WIDTH - 90
    for index, (label, value, path, text) in enumerate(rows):
        y = 26 + index * (ROW + GAP)
        draw.text((8, y + 3), label, fill=(40, 40, 40), font=font)
        length = max(1, round(span * value / top))
        draw.rectangle((LABEL_WIDTH, y, LABEL_WIDTH + length, y + ROW), fill=PATH_COLOURS.get(path, (90, 90, 90)))
        draw.text((LABEL_WIDTH + length + 6, y + 3), text, fill=(40, 40, 40), font=font)
    return image


def plot(results: Mapping[str, Any]) -> np.ndarray:
    """The results chart: whole-process seconds at the longest short length, model-only ms/frame, and FOMM's peak
    RSS at each measured length; (H, W, 3) uint8."""
    panels = []
    whole = results.get("whole_process", {})
    for family, by_length in whole.items():
        lengths = _short_lengths(results, family) or [int(n) for n in by_length]
        frames = max(lengths)
        by_path = by_length[str(frames)]
        reference = by_path.get("reference", {}).get("median_seconds")
        rows = [(path, entry["median_seconds"], path, f"{entry['median_seconds']:.1f} s"
                 + ("" if reference is None else f", {reference / entry['median_seconds']:.2f}x"))
                for path, entry in by_path.items()]
        panels.append(bar_panel(f"{model_title(results, family)}: whole process, {frames} frames, seconds "
                                "(median; shorter is better)", rows))
    per_frame_rows = [(f"{FAMILY_LABELS.get(family, family)} {path}", figures["ms_per_frame"], path,
                       f"{figures['ms_per_frame']:.0f} ms"
                       + ("" if "speedup" not in figures else f", {figures['speedup']:.2f}x"))
                      for family, entry in results.get("per_frame", {}).items()
                      for path, figures in entry["paths"].items()]
    if per_frame_rows:
        panels.append(bar_panel("Model only: ms per frame (shorter is better)", per_frame_rows))
    rss_rows = [(f"{frames} frames {path}", entry["median_peak_rss_mib"], path,
                 f"{entry['median_peak_rss_mib']:.0f} MiB")
                for frames, by_path in whole.get("fomm", {}).items() for path, entry in by_path.items()]
    if rss_rows:
        panels.append(bar_panel(f"{model_title(results, 'fomm')}: peak RSS of the whole process, MiB", rss_rows))
    if not panels:
        panels.append(bar_panel("No measurements", []))
    canvas = Image.new("RGB", (WIDTH, sum(p.height for p in panels)), (255, 255, 255))
    y = 0
    for panel in panels:
        canvas.paste(panel, (0, y))
        y += panel.height
    return np.asarray(canvas)


def write_png(path: Path, image: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 image as PNG, atomically."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=True)
    return atomic_write_bytes(path, buffer.getvalue())


def long_runs_text(settings: dict[str, Any]) -> str:
    """How the long FOMM video was run, for the page: '' without one."""
    if not settings.get("long_frames"):
        return ""
    paths = settings.get("long_paths") or settings.get("paths") or []
    return (f" (the {settings['long_frames']}-frame FOMM video: {settings.get('long_runs', '?')} per path, paths "
            f"{', '.join(paths)})")


def write_page(results: Mapping[str, Any], page: Path, plot_path: Path) -> tuple[Path, Path]:
    """The markdown page and its chart, both atomically; the page links the chart by its relative path."""
    relative = os.path.relpath(plot_path, page.parent)
    write_png(plot_path, plot(results))
    atomic_write_text(page, markdown(results, Path(relative).as_posix()))
    return page, plot_path


# --------------------------------------------------------------------------------------------------------- main


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads, here and in every child [default: 2]")
    parser.add_argument("--runs", type=int, default=3, help="whole-process runs per path and length [default: 3]")
    parser.add_argument("--frames", type=int, nargs="+", default=[48, 100], help="driving lengths [default: 48 100]")
    parser.add_argument("--long-frames", type=int, default=2000, help="the long FOMM video [default: 2000]")
    parser.add_argument("--long-runs", type=int, default=1, help="runs per path of the long video [default: 1]")
    parser.add_argument("--skip-long", action="store_true", help="no long-video runs")
    parser.add_argument("--long-paths", nargs="+", choices=PATHS, default=None,
                        help="paths run on the long video [default: those of --paths]")
    parser.add_argument("--families", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--per-frame-frames", type=int, default=16, help="frames of the model-only measurement")
    parser.add_argument("--repeats", type=int, default=3, help="timed model-only passes per path [default: 3]")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="inputs and outputs (cached)")
    parser.add_argument("--fomm-config", default=FAMILIES["fomm"].config, help="FOMM config [default: vox-256]")
    parser.add_argument("--lia-config", default=FAMILIES["lia"].config, help="LIA config [default: lia-vox-256]")
    parser.add_argument("--size", type=int, default=256, help="frame size of the inputs, the configs' [default: 256]")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--markdown", type=Path, default=None, help="also write the results page here")
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT, help="the page's chart (with --markdown)")
    args = parser.parse_args(argv)
    for name in ("threads", "runs", "long_frames", "long_runs", "per_frame_frames", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if min(args.frames) < 2:
        parser.error("--frames must be at least 2")
    if max(args.frames) < args.per_frame_frames:
        parser.error("--per-frame-frames must not exceed the longest --frames")
    missing = missing_cli_flags(cli_help(), args.paths)
    if missing:
        parser.error(f"motiontransfer animate has no {', '.join(missing)} option (issue 19's fast path has not landed "
                     "here); the paths that need it cannot be measured. Choose others with --paths.")
    missing = missing_load_arguments(api.load, args.paths)
    if missing:
        parser.error(f"motiontransfer.api.load takes no {', '.join(missing)} argument (issue 19's fast path has not "
                     "landed here); the paths that need it cannot be measured. Choose others with --paths.")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_arguments(argv)
    torch.set_num_threads(args.threads)
    long_frames = None if args.skip_long else args.long_frames
    long_paths = list(args.long_paths or args.paths)
    chosen = {"fomm": args.fomm_config, "lia": args.lia_config}
    configs = {family: chosen[family] for family in args.families}
    lengths = [*args.frames, *([long_frames] if long_frames and "fomm" in args.families else [])]
    print(f"inputs in {args.work} ...", flush=True)
    inputs = make_inputs(args.work, lengths, configs, size=args.size)
    shown_json = args.json.resolve().relative_to(ROOT) if args.json.resolve().is_relative_to(ROOT) else args.json
    shown_work = args.work.resolve().relative_to(ROOT) if args.work.resolve().is_relative_to(ROOT) else args.work
    settings = {"command": " ".join(["python benchmarks/speed.py", *(sys.argv[1:] if argv is None else argv)]),
                "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "threads": args.threads, "runs": args.runs, "frames": sorted(set(args.frames)),
                "long_frames": long_frames, "long_runs": args.long_runs, "paths": list(args.paths),
                "long_paths": long_paths,
                "per_frame_frames": args.per_frame_frames, "repeats": args.repeats, "size": inputs.size,
                "inputs": configs, "work": str(shown_work), "json": str(shown_json)}
    results: dict[str, Any] = {"settings": settings, "machine": machine_description(args.threads),
                               "whole_process": {}, "per_frame": {}, "machine_rates": {}}

    def save() -> None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.json, json.dumps(results, indent=2) + "\n")

    env = child_environment(args.threads)
    out_dir = args.work / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = [(family, frames, args.runs, args.paths) for family in args.families for frames in sorted(set(args.frames))]
    if long_frames and "fomm" in args.families:
        plan.append(("fomm", long_frames, args.long_runs, long_paths))
    for family, frames, runs, paths in plan:
        def report(name: str, run: ProcessRun, family: str = family, frames: int = frames) -> None:
            print(f"  {family} {frames} frames {name}: {run.seconds:.1f} s, {run.peak_rss_mib:.0f} MiB", flush=True)
        jobs = jobs_for(inputs, family, frames, out_dir, family_paths(family, paths))
        results["whole_process"].setdefault(family, {})[str(frames)] = whole_process(jobs, runs, env, report)
        save()
    for family in args.families:
        source = read_image(inputs.source, size=inputs.size)
        frames = read_frames_tensor(inputs.driving[min(n for n in args.frames if n >= args.per_frame_frames)],
                                    inputs.size, args.per_frame_frames)
        results["per_frame"][family] = per_frame(
            inputs.models[family], source, frames, family_paths(family, args.paths),
            adapt_scale=FAMILIES[family].adapt_scale,
            repeats=args.repeats, report=lambda name, ms, family=family: print(f"  {family} model only {name}: "
                                                                              f"{ms:.0f} ms/frame", flush=True))
        save()
    results["machine_rates"] = machine_rates()
    save()
    print("\n".join([*whole_process_table(results), "", *per_frame_table(results), "",
                     *rates_table(results["machine_rates"]), "", *target_lines(results)]))
    print(f"wrote {args.json}")
    if args.markdown is not None:
        for path in write_page(results, args.markdown, args.plot):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
