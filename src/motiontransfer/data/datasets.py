"""FOMM-layout video datasets: pairs of frames for training, whole videos (streamed) for testing.

Layout (as in the first-order-model code base, so existing datasets work unchanged)::

    ROOT/train/<video>     ROOT/test/<video>

where a video is a folder of frames, or a video file (``.mp4 .avi .mov .webm .mkv .gif``). Hidden entries and
files of other types are ignored. If ROOT has neither ``train`` nor ``test``, the videos directly inside ROOT
are split 80/20 (test = ``ceil(n / 5)`` videos) by a seeded permutation of the sorted names, the same
procedure as FOMM's ``train_test_split(test_size=0.2, random_state=0)``; the split seed is fixed
(:data:`SPLIT_SEED`) so that changing the training seed can never move a video between train and test.

A *video id* is the part of the name before the first ``#`` (FOMM's convention, e.g. ``id10001#clip3.mp4``);
with ``id_sampling`` an epoch visits every id once and picks one of its videos at random.

Training items are deterministic functions of ``(seed, epoch, index)``: every random draw of an item comes
from ``np.random.default_rng([seed, epoch, index])`` and no global random state is used, so results do not
depend on the number of data-loader workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec, is_procedural
from motiontransfer.errors import InputFileError
from motiontransfer.video.io import VIDEO_SUFFIXES, VideoInfo, count_frames, probe, read_frames

__all__ = [
    "SPLIT_SEED",
    "AugmentationConfig",
    "FramesDataset",
    "JitterConfig",
    "JitterParams",
    "ProceduralPairsDataset",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "apply_jitter",
    "augment_pair",
    "draw_jitter",
    "hsv_to_rgb",
    "list_videos",
    "open_training_data",
    "resize_and_crop",
    "rgb_to_hsv",
    "split_videos",
    "video_id",
]

SPLIT_SEED = 0
"""Seed of the 80/20 split used when ROOT has no train/test folders (FOMM's default ``random_seed``)."""

_GRAY_WEIGHTS = (0.299, 0.587, 0.114)


# ----------------------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------------------


def _check_non_negative(owner: str, values: dict[str, float]) -> None:
    """Raise ValueError naming the first value that is negative or not finite."""
    for name, value in values.items():
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{owner}.{name} must be a finite number >= 0, got {value!r}")


@dataclass
class JitterConfig:
    """Colour jitter strengths, as torchvision's ``ColorJitter`` / FOMM's ``jitter_param``.

    Brightness, contrast and saturation factors are drawn from ``[max(0, 1 - v), 1 + v]``, the hue shift from
    ``[-hue, hue]`` (a fraction of a full turn, at most 0.5). A value of 0 disables that adjustment.
    """

    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1
    hue: float = 0.1

    def __post_init__(self) -> None:
        _check_non_negative(
            "JitterConfig",
            {
                "brightness": self.brightness,
                "contrast": self.contrast,
                "saturation": self.saturation,
                "hue": self.hue,
            },
        )
        if self.hue > 0.5:
            raise ValueError(f"JitterConfig.hue must be <= 0.5, got {self.hue!r}")


@dataclass
class AugmentationConfig:
    """Augmentations applied identically to the source and driving frame of a training pair.

    Attributes:
        flip_horizontal: mirror both frames left-right with probability 1/2.
        flip_time: swap source and driving with probability 1/2 (FOMM's time flip of a two-frame clip).
        jitter: colour jitter with the same random parameters for both frames, or None for none. A dict is
            accepted and turned into a :class:`JitterConfig` (convenient for YAML configs).
        resize_ratio: ``(low, high)``: rescale both frames by one factor drawn uniformly from this range, then crop
            (or, when shrunk, edge-pad) them back to their size at one random position (FOMM's ``resize_param``
            followed by ``crop_param`` at the frame size, as in its moving-gif config); None for none.
    """

    flip_horizontal: bool = True
    flip_time: bool = True
    jitter: JitterConfig | None = field(default_factory=JitterConfig)
    resize_ratio: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.jitter, dict):
            self.jitter = JitterConfig(**self.jitter)
        if self.jitter is not None and not isinstance(self.jitter, JitterConfig):
            raise ValueError(f"AugmentationConfig.jitter must be a JitterConfig or None, got {self.jitter!r}")
        if self.resize_ratio is not None:
            ratio = tuple(self.resize_ratio)
            if len(ratio) != 2 or not all(isinstance(r, int | float) and math.isfinite(r) for r in ratio):
                raise ValueError(f"AugmentationConfig.resize_ratio must be two numbers (low, high), got {ratio!r}")
            if not 0 < ratio[0] <= ratio[1]:
                raise ValueError(f"AugmentationConfig.resize_ratio must satisfy 0 < low <= high, got {ratio!r}")
            self.resize_ratio = (float(ratio[0]), float(ratio[1]))
        for name in ("flip_horizontal", "flip_time"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"AugmentationConfig.{name} must be True or False, got {getattr(self, name)!r}"
                )


# ----------------------------------------------------------------------------------------------------------
# Colour operations on (3, H, W) tensors in [0, 1]
# ----------------------------------------------------------------------------------------------------------


def _grayscale(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) RGB -> (1, H, W) luma with ITU-R 601 weights."""
    red, green, blue = image.unbind(-3)
    return (_GRAY_WEIGHTS[0] * red + _GRAY_WEIGHTS[1] * green + _GRAY_WEIGHTS[2] * blue).unsqueeze(-3)


def adjust_brightness(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Scale intensities: ``image * factor`` clipped to [0, 1]. Shape (3, H, W) -> (3, H, W)."""
    return (image * factor).clamp(0.0, 1.0)


def adjust_contrast(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with the mean gray level of the image: ``mean + factor * (image - mean)``, clipped. (3, H, W)."""
    mean = _grayscale(image).mean()
    return (mean + factor * (image - mean)).clamp(0.0, 1.0)


def adjust_saturation(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with the per-pixel gray image: ``gray + factor * (image - gray)``, clipped. (3, H, W)."""
    gray = _grayscale(image)
    return (gray + factor * (image - gray)).clamp(0.0, 1.0)


def rgb_to_hsv(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) RGB in [0, 1] -> (3, H, W) HSV, all channels in [0, 1] (hue as a fraction of a turn)."""
    red, green, blue = image.unbind(-3)
    value = image.amax(dim=-3)
    delta = value - image.amin(dim=-3)
    saturation = torch.where(value > 0, delta / torch.where(value > 0, value, torch.ones_like(value)), 0.0)
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.where(
        value == red,
        (green - blue) / safe,
        torch.where(value == green, 2.0 + (blue - red) / safe, 4.0 + (red - green) / safe),
    )
    hue = torch.where(delta > 0, torch.remainder(hue / 6.0, 1.0), 0.0)
    return torch.stack([hue, saturation, value], dim=-3)


def hsv_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) HSV (all in [0, 1]) -> (3, H, W) RGB in [0, 1]; inverse of :func:`rgb_to_hsv`."""
    hue, saturation, value = image.unbind(-3)
    sector_float = torch.floor(hue * 6.0)
    fraction = hue * 6.0 - sector_float
    sector = torch.remainder(sector_float, 6).long()
    p = value * (1.0 - saturation)
    q = value * (1.0 - saturation * fraction)
    t = value * (1.0 - saturation * (1.0 - fraction))
    # For each of the six hue sectors: which of (value, p, q, t) goes to red, green and blue.
    candidates = torch.stack([value, p, q, t], dim=0)
    table = torch.tensor(
        [[0, 3, 1], [2, 0, 1], [1, 0, 3], [1, 2, 0], [3, 1, 0], [0, 1, 2]], device=image.device
    )
    channels = []
    for channel in range(3):
        choice = table[:, channel][sector]
        channels.append(torch.gather(candidates, 0, choice.unsqueeze(0)).squeeze(0))
    return torch.stack(channels, dim=-3).clamp(0.0, 1.0)


def adjust_hue(image: torch.Tensor, shift: float) -> torch.Tensor:
    """Rotate hue by ``shift`` turns (in [-0.5, 0.5]) via RGB -> HSV -> RGB. (3, H, W) -> (3, H, W).

    A shift of exactly 0 returns the image unchanged (no round-trip rounding).
    """
    if shift == 0:
        return image
    hue, saturation, value = rgb_to_hsv(image).unbind(-3)
    hue = torch.remainder(hue + shift, 1.0)
    return hsv_to_rgb(torch.stack([hue, saturation, value], dim=-3))


@dataclass(frozen=True)
class JitterParams:
    """One random draw of colour jitter; None means that adjustment is skipped.

    Attributes:
        brightness, contrast, saturation: multiplicative factors.
        hue: hue shift in turns.
        order: order of the four adjustments (0 brightness, 1 contrast, 2 saturation, 3 hue).
    """

    brightness: float | None
    contrast: float | None
    saturation: float | None
    hue: float | None
    order: tuple[int, ...]


def draw_jitter(config: JitterConfig, rng: np.random.Generator) -> JitterParams:
    """Draw jitter parameters (factors, hue shift, random order of the four operations) from ``rng``."""

    def factor(strength: float) -> float | None:
        return float(rng.uniform(max(0.0, 1.0 - strength), 1.0 + strength)) if strength > 0 else None

    brightness = factor(config.brightness)
    contrast = factor(config.contrast)
    saturation = factor(config.saturation)
    hue = float(rng.uniform(-config.hue, config.hue)) if config.hue > 0 else None
    order = tuple(int(k) for k in rng.permutation(4))
    return JitterParams(brightness, contrast, saturation, hue, order)


def apply_jitter(image: torch.Tensor, params: JitterParams) -> torch.Tensor:
    """Apply drawn jitter parameters to a (3, H, W) image in [0, 1]; returns a (3, H, W) image."""
    operations = (
        (params.brightness, adjust_brightness),
        (params.contrast, adjust_contrast),
        (params.saturation, adjust_saturation),
        (params.hue, adjust_hue),
    )
    for position in params.order:
        value, operation = operations[position]
        if value is not None:
            image = operation(image, value)
    return image


def resize_and_crop(frames: torch.Tensor, scale: float, top: int, left: int) -> torch.Tensor:
    """Rescale frames by ``scale`` and cut them back to their size.

    The frames are resized bilinearly (anti-aliased when shrinking) to ``round(scale * H) x round(scale * W)``. A
    larger result is cropped at ``(top, left)``; a smaller one is padded back to (H, W) by repeating its edge pixels,
    centred (``top``/``left`` are then ignored). ``scale=1`` returns the frames unchanged.

    Args:
        frames: (N, C, H, W) frames, all transformed alike.
        scale: resize factor (> 0).
        top, left: crop corner, in ``[0, new_size - size]`` (clamped to that range).

    Returns:
        (N, C, H, W).
    """
    height, width = frames.shape[-2:]
    new_height, new_width = max(1, round(height * scale)), max(1, round(width * scale))
    if (new_height, new_width) == (height, width):
        return frames
    shrink = new_height < height or new_width < width
    out = F.interpolate(frames, size=(new_height, new_width), mode="bilinear", align_corners=False, antialias=shrink)
    pad_h, pad_w = max(0, height - new_height), max(0, width - new_width)
    if pad_h or pad_w:
        out = F.pad(out, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), mode="replicate")
    top = min(max(0, top), out.shape[-2] - height)
    left = min(max(0, left), out.shape[-1] - width)
    return out[..., top:top + height, left:left + width].clamp(0.0, 1.0)


def _random_resize_and_crop(source: torch.Tensor, driving: torch.Tensor, ratio: tuple[float, float],
                            rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw a scale in ``ratio`` and a crop position from ``rng`` (always three draws) and apply them to both
    (C, H, W) frames via :func:`resize_and_crop`."""
    height, width = source.shape[-2:]
    scale = float(rng.uniform(ratio[0], ratio[1]))
    top = int(rng.integers(0, max(0, round(height * scale) - height) + 1))
    left = int(rng.integers(0, max(0, round(width * scale) - width) + 1))
    pair = resize_and_crop(torch.stack([source, driving]), scale, top, left)
    return pair[0], pair[1]


def augment_pair(
    source: torch.Tensor,
    driving: torch.Tensor,
    config: AugmentationConfig | None,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a training pair of (3, H, W) frames identically: time flip, horizontal flip, random resize and crop,
    colour jitter (FOMM's order).

    Draws from ``rng`` in that fixed order, only for the enabled augmentations. Returns ``(source, driving)``, both
    (3, H, W). ``config=None`` returns the frames unchanged.
    """
    if config is None:
        return source, driving
    if config.flip_time and rng.random() < 0.5:
        source, driving = driving, source
    if config.flip_horizontal and rng.random() < 0.5:
        source, driving = source.flip(-1), driving.flip(-1)
    if config.resize_ratio is not None:
        source, driving = _random_resize_and_crop(source, driving, config.resize_ratio, rng)
    if config.jitter is not None:
        params = draw_jitter(config.jitter, rng)
        source, driving = apply_jitter(source, params), apply_jitter(driving, params)
    return source, driving


# ----------------------------------------------------------------------------------------------------------
# Listing and splitting
# ----------------------------------------------------------------------------------------------------------


def video_id(name: str) -> str:
    """The id of a video named ``name``: the part before the first ``#`` (the whole name if there is none)."""
    return name.split("#")[0]


def list_videos(folder: Path) -> list[Path]:
    """Videos directly inside ``folder``: sub-folders and files with a video suffix, sorted by name.

    Hidden entries (starting with ``.``) and other files are ignored.
    """
    videos = []
    for entry in sorted(Path(folder).iterdir(), key=lambda path: path.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir() or (entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES):
            videos.append(entry)
    return videos


def split_videos(videos: list[Path], seed: int = SPLIT_SEED) -> tuple[list[Path], list[Path]]:
    """Split videos 80/20 into (train, test), as ``sklearn.model_selection.train_test_split(test_size=0.2)``.

    The test part is the first ``ceil(n / 5)`` entries of ``np.random.RandomState(seed).permutation(n)``
    (legacy generator: stable across numpy versions). Both parts are returned sorted by name.
    """
    count = len(videos)
    num_test = -(-count // 5)
    permutation = np.random.RandomState(seed).permutation(count)
    test = sorted((videos[k] for k in permutation[:num_test]), key=lambda path: path.name)
    train = sorted((videos[k] for k in permutation[num_test:]), key=lambda path: path.name)
    return train, test


def _split_listing(root: Path, split: str) -> tuple[Path, list[Path]]:
    """The folder a split lives in and its videos (using the 80/20 split when ROOT has no split folders)."""
    if not root.is_dir():
        reason = "is not a folder" if root.exists() else "dataset folder does not exist"
        raise InputFileError(root, reason)
    if not (root / "train").is_dir() and not (root / "test").is_dir():
        train, test = split_videos(list_videos(root))
        return root, train if split == "train" else test
    folder = root / split
    if not folder.is_dir():
        raise InputFileError(folder, f"dataset has no '{split}' folder")
    return folder, list_videos(folder)


def _probe_all(videos: list[Path], folder: Path) -> list[VideoInfo]:
    """Probe every video; raise one InputFileError listing every unreadable one."""
    infos: list[VideoInfo] = []
    problems: list[str] = []
    for video in videos:
        try:
            infos.append(probe(video))
        except InputFileError as exc:
            where = exc.path.name if exc.path != video else ""
            problems.append(f"{video.name} ({f'{where}: ' if where else ''}{exc.reason})")
    if problems:
        raise InputFileError(folder, f"{len(problems)} unreadable video(s): " + "; ".join(problems))
    return infos


# ----------------------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------------------


class FramesDataset(Dataset):
    """FOMM's ``FramesDataset``: random frame pairs for training, video paths for testing.

    Args:
        root: dataset folder (see the module docstring for the layout).
        split: ``"train"`` or ``"test"``.
        frame_size: side S of the square frames returned for training (centre crop, then resize).
        id_sampling: train only; one item per video id (name before ``#``) instead of per video.
        num_repeats: train only; the dataset length is multiplied by this (FOMM's ``DatasetRepeater``).
        augmentation: train only; augmentations applied to each pair, None for none (``AugmentationConfig()``
            gives FOMM's defaults).
        seed: base seed of all random draws.

    Items:
        train: ``{"source": (3, S, S) float32, "driving": (3, S, S) float32, "name": str, "index": int}``. The
            two frames are drawn as FOMM does, ``sort(choice(num_frames, size=2, replace=True))`` (so they may
            coincide in short videos), source = earlier, before augmentation. ``index`` is the item index.
        test: ``{"name": str, "path": str}``; stream the frames with ``iter_frames(path)``.

    Raises:
        InputFileError: missing root or split folder, a split without videos, or unreadable videos (all
            unreadable videos are named in one message).
    """

    def __init__(
        self,
        root: str | Path,
        split: Literal["train", "test"] = "train",
        frame_size: int = 256,
        id_sampling: bool = False,
        num_repeats: int = 1,
        augmentation: AugmentationConfig | None = None,
        seed: int = 0,
    ) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if int(frame_size) != frame_size or frame_size < 1:
            raise ValueError(f"frame_size must be a positive integer, got {frame_size!r}")
        if int(num_repeats) != num_repeats or num_repeats < 1:
            raise ValueError(f"num_repeats must be a positive integer, got {num_repeats!r}")
        self.root = Path(root)
        self.split = split
        self.frame_size = int(frame_size)
        self.id_sampling = id_sampling
        self.num_repeats = int(num_repeats)
        self.augmentation = augmentation
        self.seed = int(seed)
        self.epoch = 0
        folder, self.videos = _split_listing(self.root, split)
        if not self.videos:
            suffixes = " ".join(sorted(VIDEO_SUFFIXES))
            raise InputFileError(
                folder, f"the {split} split holds no videos (expected frame folders or {suffixes})"
            )
        infos = _probe_all(self.videos, folder)
        self._frame_counts: list[int | None] = [info.num_frames for info in infos]
        self.ids: list[str] = sorted({video_id(video.name) for video in self.videos})
        self._videos_of_id: dict[str, list[int]] = {name: [] for name in self.ids}
        for position, video in enumerate(self.videos):
            self._videos_of_id[video_id(video.name)].append(position)

    @property
    def num_videos(self) -> int:
        """Number of videos in this split."""
        return len(self.videos)

    def video_path(self, i: int) -> Path:
        """Path of video ``i`` (0 <= i < num_videos) of this split."""
        return self.videos[i]

    def video_name(self, i: int) -> str:
        """File or folder name of video ``i`` (0 <= i < num_videos) of this split."""
        return self.videos[i].name

    def num_frames(self, i: int) -> int:
        """Frame count of video ``i``: from the header when recorded, else by decoding (then cached)."""
        count = self._frame_counts[i]
        if count is None:
            count = count_frames(self.videos[i])
            self._frame_counts[i] = count
        return count

    def set_epoch(self, epoch: int) -> None:
        """Select the random draws of ``epoch`` for subsequent items (call before each epoch's iteration;
        data-loader workers that persist across epochs do not see the change)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        if self.split == "test":
            return len(self.videos)
        units = len(self.ids) if self.id_sampling else len(self.videos)
        return self.num_repeats * units

    def __getitem__(self, index: int) -> dict[str, Any]:
        length = len(self)
        if index < 0:
            index += length
        if not 0 <= index < length:
            raise IndexError(f"index {index} out of range for a dataset of {length} items")
        if self.split == "test":
            return {"name": self.video_name(index), "path": str(self.video_path(index))}
        return self._training_item(int(index))

    def _training_item(self, index: int) -> dict[str, Any]:
        """Draw a video, two frames and augmentations from ``default_rng([seed, epoch, index])``."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.id_sampling:
            candidates = self._videos_of_id[self.ids[index % len(self.ids)]]
            position = candidates[int(rng.integers(len(candidates)))]
        else:
            position = index % len(self.videos)
        first, second = np.sort(rng.choice(self.num_frames(position), replace=True, size=2))
        source, driving = read_frames(
            self.videos[position], [int(first), int(second)], size=self.frame_size, crop=True
        )
        source, driving = augment_pair(source, driving, self.augmentation, rng)
        return {
            "source": source.contiguous(),
            "driving": driving.contiguous(),
            "name": self.video_name(position),
            "index": index,
        }


class ProceduralPairsDataset(Dataset):
    """Training pairs rendered on the fly from a procedural source, in :class:`FramesDataset`'s item format.

    Args:
        spec: a :class:`~motiontransfer.data.synthetic.ProceduralSpec` or ``procedural:`` string.
        num_repeats: the dataset length is ``num_repeats * spec.videos``.
        augmentation: as for :class:`FramesDataset` (None: no augmentation; procedural data rarely needs it).
        seed: base seed of the pair draws (the videos themselves are fixed by the spec's seed).

    Items:
        ``{"source": (3, S, S) float32, "driving": (3, S, S) float32, "name": str, "index": int}``, frames drawn
        as FOMM does (``sort(choice(T, size=2, replace=True))``) from ``default_rng([seed, epoch, index])``.
    """

    def __init__(self, spec: Any, num_repeats: int = 1, augmentation: AugmentationConfig | None = None,
                 seed: int = 0) -> None:
        if int(num_repeats) != num_repeats or num_repeats < 1:
            raise ValueError(f"num_repeats must be a positive integer, got {num_repeats!r}")
        self.source = ProceduralSource(spec)
        self.num_repeats = int(num_repeats)
        self.augmentation = augmentation
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the random draws of ``epoch`` for subsequent items."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_repeats * len(self.source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        rng = np.random.default_rng([self.seed, self.epoch, index])
        position = index % len(self.source)
        video = self.source.video(position)
        first, second = np.sort(rng.choice(video.num_frames, replace=True, size=2))
        frames = [
            self.source.family.render(video.identity, self.source.pose(video, int(t)), self.source.size)
            for t in (first, second)
        ]
        source, driving = (f.tensor() for f in frames)
        source, driving = augment_pair(source, driving, self.augmentation, rng)
        return {"source": source.contiguous(), "driving": driving.contiguous(), "name": video.name, "index": index}


def open_training_data(data: str | Path, frame_size: int, *, id_sampling: bool = False, num_repeats: int = 1,
                       augmentation: AugmentationConfig | None = None, seed: int = 0) -> Dataset:
    """The training split named by ``data``: a FOMM-layout folder, or a ``procedural:`` spec rendered at
    ``frame_size`` unless the spec sets its own ``size``.

    Returns:
        A dataset whose items are ``{"source", "driving", "name", "index"}`` (see :class:`FramesDataset`).
    """
    if is_procedural(str(data)):
        text = str(data)
        overrides: dict[str, Any] = {"split": "train"}
        if "size=" not in text:
            overrides["size"] = frame_size
        spec = ProceduralSpec.parse(text, **overrides)
        return ProceduralPairsDataset(spec, num_repeats=num_repeats, augmentation=augmentation, seed=seed)
    return FramesDataset(data, "train", frame_size=frame_size, id_sampling=id_sampling, num_repeats=num_repeats,
                         augmentation=augmentation, seed=seed)
