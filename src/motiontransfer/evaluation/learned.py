"""Learned image and video metrics: LPIPS, FID and FVD, computed only from weight files the user supplies.

Nothing is ever downloaded, and no number is ever computed from random weights: the networks are built in pure
PyTorch (no torchvision, no ``lpips`` / ``pytorch-fid`` package) and refuse to run until their weights were loaded
from the files below. Callers check :func:`learned_metric_status` first and skip a metric with its one-line reason.

Where the weights are found
---------------------------
One folder, :func:`motiontransfer.pretrained.metrics_weights_dir`: the ``weights_dir`` argument when a function is
given one, else ``$MOTIONTRANSFER_METRICS_DIR`` when set, else ``~/.cache/motiontransfer/metrics``. It holds the
standard public files under these names:

* LPIPS (AlexNet, v0.1):
    - ``alexnet-owt-7be5be79.pth``: torchvision's AlexNet ImageNet state dict (``features.0.weight`` ...; only the
      ``features.*`` convolutions are used, ``classifier.*`` is ignored). The older torchvision file
      ``alexnet-owt-4df8aa71.pth`` has the same layout and is accepted when the first is absent.
    - ``lpips-alex-v0.1.pth``: the ``alex.pth`` file shipped in the ``lpips`` PyPI package under
      ``lpips/weights/v0.1/`` (keys ``lin0.model.1.weight`` ... ``lin4.model.1.weight``, shapes (1, C, 1, 1) with
      C = 64, 192, 384, 256, 256), renamed.
* FID: ``pt_inception-2015-12-05-6726825d.pth``, the FID Inception-v3 weights of ``pytorch-fid`` (torchvision
  Inception3 key names, ``fc.*`` ignored).
* FVD: ``i3d_torchscript.pt``, the TorchScript I3D (Kinetics-400) detector used by StyleGAN-V and most PyTorch FVD
  code, loaded with ``torch.jit.load``. Note that a TorchScript file contains code that is run when it is called;
  use only a copy obtained from a source you trust.

``.pth`` files are read with ``torch.load(map_location="cpu", weights_only=True)``; a file with missing or unexpected
keys or wrong shapes raises :class:`~motiontransfer.errors.InputFileError` (a ``UserError``) naming the file and the
first few offending keys.

Conventions: images are (B, 3, H, W) and videos (B, T, 3, H, W) float tensors with values in [0, 1].
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from motiontransfer.errors import InputFileError, UserError
from motiontransfer.evaluation.metrics import MetricInputError, frechet_distance, frechet_distance_from_stats
from motiontransfer.nn.blocks import sequential_taps
from motiontransfer.pretrained import METRICS_DIR_ENV, first_existing, metrics_weights_dir

ALEXNET_FILES: tuple[str, ...] = ("alexnet-owt-7be5be79.pth", "alexnet-owt-4df8aa71.pth")
LPIPS_LINEAR_FILE = "lpips-alex-v0.1.pth"
FID_INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
I3D_FILE = "i3d_torchscript.pt"

LEARNED_METRICS: tuple[str, ...] = ("lpips", "fid", "fvd")
# Tolerance on the [0, 1] input range (resampled or compressed inputs overshoot slightly).
_RANGE_TOLERANCE = 1e-3


# ---------------------------------------------------------------------------------------------------------------
# Locating and reading weight files
# ---------------------------------------------------------------------------------------------------------------


def _required_files(metric: str) -> tuple[tuple[str, ...], ...]:
    """For a learned metric, the files it needs, each given as alternative names (the first is the usual one)."""
    if metric == "lpips":
        return ALEXNET_FILES, (LPIPS_LINEAR_FILE,)
    if metric == "fid":
        return ((FID_INCEPTION_FILE,),)
    if metric == "fvd":
        return ((I3D_FILE,),)
    raise ValueError(f"unknown learned metric {metric!r}")


def _missing_message(folder: Path, missing: list[str]) -> str:
    return (f"needs {' and '.join(missing)} in {folder} (set {METRICS_DIR_ENV} or pass weights_dir to use another "
            "folder; nothing is downloaded)")


def _locate(metric: str, weights_dir: str | os.PathLike[str] | None) -> list[Path]:
    """Paths of the files ``metric`` needs, in the order of :func:`_required_files`.

    Raises:
        UserError: a file is missing (the message is the one :func:`learned_metric_status` reports).
    """
    folder = metrics_weights_dir(weights_dir)
    found, missing = [], []
    for names in _required_files(metric):
        path = first_existing(folder, names)
        if path is None:
            missing.append(names[0])
        else:
            found.append(path)
    if missing:
        raise UserError(f"{metric.upper()} {_missing_message(folder, missing)}")
    return found


def learned_metric_status(names: Iterable[str],
                          weights_dir: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Why each requested learned metric cannot run.

    Only the presence of the files is checked; their contents are validated when they are loaded.

    Args:
        names: metric names (any case); "lpips", "fid" and "fvd" are looked at, other names are ignored.
        weights_dir: the weights folder (None: see :func:`motiontransfer.pretrained.metrics_weights_dir`).

    Returns:
        ``{lower-case name: reason}`` for each of the three that cannot run, e.g. ``{"fvd": "needs i3d_torchscript.pt in
        /root/.cache/motiontransfer/metrics (set MOTIONTRANSFER_METRICS_DIR ...)"}``; a metric that can run is not
        in the dict.
    """
    folder = metrics_weights_dir(weights_dir)
    status: dict[str, str] = {}
    for name in dict.fromkeys(str(n).lower() for n in names):
        if name not in LEARNED_METRICS:
            continue
        missing = [alternatives[0] for alternatives in _required_files(name)
                   if first_existing(folder, alternatives) is None]
        if missing:
            status[name] = _missing_message(folder, missing)
    return status


def _read_state_dict(path: Path, what: str) -> Mapping[str, object]:
    """``torch.load(path, map_location="cpu", weights_only=True)``, as a mapping.

    Raises:
        InputFileError: unreadable, not a torch file, pickled objects refused, or not a dict.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unreadable / truncated / not a torch file / objects refused by weights_only
        raise InputFileError(path, f"cannot read the {what} weights: {error}") from error
    if not isinstance(state, Mapping):
        raise InputFileError(path, f"holds a {type(state).__name__}, not a state dict of {what} weights")
    return state


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "")


def _match_state_dict(path: Path, state: Mapping[str, object], expected: Mapping[str, torch.Size], what: str,
                      ignored_prefixes: tuple[str, ...] = (),
                      optional_suffixes: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Check a loaded state dict against the expected key names and shapes.

    Args:
        path: the file (for messages).
        state: what the file holds.
        expected: ``{key: shape}`` of every tensor that must be in the file.
        what: a short name of the weights for messages, e.g. "torchvision AlexNet".
        ignored_prefixes: file keys starting with one of these are dropped without complaint (e.g. ``classifier.``).
        optional_suffixes: expected keys ending with one of these may be absent (BatchNorm's ``num_batches_tracked``).

    Returns:
        ``{key: tensor}`` for the expected keys present in the file.

    Raises:
        InputFileError: naming the file and the first few missing, unexpected or wrongly shaped keys.
    """
    selected: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    wrong: list[str] = []
    for raw_key, value in state.items():
        key = str(raw_key)
        if key not in expected:
            if not key.startswith(ignored_prefixes):
                unexpected.append(key)
        elif not isinstance(value, torch.Tensor) or value.shape != expected[key]:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            wrong.append(f"{key} {shape} (expected {tuple(expected[key])})")
        else:
            selected[key] = value
    missing = [key for key in expected if key not in selected and key not in state
               and not key.endswith(optional_suffixes)]
    problems = []
    if missing:
        problems.append(f"missing {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected {_few(unexpected)}")
    if wrong:
        problems.append(f"wrong shapes {_few(wrong)}")
    if problems:
        raise InputFileError(path, f"is not the expected {what} weights: {'; '.join(problems)}")
    return selected


def _load_module_weights(module: nn.Module, path: Path, state: Mapping[str, object], what: str, *,
                         prefix: str = "", ignored_prefixes: tuple[str, ...] = ()) -> None:
    """Validate ``state`` against ``module``'s state dict (its keys prefixed with ``prefix`` in the file) and load
    it; BatchNorm's ``num_batches_tracked`` counters may be absent from the file."""
    own = module.state_dict()
    expected = {prefix + key: value.shape for key, value in own.items()}
    selected = _match_state_dict(path, state, expected, what, ignored_prefixes=ignored_prefixes,
                                 optional_suffixes=("num_batches_tracked",))
    weights = {key: selected.get(prefix + key, value) for key, value in own.items()}
    module.load_state_dict(weights)


def _check_images(x: torch.Tensor, name: str, min_size: int = 1) -> None:
    """(B, 3, H, W) floating tensor with values in [0, 1] and H, W >= min_size, else MetricInputError."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise MetricInputError(f"{name} must be (B, 3, H, W) images, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise MetricInputError(f"{name} must be a floating tensor with values in [0, 1], got {x.dtype}")
    if min(x.shape[2:]) < min_size:
        raise MetricInputError(f"{name} must be at least {min_size} px per side, got {tuple(x.shape[2:])}")
    _check_range(x, name)


def _check_range(x: torch.Tensor, name: str) -> None:
    if x.numel() == 0:
        return
    low, high = float(x.min()), float(x.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise MetricInputError(f"{name} contains NaN or infinite values")
    if low < -_RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
        raise MetricInputError(f"{name} must have values in [0, 1], got [{low:.4g}, {high:.4g}] "
                               "(divide 8-bit images by 255)")


class _NotLoadedError(RuntimeError):
    """A metric network is used before its weights were loaded (a bug in the caller)."""


def _require_loaded(module: nn.Module, how: str) -> None:
    if not getattr(module, "weights_loaded", False):
        raise _NotLoadedError(f"{type(module).__name__} has random weights; build it with {how} so that it "
                              "computes the metric")


def _follow(module: nn.Module, x: torch.Tensor) -> None:
    """Move the module to the input's device and floating dtype when they differ."""
    reference = next(iter(module.parameters()))
    if reference.device != x.device or reference.dtype != x.dtype:
        module.to(device=x.device, dtype=x.dtype)


# ---------------------------------------------------------------------------------------------------------------
# LPIPS (AlexNet, v0.1)
# ---------------------------------------------------------------------------------------------------------------

# The LPIPS "scaling layer": inputs in [-1, 1] are shifted and scaled per channel (lpips v0.1).
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
# Channel widths of the five AlexNet ReLU outputs LPIPS compares (relu1 ... relu5).
LPIPS_CHANNELS = (64, 192, 384, 256, 256)
# Indices in torchvision's ``alexnet().features`` of those ReLUs.
LPIPS_TAPS = (1, 4, 7, 9, 11)
# Added to the channel norm before dividing (lpips' normalize_tensor).
LPIPS_EPS = 1e-10
# Smallest side AlexNet's two 3x3/2 max pools before relu3 accept (11x11/4 conv, pad 2).
LPIPS_MIN_SIZE = 31


def _alexnet_features() -> nn.Sequential:
    """torchvision's ``alexnet().features`` up to relu5 (indices 0..11), with its parameter names."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
    )


def lpips_linear_key(layer: int) -> str:
    """Key of layer ``layer``'s (1, C, 1, 1) weight in the lpips ``alex.pth`` file: ``lin<layer>.model.1.weight``."""
    return f"lin{layer}.model.1.weight"


def unit_normalize(features: torch.Tensor, eps: float = LPIPS_EPS) -> torch.Tensor:
    """Divide a (B, C, H, W) feature map by its L2 norm over channels at each position (plus ``eps``)."""
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """LPIPS v0.1 with the AlexNet backbone (Zhang et al., CVPR 2018): a learned perceptual distance.

    For images x, y in [0, 1]: both are mapped to [-1, 1], then ``(v - shift) / scale`` per channel with
    :data:`LPIPS_SHIFT` / :data:`LPIPS_SCALE`; the AlexNet ReLU outputs l = 1..5 (C_l channels) are unit-normalised
    over channels, and

        ``LPIPS(x, y) = sum_l mean_{h,w} sum_c w_l[c] (x̂_l[c, h, w] - ŷ_l[c, h, w])^2``

    with the learned non-negative weights w_l (the 1x1 "lin" layers). Parameters are frozen; gradients flow to the
    inputs, and the module follows the device and dtype of the inputs.

    Attributes:
        features: AlexNet ``features[0..11]`` (torchvision parameter names ``features.0.weight`` ...).
        linear: five (1, C_l, 1, 1) weights, loaded from ``lin{l}.model.1.weight``.
        weights_loaded: True when built by :meth:`from_files`; ``forward`` refuses to run otherwise.

    Forward: prediction, target (B, 3, H, W) in [0, 1], H, W >= 31 -> (B,) distances (0 for identical images).
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = _alexnet_features()
        self.linear = nn.ParameterList([nn.Parameter(torch.zeros(1, c, 1, 1)) for c in LPIPS_CHANNELS])
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.weights_loaded = False
        self.eval()

    @classmethod
    def from_files(cls, weights_dir: str | os.PathLike[str] | None = None) -> LPIPS:
        """Build LPIPS from ``alexnet-owt-7be5be79.pth`` and ``lpips-alex-v0.1.pth`` in the weights folder.

        Raises:
            UserError: a file is missing (:class:`~motiontransfer.errors.InputFileError` when one is unreadable or
                has missing / unexpected keys or wrong shapes).
        """
        alexnet_path, linear_path = _locate("lpips", weights_dir)
        model = cls()
        # The file's keys are ``features.<i>.*`` like ours; the classifier is not used.
        _load_module_weights(model.features, alexnet_path, _read_state_dict(alexnet_path, "AlexNet"),
                             "torchvision AlexNet", prefix="features.", ignored_prefixes=("classifier.",))
        expected = {lpips_linear_key(i): torch.Size((1, c, 1, 1)) for i, c in enumerate(LPIPS_CHANNELS)}
        linear = _match_state_dict(linear_path, _read_state_dict(linear_path, "LPIPS linear"), expected,
                                   "LPIPS v0.1 AlexNet linear-layer")
        with torch.no_grad():
            for index, parameter in enumerate(model.linear):
                parameter.copy_(linear[lpips_linear_key(index)])
        model.weights_loaded = True
        return model

    def layer_distances(self, prediction: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
        """The five per-layer terms of :meth:`forward`, each (B,)."""
        _require_loaded(self, "LPIPS.from_files()")
        _check_images(prediction, "prediction", LPIPS_MIN_SIZE)
        _check_images(target, "target", LPIPS_MIN_SIZE)
        if prediction.shape != target.shape:
            raise MetricInputError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ "
                                   "in shape")
        _follow(self, prediction)
        target = target.to(prediction)
        # Two passes of the same shape, so identical images give bitwise identical features (distance exactly 0).
        features_a, features_b = self._taps(prediction), self._taps(target)
        terms = []
        for weight, a, b in zip(self.linear, features_a, features_b, strict=True):
            difference = (unit_normalize(a) - unit_normalize(b)) ** 2
            terms.append(F.conv2d(difference, weight).mean(dim=(1, 2, 3)))
        return terms

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """See the class docstring."""
        return torch.stack(self.layer_distances(prediction, target)).sum(dim=0)

    def _taps(self, images: torch.Tensor) -> list[torch.Tensor]:
        return sequential_taps(self.features, (2 * images - 1 - self.shift) / self.scale, LPIPS_TAPS)


# ---------------------------------------------------------------------------------------------------------------
# FID Inception-v3 (the pytorch-fid variant of the TensorFlow FID network)
# ---------------------------------------------------------------------------------------------------------------

FID_INPUT_SIZE = 299
FID_FEATURES = 2048
PoolKind = Literal["avg", "max"]


class _ConvBN(nn.Module):
    """Convolution without bias, BatchNorm (eps 1e-3) and ReLU; parameters ``conv.weight``, ``bn.*``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int = 1, padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _same_size_pool(x: torch.Tensor, kind: PoolKind) -> torch.Tensor:
    """3x3, stride-1 pooling that keeps the size; the average ignores the zero padding (TensorFlow's behaviour)."""
    if kind == "max":
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _MixedA(nn.Module):
    """35 x 35 block (Mixed_5b/c/d): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | pool-1x1 -> 224 + pool_features channels."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = _ConvBN(in_channels, 64, 1)
        self.branch5x5_1 = _ConvBN(in_channels, 48, 1)
        self.branch5x5_2 = _ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _ConvBN(in_channels, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, padding=1)
        self.branch_pool = _ConvBN(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_same_size_pool(x, "avg")),
        ], dim=1)


class _ReductionB(nn.Module):
    """35 -> 17 reduction (Mixed_6a): 3x3/2 | 1x1-3x3-3x3/2 | max pool 3x3/2 -> 480 + in_channels channels."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = _ConvBN(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = _ConvBN(in_channels, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], dim=1)


class _MixedC(nn.Module):
    """17 x 17 block with factorised 7x7 convolutions (Mixed_6b..6e) -> 768 channels."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = _ConvBN(in_channels, 192, 1)
        self.branch7x7_1 = _ConvBN(in_channels, c7, 1)
        self.branch7x7_2 = _ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = _ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _ConvBN(in_channels, c7, 1)
        self.branch7x7dbl_2 = _ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = _ConvBN(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        double = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            double = layer(double)
        return torch.cat([
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            double,
            self.branch_pool(_same_size_pool(x, "avg")),
        ], dim=1)


class _ReductionD(nn.Module):
    """17 -> 8 reduction (Mixed_7a): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | max pool 3x3/2 -> 512 + in_channels."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = _ConvBN(in_channels, 192, 1)
        self.branch3x3_2 = _ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _ConvBN(in_channels, 192, 1)
        self.branch7x7x3_2 = _ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tower = self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x)))
        return torch.cat([
            self.branch3x3_2(self.branch3x3_1(x)),
            self.branch7x7x3_4(tower),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], dim=1)


class _MixedE(nn.Module):
    """8 x 8 block with split 1x3 / 3x1 outputs (Mixed_7b, 7c) -> 2048 channels.

    ``pool`` is "avg" in Mixed_7b and "max" in Mixed_7c: the FID network (TensorFlow's 2015-12-05 Inception) max-pools
    in its last block, unlike torchvision's Inception-v3.
    """

    def __init__(self, in_channels: int, pool: PoolKind) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = _ConvBN(in_channels, 320, 1)
        self.branch3x3_1 = _ConvBN(in_channels, 384, 1)
        self.branch3x3_2a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _ConvBN(in_channels, 448, 1)
        self.branch3x3dbl_2 = _ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _ConvBN(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(single), self.branch3x3_2b(single),
            self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double),
            self.branch_pool(_same_size_pool(x, self.pool)),
        ], dim=1)


class FIDInception(nn.Module):
    """The Inception-v3 feature extractor of FID, as pytorch-fid computes it (2048-d pool features).

    Images in [0, 1] are resized to 299 x 299 (bilinear, ``align_corners=False``), mapped to [-1, 1] and run through
    the network up to the global average pool. This is the TensorFlow FID Inception (2015-12-05) ported to PyTorch:
    torchvision's Inception-v3 layout with the average pools of the Mixed_5*, 6b-6e and 7b blocks not counting the
    zero padding, and a max pool in the last block (Mixed_7c). The classifier (``fc.*`` in the file) is not built.

    Parameter names follow torchvision (``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b.branch1x1.bn.running_mean``, ...),
    matching ``pt_inception-2015-12-05-6726825d.pth``. The module is frozen, in eval mode, and follows the device and
    dtype of its input; it refuses to run unless built by :meth:`from_file`.

    Forward: images (B, 3, H, W) in [0, 1], any size -> (B, 2048) features.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = _ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = _ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = _ConvBN(80, 192, 3)
        self.Mixed_5b = _MixedA(192, pool_features=32)
        self.Mixed_5c = _MixedA(256, pool_features=64)
        self.Mixed_5d = _MixedA(288, pool_features=64)
        self.Mixed_6a = _ReductionB(288)
        self.Mixed_6b = _MixedC(768, channels_7x7=128)
        self.Mixed_6c = _MixedC(768, channels_7x7=160)
        self.Mixed_6d = _MixedC(768, channels_7x7=160)
        self.Mixed_6e = _MixedC(768, channels_7x7=192)
        self.Mixed_7a = _ReductionD(768)
        self.Mixed_7b = _MixedE(1280, pool="avg")
        self.Mixed_7c = _MixedE(2048, pool="max")
        self.requires_grad_(False)
        self.weights_loaded = False
        self.eval()

    @classmethod
    def from_file(cls, weights_dir: str | os.PathLike[str] | None = None) -> FIDInception:
        """Build the network from ``pt_inception-2015-12-05-6726825d.pth`` in the weights folder (CPU, eval mode).

        Raises:
            UserError: the file is missing (:class:`~motiontransfer.errors.InputFileError` when it is unreadable or
                has missing / unexpected keys or wrong shapes).
        """
        (path,) = _locate("fid", weights_dir)
        model = cls()
        _load_module_weights(model, path, _read_state_dict(path, "FID Inception"), "pytorch-fid FID Inception-v3",
                             ignored_prefixes=("fc.",))
        model.weights_loaded = True
        return model

    def train(self, mode: bool = True) -> FIDInception:
        """The network stays in eval mode (BatchNorm uses its running statistics)."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """See the class docstring."""
        _require_loaded(self, "FIDInception.from_file()")
        _check_images(images, "images")
        _follow(self, images)
        x = F.interpolate(images, size=(FID_INPUT_SIZE, FID_INPUT_SIZE), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))


# ---------------------------------------------------------------------------------------------------------------
# Streaming feature statistics and the Fréchet distances
# ---------------------------------------------------------------------------------------------------------------


class FeatureStatistics:
    """Running mean and unbiased covariance of features, accumulated batch by batch in float64.

    Only the count, the mean and the sum of squared deviations are kept (Chan et al.'s pairwise update), never the
    features themselves, so millions of samples fit in O(D^2) memory. After the updates, :attr:`mean` and :attr:`cov`
    equal ``x.mean(0)`` and ``np.cov(x, rowvar=False)`` (ddof 1) of all features stacked.

    Args:
        dim: feature size D; None to take it from the first update.
    """

    def __init__(self, dim: int | None = None) -> None:
        self.dim = dim
        self.count = 0
        self._mean: np.ndarray | None = None
        self._scatter: np.ndarray | None = None  # sum over samples of (x - mean)(x - mean)^T

    def update(self, features: np.ndarray | torch.Tensor) -> None:
        """Add a batch of (N, D) features (numpy or torch; N may be 0)."""
        if isinstance(features, torch.Tensor):
            features = features.detach().to("cpu", torch.float64).numpy()
        batch = np.asarray(features, dtype=np.float64)
        if batch.ndim != 2:
            raise MetricInputError(f"features must be (N, D), got shape {batch.shape}")
        if self.dim is None:
            self.dim = batch.shape[1]
        if batch.shape[1] != self.dim:
            raise MetricInputError(f"features have D = {batch.shape[1]}, the statistics D = {self.dim}")
        if batch.shape[0] == 0:
            return
        if not np.isfinite(batch).all():
            raise MetricInputError("features contain NaN or infinite values")
        n_batch = batch.shape[0]
        batch_mean = batch.mean(axis=0)
        centred = batch - batch_mean
        batch_scatter = centred.T @ centred
        if self._mean is None or self._scatter is None:
            self._mean, self._scatter, self.count = batch_mean, batch_scatter, n_batch
            return
        total = self.count + n_batch
        delta = batch_mean - self._mean
        self._mean = self._mean + delta * (n_batch / total)
        self._scatter = self._scatter + batch_scatter + np.outer(delta, delta) * (self.count * n_batch / total)
        self.count = total

    @property
    def mean(self) -> np.ndarray:
        """(D,) mean of the features added so far."""
        if self._mean is None:
            raise MetricInputError("no features were added to the statistics")
        return self._mean.copy()

    @property
    def cov(self) -> np.ndarray:
        """(D, D) unbiased covariance (divided by count - 1); needs at least 2 samples."""
        if self._scatter is None or self.count < 2:
            raise MetricInputError(f"a covariance needs at least 2 samples, got {self.count}")
        return self._scatter / (self.count - 1)


def fid_from_statistics(a: FeatureStatistics, b: FeatureStatistics) -> float:
    """Fréchet distance between the Gaussians of two :class:`FeatureStatistics` (FID for Inception features).

    Raises:
        UserError: fewer than 2 samples in either, or different feature sizes.
    """
    if a.dim != b.dim:
        raise MetricInputError(f"the statistics have different feature sizes: {a.dim} and {b.dim}")
    return frechet_distance_from_stats(a.mean, a.cov, b.mean, b.cov)


def fvd(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet video distance between two sets of I3D features (N_a, D) and (N_b, D), N >= 2 each
    (see :class:`I3DFeatures`); the same statistic as :func:`~motiontransfer.evaluation.metrics.frechet_distance`."""
    return frechet_distance(features_a, features_b)


# ---------------------------------------------------------------------------------------------------------------
# FVD: the TorchScript I3D detector
# ---------------------------------------------------------------------------------------------------------------

I3D_INPUT_SIZE = 224


class I3DFeatures:
    """Video features of the TorchScript I3D (Kinetics-400) detector ``i3d_torchscript.pt``, for FVD.

    Calling convention of that detector (StyleGAN-V, fvd-comparison): ``detector(x, rescale=..., resize=...,
    return_features=...)`` with x a (B, 3, T, H, W) float video; with ``rescale=False, resize=False`` it expects values
    in [-1, 1] at 224 x 224, and ``return_features=True`` returns the (B, 400) logits before the softmax, which FVD
    compares. This wrapper does the preprocessing itself, as the reference TensorFlow FVD does: every frame is resized
    to 224 x 224 (bilinear, ``align_corners=False``, aspect ratio not kept) and mapped from [0, 1] to [-1, 1].

    Args:
        detector: the loaded TorchScript module.
        device: where the detector runs.
        path: the file it came from (for messages).

    Call: videos (B, T, 3, H, W) in [0, 1] (FVD uses T = 16) -> (B, D) float64 numpy features (D = 400).
    """

    def __init__(self, detector: torch.jit.ScriptModule, device: str | torch.device = "cpu",
                 path: Path | None = None) -> None:
        self.detector = detector
        self.device = torch.device(device)
        self.path = path

    @classmethod
    def from_file(cls, weights_dir: str | os.PathLike[str] | None = None,
                  device: str | torch.device = "cpu") -> I3DFeatures:
        """Load ``i3d_torchscript.pt`` from the weights folder with ``torch.jit.load(path, map_location=device)``.

        Raises:
            UserError: the file is missing (:class:`~motiontransfer.errors.InputFileError` when it is not a
                TorchScript file).
        """
        (path,) = _locate("fvd", weights_dir)
        try:
            with warnings.catch_warnings():  # recent torch deprecates TorchScript; the file format is what it is
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                detector = torch.jit.load(str(path), map_location=device)
        except Exception as error:  # not a TorchScript archive, truncated, or saved by an incompatible torch
            raise InputFileError(path, f"cannot load the TorchScript I3D detector: {error}") from error
        return cls(detector.eval(), device, path)

    def preprocess(self, videos: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) in [0, 1] -> (B, 3, T, 224, 224) in [-1, 1] on the detector's device."""
        if videos.dim() != 5 or videos.shape[2] != 3:
            raise MetricInputError(f"videos must be (B, T, 3, H, W), got shape {tuple(videos.shape)}")
        if not videos.is_floating_point():
            raise MetricInputError(f"videos must be a floating tensor with values in [0, 1], got {videos.dtype}")
        _check_range(videos, "videos")
        batch, frames = videos.shape[:2]
        x = videos.to(self.device, torch.float32).reshape(batch * frames, *videos.shape[2:])
        if tuple(x.shape[-2:]) != (I3D_INPUT_SIZE, I3D_INPUT_SIZE):
            x = F.interpolate(x, size=(I3D_INPUT_SIZE, I3D_INPUT_SIZE), mode="bilinear", align_corners=False)
        # Resampling (and the tolerance of the range check) can overshoot [0, 1] by rounding; the detector's
        # input range is exact.
        x = x.clamp(0, 1)
        x = x.reshape(batch, frames, 3, I3D_INPUT_SIZE, I3D_INPUT_SIZE).permute(0, 2, 1, 3, 4)
        return (2 * x - 1).contiguous()

    def __call__(self, videos: torch.Tensor | np.ndarray, batch_size: int = 16) -> np.ndarray:
        """See the class docstring; videos are fed ``batch_size`` at a time (a numpy array is accepted too)."""
        videos = torch.as_tensor(videos)
        if batch_size < 1:
            raise MetricInputError(f"batch_size must be >= 1, got {batch_size}")
        outputs = []
        with torch.no_grad():
            for start in range(0, videos.shape[0], batch_size):
                chunk = self.preprocess(videos[start:start + batch_size])
                features = self.detector(chunk, rescale=False, resize=False, return_features=True)
                if not isinstance(features, torch.Tensor) or features.dim() != 2 or features.shape[0] != len(chunk):
                    shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
                    raise UserError(f"{self.path or 'the I3D detector'}: returned {shape} for {len(chunk)} videos, "
                                    "expected (B, D) features; is it i3d_torchscript.pt?")
                outputs.append(features.detach().to("cpu", torch.float64).numpy())
        if not outputs:
            raise MetricInputError("no videos given")
        return np.concatenate(outputs, axis=0)
