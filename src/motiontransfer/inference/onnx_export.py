"""Export a model's networks to ONNX (``motiontransfer export``), checked in ONNX Runtime against PyTorch.

The family says which graphs its model has (:meth:`~motiontransfer.models.base.AnimationModel.export_graphs`: the
modules, example inputs, tensor names and dynamic axes); this module traces each one to ``<name>.onnx``, validates
it with ``onnx.checker``, runs it in ONNX Runtime on fresh random inputs with another driving batch size than the
one it was traced with, and compares every output with PyTorch's (max abs difference, :data:`TOLERANCE`). The
folder is written atomically with a ``manifest.json`` (names and shapes of every input and output, the family, the
frame size, the opset and the model's config); nothing is left behind when a check fails.

Needs the ``export`` extra (``onnx`` and ``onnxruntime``); without it :func:`require_onnx` says what to install.
See docs/export.md for running the graphs.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from motiontransfer.config import to_dict
from motiontransfer.errors import ArgumentError, CapabilityError, OutputFileError, Term, UserError
from motiontransfer.fileio import atomic_output, describe_kind, not_a_folder
from motiontransfer.models.base import AnimationModel, ExportGraph

FORMATS: tuple[str, ...] = ("onnx",)
"""The export formats there are."""
OPSET = 17
"""The ONNX opset of the graphs: GridSample (the warps) needs 16; 17 runs in every ONNX Runtime of the last years."""
TOLERANCE = 1e-4
"""Largest accepted max abs difference between ONNX Runtime's outputs and PyTorch's."""
TRACE_BATCH = 2
"""The driving batch size the graphs are traced with."""
CHECK_BATCH = 3
"""The driving batch size they are checked with (another one, so that a batch size baked into a graph shows)."""
MANIFEST = "manifest.json"
EXTRA_HINT = 'pip install "motiontransfer[export]"'

__all__ = ["CHECK_BATCH", "FORMATS", "MANIFEST", "OPSET", "TOLERANCE", "ExportResult", "GraphCheck",
           "check_output_folder", "export_onnx", "require_onnx"]


@dataclass(frozen=True)
class GraphCheck:
    """How one exported graph compared with PyTorch.

    Attributes:
        name: the graph's name; its file is ``<name>.onnx``.
        max_abs_diff: the largest absolute difference over all its outputs.
        batch: the driving batch size it was checked with.
        tolerance: the largest difference accepted.
    """

    name: str
    max_abs_diff: float
    batch: int
    tolerance: float = TOLERANCE

    @property
    def file(self) -> str:
        """The graph's file name in the export folder."""
        return f"{self.name}.onnx"


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_onnx` wrote: the folder, one check per graph and the manifest (as written)."""

    path: Path
    checks: tuple[GraphCheck, ...]
    manifest: dict[str, Any]


def require_onnx() -> tuple[ModuleType, ModuleType]:
    """Import and return ``(onnx, onnxruntime)``.

    Raises:
        UserError: either is missing; the message says how to install the ``export`` extra.
    """
    try:
        return importlib.import_module("onnx"), importlib.import_module("onnxruntime")
    except ImportError as exc:
        missing = exc.name or "onnx or onnxruntime"
        raise UserError(f"ONNX export needs the onnx and onnxruntime packages ({missing} is not installed): "
                        f"{EXTRA_HINT}") from None


def check_output_folder(out_dir: str | Path, overwrite: bool = False) -> Path:
    """Check that an export can be written to ``out_dir`` before any work: a new folder, an empty one, or (with
    ``overwrite``) a previous export (a folder holding :data:`MANIFEST`), which is replaced once the new one is
    complete. A folder holding anything else is never replaced.

    Raises:
        OutputFileError: ``out_dir`` or a parent is not a folder.
        ArgumentError: the folder holds an export and ``overwrite`` is False, or holds other files.
    """
    out = Path(out_dir)
    if (out.exists() or out.is_symlink()) and not out.is_dir():
        raise OutputFileError(out, f"is {describe_kind(out)}, not a folder")
    blocker = not_a_folder(out)
    if blocker is not None:
        raise OutputFileError(out, f"cannot be written: {blocker} is {describe_kind(blocker)}, not a folder")
    if not out.is_dir():
        return out
    entries = sorted(entry.name for entry in out.iterdir())
    if not entries:
        return out
    if (out / MANIFEST).is_file():
        if not overwrite:
            raise ArgumentError(f"{out} already holds an export; pass ", Term("overwrite"), " to replace it, or "
                                "choose another ", Term("out_dir"), " folder")
        return out
    raise ArgumentError(f"{out} is a folder that is not empty and holds no export (e.g. {entries[0]}); refusing to "
                        "replace it: choose a new or empty ", Term("out_dir"), " folder")


def export_onnx(model: AnimationModel, out_dir: str | Path, *, overwrite: bool = False, opset: int = OPSET,
                seed: int = 0) -> ExportResult:
    """Export ``model``'s graphs (:meth:`~motiontransfer.models.base.AnimationModel.export_graphs`) as ONNX files in
    the folder ``out_dir``, with a manifest, each checked in ONNX Runtime against PyTorch.

    Args:
        model: a model on the CPU (its networks' train/eval modes are restored afterwards; they run in eval mode).
        out_dir: the folder to write (atomically; see :func:`check_output_folder`).
        overwrite: replace a previous export at ``out_dir``.
        opset: the ONNX opset (16 or more: GridSample).
        seed: seed of the random example inputs.

    Returns:
        The :class:`ExportResult`.

    Raises:
        UserError: the ``export`` extra is missing, or an opset below 16. CapabilityError: the model's family has no
            exportable graphs.
        ArgumentError / OutputFileError: see :func:`check_output_folder`; a model not on the CPU.
        RuntimeError: a graph's outputs differ from PyTorch's by more than :data:`TOLERANCE` (a bug: nothing is
            written).
    """
    onnx, onnxruntime = require_onnx()
    if opset < 16:
        raise UserError(f"ONNX export needs opset 16 or more (GridSample), got {opset}")
    if model.inference_only is not None:
        raise CapabilityError(f"this {model.family} model was prepared for inference ({model.inference_only}); "
                              "export the networks as trained: load it with ", Term("accelerate=False"))
    graphs = model.export_graphs()
    out = check_output_folder(out_dir, overwrite)
    if model.device.type != "cpu":
        raise ArgumentError(f"ONNX export runs on the CPU; the model is on {model.device}: load it with ",
                            Term("device"), " cpu")
    checks: list[GraphCheck] = []
    descriptions: dict[str, Any] = {}
    with _eval_mode(model), atomic_output(out, directory=True) as temp:
        for index, graph in enumerate(graphs):
            path = temp / f"{graph.name}.onnx"
            _trace(onnx, graph, path, opset, torch.Generator().manual_seed(seed + 2 * index))
            onnx.checker.check_model(str(path))
            session = _session(onnxruntime, path)
            check = _compare(graph, session, torch.Generator().manual_seed(seed + 2 * index + 1))
            checks.append(check)
            descriptions[graph.name] = {
                "file": check.file, "description": graph.description,
                "inputs": [_tensor_info(value) for value in session.get_inputs()],
                "outputs": [_tensor_info(value) for value in session.get_outputs()],
                "check": {"batch": check.batch, "max_abs_diff": check.max_abs_diff, "tolerance": check.tolerance},
            }
        manifest = {
            "format": "onnx", "family": model.family, "frame_size": model.size, "opset": opset,
            "dynamic_axes": sorted({axis for graph in graphs for axes in graph.dynamic_axes.values()
                                    for axis in axes.values()}),
            "exporter": f"torch {torch.__version__} (TorchScript-based torch.onnx.export)",
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "graphs": descriptions, "config": to_dict(model.experiment),
        }
        (temp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return ExportResult(out, tuple(checks), manifest)


@contextlib.contextmanager
def _eval_mode(model: AnimationModel) -> Iterator[None]:
    """Every module of ``model`` in eval mode for the block, each back in its own mode afterwards (the exporter
    itself restores only the top module's mode, onto all of its children)."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training


def _trace(onnx: ModuleType, graph: ExportGraph, path: Path, opset: int, generator: torch.Generator) -> None:
    """Write ``graph`` to ``path`` with ``torch.onnx.export``, then declare its outputs' shapes exactly.

    The TorchScript-based exporter (``dynamo=False``), although torch 2.9+ defaults to the torch.export-based one:
    that one needs the ``onnxscript`` package, which the ``export`` extra does not have (and which must then match
    the torch version), whereas the TorchScript exporter ships with torch, works offline and handles these graphs
    exactly (every size static except the driving batch, which ``dynamic_axes`` keeps symbolic). The check in ONNX
    Runtime with another batch size than the traced one guards the result. Its deprecation warning, the tracer's
    warnings about Python values taken from shapes (the frame size, static here) and its note that strided slices
    are not constant-folded are silenced.

    The exporter's own shape inference labels the outputs' spatial axes wrongly (an image's height named like the
    batch axis), so the declared output shapes are rewritten from PyTorch's outputs: static sizes as numbers, the
    dynamic axes by name.
    """
    inputs = graph.make_inputs(TRACE_BATCH, generator)
    shapes: list[list[tuple[int, ...]]] = []  # the outputs' shapes as traced (no second forward pass)
    hook = graph.module.register_forward_hook(
        lambda module, args, outputs: shapes.append([tuple(output.shape) for output in outputs]))
    graph.module.eval()  # the exporter puts back the mode it found, onto every child
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            # strided slices (the anti-aliased downsampling) are left unfolded: the graph is right, only not folded
            warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
            torch.onnx.export(graph.module, inputs, str(path), dynamo=False, input_names=list(graph.input_names),
                              output_names=list(graph.output_names), opset_version=opset,
                              dynamic_axes={name: dict(axes) for name, axes in graph.dynamic_axes.items()})
    finally:
        hook.remove()
    proto = onnx.load(str(path))
    for value, shape in zip(proto.graph.output, shapes[0], strict=True):
        axes = graph.dynamic_axes.get(value.name, {})
        dims = value.type.tensor_type.shape.dim
        del dims[:]
        for axis, size in enumerate(shape):
            dim = dims.add()
            if axis in axes:
                dim.dim_param = axes[axis]
            else:
                dim.dim_value = size
    onnx.save(proto, str(path))


def _session(onnxruntime: ModuleType, path: Path) -> Any:
    """An ONNX Runtime CPU session of ``path`` using as many threads as torch does."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _compare(graph: ExportGraph, session: Any, generator: torch.Generator) -> GraphCheck:
    """Run ``graph`` in PyTorch and in ONNX Runtime on new inputs with the driving batch :data:`CHECK_BATCH`.

    Raises:
        RuntimeError: the graph's inputs or outputs are not the declared ones, an output's shape differs, or the
            largest difference exceeds :data:`TOLERANCE`.
    """
    inputs = graph.make_inputs(CHECK_BATCH, generator)
    given = dict(zip(graph.input_names, inputs, strict=True))
    names = [value.name for value in session.get_inputs()]
    if not set(names) <= set(given):
        raise RuntimeError(f"the exported {graph.name} graph has inputs {names}, expected some of "
                           f"{list(graph.input_names)}")
    outputs = [value.name for value in session.get_outputs()]
    if outputs != list(graph.output_names):
        raise RuntimeError(f"the exported {graph.name} graph has outputs {outputs}, expected "
                           f"{list(graph.output_names)}")
    got = session.run(outputs, {name: given[name].numpy() for name in names})
    with torch.no_grad():
        expected = graph.module(*inputs)
    worst = 0.0
    for name, mine, theirs in zip(outputs, expected, got, strict=True):
        if tuple(mine.shape) != tuple(theirs.shape):
            raise RuntimeError(f"{graph.name} output {name}: ONNX Runtime gives shape {tuple(theirs.shape)}, PyTorch "
                               f"{tuple(mine.shape)}")
        worst = max(worst, float(np.max(np.abs(mine.numpy().astype(np.float64) - theirs))) if mine.numel() else 0.0)
    if not worst <= TOLERANCE:
        raise RuntimeError(f"the exported {graph.name} graph differs from PyTorch by {worst:.3g} (max abs) on batch "
                           f"{CHECK_BATCH}, more than {TOLERANCE:g}; nothing was written")
    return GraphCheck(graph.name, worst, CHECK_BATCH, TOLERANCE)


def _tensor_info(value: Any) -> dict[str, Any]:
    """Name, shape (symbolic axes by name) and element type of an ONNX Runtime input or output."""
    return {"name": value.name, "shape": [dim if isinstance(dim, int) else str(dim) for dim in value.shape],
            "type": value.type}
