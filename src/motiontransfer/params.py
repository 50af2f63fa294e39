"""The sections of an experiment config that every family shares: dataset and augmentation, run length and
intervals, the perceptual loss's pyramid, the official test / animation / visualisation sections.

A family's experiment (``families/<name>/config.py``) is a dataclass made of these and of its own sections; the
layouts are the official ones (first-order-model's and monkey-net's YAML files load unchanged). Keys that the
official files carry but this library never reads are listed in each section's ``unused_keys``; a loaded YAML
file that sets one of them to anything but its default gets one warning naming it
(:func:`warn_unused_keys`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from motiontransfer.config import to_dict
from motiontransfer.data.datasets import AugmentationConfig, JitterConfig
from motiontransfer.errors import ConfigError


class Experiment(Protocol):
    """What the generic code reads of any family's experiment dataclass (``families/<name>/config.py``)."""

    family: str
    model_params: Any
    dataset_params: DatasetParams
    train_params: RunParams

    @property
    def frame_size(self) -> int:
        """Side of the square frames the model works on."""
        ...


# ------------------------------------------------------------------------------------------------ dataset
@dataclass
class FlipParams:
    horizontal_flip: bool = False
    time_flip: bool = False


@dataclass
class JitterParams:
    """Colour jitter strengths (torchvision ColorJitter semantics; missing values mean no jitter)."""

    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0


@dataclass
class CropParams:
    size: list[int]


@dataclass
class ResizeParams:
    ratio: list[float]


@dataclass
class RotationParams:
    degrees: float | list[float]


@dataclass
class AugmentationParams:
    flip_param: FlipParams = field(default_factory=FlipParams)
    jitter_param: JitterParams | None = None
    crop_param: CropParams | None = None
    resize_param: ResizeParams | None = None
    rotation_param: RotationParams | None = None


@dataclass
class DatasetParams:
    """Where the training videos are and how they are sampled.

    ``frame_shape`` (vox, taichi) and ``image_shape`` (mgif) are the two spellings the official configs use
    for the same thing; :attr:`frame_size` reads either.
    """

    root_dir: str | None = None
    frame_shape: list[int] | None = None
    image_shape: list[int] | None = None
    id_sampling: bool = False
    pairs_list: str | None = None
    augmentation_params: AugmentationParams = field(default_factory=AugmentationParams)
    unused_keys: ClassVar[tuple[str, ...]] = ("pairs_list",)
    """The official evaluation pairs file: this library draws its pairs itself."""

    @property
    def frame_size(self) -> int | None:
        """Square frame side from ``frame_shape``/``image_shape`` (None when neither is set)."""
        shape = self.frame_shape or self.image_shape
        return None if shape is None else int(shape[0])


def augmentation_config(dataset_params: DatasetParams) -> AugmentationConfig:
    """The dataset augmentation that ``dataset_params.augmentation_params`` describes.

    ``flip_param`` maps to the horizontal / time flips, ``jitter_param`` to colour jitter (None when every strength
    is 0), ``resize_param.ratio`` to a random rescale cropped back to the frame size. ``crop_param`` must name the
    frame size (frames are read at that size, so the crop only undoes a resize). ``rotation_param`` is refused.

    Raises:
        ConfigError: rotation requested, a crop size other than the frame size, or an invalid value.
    """
    where = "dataset_params.augmentation_params"
    params = dataset_params.augmentation_params
    if params.rotation_param is not None:
        raise ConfigError(f"{where}.rotation_param: random rotation is not supported yet; remove it")
    size = dataset_params.frame_size or 256
    if params.crop_param is not None and [int(v) for v in params.crop_param.size[:2]] != [size, size]:
        raise ConfigError(f"{where}.crop_param.size: only a crop back to the frame size [{size}, {size}] is "
                          f"supported (after resize_param), got {params.crop_param.size}")
    jitter = params.jitter_param
    strengths = [] if jitter is None else [jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue]
    try:
        return AugmentationConfig(
            flip_horizontal=params.flip_param.horizontal_flip,
            flip_time=params.flip_param.time_flip,
            jitter=JitterConfig(*strengths) if any(strengths) else None,
            resize_ratio=None if params.resize_param is None else tuple(params.resize_param.ratio),  # type: ignore
        )
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


# -------------------------------------------------------------------------------------------------- train
@dataclass
class RunParams:
    """How long and how a run trains, shared by every family: the official epoch keys plus ours for step-based CPU
    runs (``max_steps`` caps the run; logging, sample and checkpoint intervals are in steps)."""

    num_epochs: int = 100
    num_repeats: int = 1
    epoch_milestones: list[int] = field(default_factory=list)
    batch_size: int = 20
    # ours
    num_workers: int = 0
    max_steps: int | None = None
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    seed: int = 0
    channels_last: bool = True
    """Networks and image batches in the channels-last (NHWC) memory format: the same numbers up to float32 rounding,
    about 20% faster training steps on this CPU (FOMM synthetic-faces-64: 3.6 -> 3.0 s/step under load)."""

    def __post_init__(self) -> None:
        for name in ("num_epochs", "num_repeats", "batch_size", "log_every", "sample_every", "checkpoint_every",
                     "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be non-negative, got {self.num_workers}")


@dataclass
class PerceptualParams:
    """The perceptual pyramid loss's image pyramid (``scales``, FOMM's key) and, ours, where VGG19's weights are
    (``vgg_weights``; else the torch hub cache) and what to do without them (``perceptual_fallback``). Shared by the
    families that train with it (FOMM, LIA); the per-layer weights are in each family's ``loss_weights``."""

    scales: list[float] = field(default_factory=lambda: [1.0, 0.5, 0.25, 0.125])
    vgg_weights: str | None = None
    perceptual_fallback: Literal["l1_pyramid", "none"] = "l1_pyramid"


# -------------------------------------------------------------------------------------- test / animation
@dataclass
class ReconstructionParams:
    """The official ``reconstruction_params`` (accepted, never read: ``motiontransfer reconstruct`` and
    ``evaluate`` take their options as arguments)."""

    num_videos: int | None = None
    format: str = ".mp4"


@dataclass
class NormalizationParams:
    """How driving keypoints are normalised before transfer (FOMM Sec. 3.6): ``adapt_movement_scale`` is the
    default of the ``adapt_scale`` argument of transfer (which can only switch it on), ``use_relative_jacobian`` makes
    relative transfer also relative in the Jacobians (Eq. 15). ``use_relative_movement`` is accepted and never read:
    the transfer mode is an argument (``relative`` or ``absolute``)."""

    adapt_movement_scale: bool = False
    use_relative_movement: bool = True
    use_relative_jacobian: bool = True
    unused_keys: ClassVar[tuple[str, ...]] = ("use_relative_movement",)


@dataclass
class AnimateParams:
    """The official ``animate_params``: the transfer's ``normalization_params``; ``num_pairs`` is accepted and never
    read."""

    num_pairs: int = 50
    format: str = ".mp4"
    normalization_params: NormalizationParams = field(default_factory=NormalizationParams)
    unused_keys: ClassVar[tuple[str, ...]] = ("num_pairs",)


@dataclass
class VisualizerParams:
    """The official ``visualizer_params`` (accepted, never read: pictures are drawn by
    :mod:`motiontransfer.visualize`)."""

    kp_size: int = 5
    draw_border: bool = True
    colormap: str = "gist_rainbow"


SHARED_UNUSED_SECTIONS = ("reconstruction_params", "visualizer_params")
"""Whole sections of every family's experiment that are accepted and never read (each experiment lists them in its
``unused_keys``)."""


# ------------------------------------------------------------------------------------------------ unused keys
def unused_settings(cls: type, data: Mapping[str, Any], where: str = "") -> list[str]:
    """Dotted keys of ``data`` (plain data for the dataclass ``cls``, e.g. a parsed YAML file) that a section lists
    in its ``unused_keys`` and that are set to something other than their default, searched through the nested
    sections."""
    found: list[str] = []
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        if item.name not in data:
            continue
        dotted = f"{where}.{item.name}" if where else item.name
        value = data[item.name]
        if item.name in getattr(cls, "unused_keys", ()):
            if not _is_default(item, value):
                found.append(dotted)
            continue
        section = _section_type(hints[item.name])
        if section is not None and isinstance(value, Mapping):
            found += unused_settings(section, value, dotted)
    return found


def warn_unused_keys(cls: type, data: Mapping[str, Any], source: str) -> None:
    """One warning per key of :func:`unused_settings`, naming it and ``source`` (the file it came from)."""
    for key in unused_settings(cls, data):
        warnings.warn(f"{source}: {key} is accepted for compatibility with the official configs but never read; it "
                      "has no effect", UserWarning, stacklevel=3)


def _is_default(item: dataclasses.Field, value: Any) -> bool:
    """Whether the plain ``value`` given for a field states its default (for a section: each key given does)."""
    if item.default is not dataclasses.MISSING:
        default = item.default
    elif item.default_factory is not dataclasses.MISSING:
        default = item.default_factory()
    else:
        return False
    default = to_dict(default)
    if isinstance(value, Mapping) and isinstance(default, Mapping):
        return all(key in default and default[key] == given for key, given in value.items())
    return bool(default == value)


def _section_type(hint: Any) -> type | None:
    """The dataclass behind a field's type hint (``Params`` or ``Params | None``), else None."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    sections = [option for option in options if dataclasses.is_dataclass(option)]
    return sections[0] if len(sections) == 1 else None


