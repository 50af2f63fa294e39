"""LIA's experiment (ours: the official code has command-line arguments, no config files): the generator's
arguments (:class:`LIAConfig`) and the training sections, plus the sections every family shares
(:mod:`motiontransfer.params`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from motiontransfer.nn.stylegan2 import DEFAULT_BLUR
from motiontransfer.params import (
    SHARED_UNUSED_SECTIONS,
    DatasetParams,
    PerceptualParams,
    ReconstructionParams,
    RunParams,
    VisualizerParams,
)

# ---------------------------------------------------------------------------------------------------- model_params


@dataclass
class LIAConfig:
    """The official ``Generator`` arguments plus ours.

    Attributes:
        size: frame side (a power of two, 64 to 1024).
        style_dim: latent size N (official 512; the dictionary is N x M).
        motion_dim: dictionary size M (official 20).
        channel_multiplier: the official decoder's multiplier of the 64 px and larger channel counts.
        max_channels: (ours) cap on every channel count (official 512).
        blur_kernel: the FIR taps of up- and down-sampling.
        use_dictionary: (ours) False is the paper's "w/o dictionary" ablation: the MLP outputs w (N values)
            directly instead of the magnitudes of M orthonormal directions.
        align_corners: (ours) grid_sample's convention for the flow warps; False is what the official code runs
            with (torch >= 1.3 default).
    """

    size: int = 256
    style_dim: int = 512
    motion_dim: int = 20
    channel_multiplier: int = 1
    max_channels: int = 512
    blur_kernel: list[int] = field(default_factory=lambda: list(DEFAULT_BLUR))
    use_dictionary: bool = True
    align_corners: bool = False

    def __post_init__(self) -> None:
        if self.size < 64 or self.size > 1024 or self.size & (self.size - 1):
            raise ValueError(f"size must be a power of two from 64 to 1024, got {self.size}")
        for name in ("style_dim", "motion_dim", "channel_multiplier", "max_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    def channels(self, resolution: int, multiplier: int | None = None) -> int:
        """Channels at ``resolution`` px: 512 up to 32 px, then 256 m, 128 m, 64 m, 32 m, 16 m at 64 ... 1024 px
        (m = ``multiplier``, default ``channel_multiplier``), capped at ``max_channels``."""
        m = self.channel_multiplier if multiplier is None else multiplier
        official = 512 if resolution <= 32 else (16384 * m) // resolution
        return min(self.max_channels, official)

    @property
    def log_size(self) -> int:
        """log2(size)."""
        return int(math.log2(self.size))


# ------------------------------------------------------------------------------------------------------- training
@dataclass
class LIALossWeights:
    """LIA's generator loss: ``l1`` * L1 + the perceptual pyramid (``perceptual`` per VGG layer, [10] * 5 on
    ``scales``: the official "VGG x 10") + ``generator_gan`` * non-saturating GAN; ``discriminator_gan`` weighs the
    discriminator's loss (0 switches the GAN off)."""

    l1: float = 1.0
    perceptual: list[float] = field(default_factory=lambda: [10.0] * 5)
    generator_gan: float = 1.0
    discriminator_gan: float = 1.0


@dataclass
class LIATrainParams(RunParams, PerceptualParams):
    """LIA's training arguments (the official train.py's: lr 0.002 scaled, as StyleGAN2, by g_reg_every /
    (g_reg_every + 1) and d_reg_every / (d_reg_every + 1), with betas (0, 0.99) raised to the same power), plus
    :class:`RunParams` and :class:`PerceptualParams` (same VGG loader and fallback as FOMM)."""

    lr: float = 0.002
    g_reg_every: int = 4
    d_reg_every: int = 16
    loss_weights: LIALossWeights = field(default_factory=LIALossWeights)


# ----------------------------------------------------------------------------------------------- experiment
@dataclass
class LIAExperiment:
    """A whole LIA experiment (ours: the official code has command-line arguments, no config files)."""

    model_params: LIAConfig = field(default_factory=LIAConfig)
    family: Literal["lia"] = "lia"
    dataset_params: DatasetParams = field(default_factory=DatasetParams)
    train_params: LIATrainParams = field(default_factory=LIATrainParams)
    reconstruction_params: ReconstructionParams = field(default_factory=ReconstructionParams)
    visualizer_params: VisualizerParams = field(default_factory=VisualizerParams)
    unused_keys: ClassVar[tuple[str, ...]] = SHARED_UNUSED_SECTIONS

    @property
    def frame_size(self) -> int:
        """The model's frame side (``model_params.size``)."""
        return self.model_params.size
