"""How a loaded model runs: the eager networks as trained, or the fast inference path, in float32 or bfloat16.

The fast path (the default on the CPU) changes how the numbers are computed, not what they are:

* every network goes through :func:`motiontransfer.nn.fast.accelerate_network` (BatchNorm folded into the
  convolutions, nearest-upsample + conv done at the low resolution, Winograd convolutions for the wide 3x3 layers),
  which agrees with the eager model to float32 rounding;
* weights are stored channels-last, the layout oneDNN's CPU convolutions are fastest with;
* with ``precision="bf16"`` the family's precision-tolerant sub-networks
  (:attr:`~motiontransfer.models.base.AnimationModel.reduced_precision_modules`: the decoder stacks that turn
  warped features into pixels, and FOMM's dense-motion hourglass features) run in bfloat16, while keypoints,
  Jacobians, and the heads that turn features into motion masks and occlusion maps stay float32.

The source-side work is done once per source in both paths (``encode_source``); the streaming pipeline
(:mod:`motiontransfer.inference.pipeline`) is the same.

A fast model is for inference only: its networks no longer have the trained layout, so it cannot be trained or
saved (:meth:`~motiontransfer.models.base.AnimationModel.to_model_file` refuses).
"""

from __future__ import annotations

from typing import Literal

import torch

from motiontransfer.errors import ArgumentError, CapabilityError, Term
from motiontransfer.models.base import AnimationModel
from motiontransfer.nn.fast import FastOptions, accelerate_network_
from motiontransfer.nn.precision import wrap_precision_islands

Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")

__all__ = [
    "PRECISIONS", "Precision", "bf16_supported", "check_precision", "default_accelerate", "default_batch_size",
    "prepare_model",
]


def bf16_supported(device: torch.device) -> bool:
    """Whether bfloat16 convolutions run natively on ``device``: a CPU with AVX512-BF16 or AMX (through oneDNN), or a
    CUDA device of compute capability 8.0 or later. Elsewhere bfloat16 is emulated and slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def check_precision(precision: str, device: torch.device) -> Precision:
    """Validate a precision name for ``device``.

    Raises:
        ArgumentError: a name other than ``fp32`` / ``bf16``.
        CapabilityError: ``bf16`` on a device without native bfloat16 (see :func:`bf16_supported`).
    """
    if precision not in PRECISIONS:
        raise ArgumentError(Term("precision"), f" must be {' or '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bf16" and not bf16_supported(device):
        what = "this CPU has neither AVX512-BF16 nor AMX" if device.type == "cpu" else f"{device} has no native bf16"
        raise CapabilityError(f"bfloat16 precision is not available: {what}; use ", Term("precision"), " fp32")
    return precision  # type: ignore[return-value]


def default_accelerate(device: torch.device) -> bool:
    """Whether the fast path is used when the caller does not say: on the CPU (where it was measured to pay) only;
    on CUDA, cuDNN already picks its own algorithms."""
    return device.type == "cpu"


def default_batch_size(device: torch.device, frame_size: int = 256) -> int:
    """Frames per forward pass when the caller does not say. On the CPU, about one 256-px frame's worth of pixels
    per pass, at most 8: at 256 px larger batches were measured no faster and take more memory (vox-256 fast fp32
    320 ms a frame at batch 1, 371 at batch 4; LIA-256 458 and 784), while at 64 px per-call overheads make batch 8
    the fastest (fomm-faces fast fp32: 30 ms of CPU a frame at batch 8, 36 at batch 1). 8 on GPUs."""
    if device.type != "cpu":
        return 8
    return max(1, min(8, (256 // max(frame_size, 1)) ** 2))


def prepare_model(model: AnimationModel, precision: Precision = "fp32", accelerate: bool = True) -> AnimationModel:
    """Turn a freshly loaded eval-mode model into the one inference runs, in place.

    Args:
        model: the model (its networks are replaced; nobody else should hold them).
        precision: ``fp32``, or ``bf16`` for the family's :attr:`reduced_precision_modules` (checked with
            :func:`check_precision` first).
        accelerate: apply the exact rewrites and the channels-last layout (module docstring).

    Returns:
        ``model``; unchanged when ``precision="fp32"`` and ``accelerate=False``.
    """
    precision = check_precision(precision, model.device)
    if precision == "bf16" and not model.reduced_precision_modules:
        raise CapabilityError(f"a {model.family} model has no bfloat16 path (its decoder loses too much in bf16); "
                              "use ", Term("precision"), " fp32")
    if not accelerate and precision == "fp32":
        return model
    # bf16 accepts Winograd's extra roundings too: 52 dB from fp32 at worst, measured (nn.fast.FastOptions).
    options = FastOptions(winograd_bf16=precision == "bf16")
    for name in model.networks_present():
        network = getattr(model, name)
        if accelerate:
            network = accelerate_network_(network, options)  # in place: never both networks in memory
            if model.channels_last_inference:
                network = _channels_last(network)
        setattr(model, name, network.eval())
    if precision == "bf16":
        wrap_precision_islands(model, model.reduced_precision_modules, torch.bfloat16)
    model.mark_inference_only(f"{'fast' if accelerate else 'eager'} {precision}")
    return model


def _channels_last(network: torch.nn.Module) -> torch.nn.Module:
    """Store every 4-D floating-point parameter and buffer of ``network`` channels-last, in place (``Module.to``
    refuses networks that also hold 5-D weights, as LIA's modulated convolutions do)."""
    with torch.no_grad():
        for tensor in [*network.parameters(), *network.buffers()]:
            if tensor.dim() == 4 and tensor.is_floating_point():
                tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
    return network
