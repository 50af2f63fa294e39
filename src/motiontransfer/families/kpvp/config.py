"""KPVP's experiment (ours: the official code is TensorFlow with flags): the networks' parameters
(:class:`KPVPConfig`), stage 1's and stage 3's training sections, plus the sections every family shares
(:mod:`motiontransfer.params`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from motiontransfer.params import (
    SHARED_UNUSED_SECTIONS,
    AnimateParams,
    DatasetParams,
    PerceptualParams,
    ReconstructionParams,
    RunParams,
    VisualizerParams,
)

# ---------------------------------------------------------------------------------------------------- model_params


@dataclass
class KPVPDetectorParams:
    """``model_params.detector``: the hourglass of Q and its softmax temperature (Eq. 1 is a plain softmax, 1.0)."""

    block_expansion: int = 32
    max_features: int = 256
    num_blocks: int = 4
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")


@dataclass
class TranslatorParams:
    """``model_params.translator``: T's encoder (``num_down_blocks`` halvings; the official works at 1/4),
    ``num_residual_blocks`` at that resolution, the Gaussian maps' sigma (Eq. 2, in [-1, 1] units; the official
    inverse std 14.3 is sigma 0.07) and the two ablation switches."""

    block_expansion: int = 32
    max_features: int = 256
    num_down_blocks: int = 2
    num_residual_blocks: int = 3
    keypoint_sigma: float = 0.07
    use_reference_keypoints: bool = True
    use_background_mask: bool = True

    def __post_init__(self) -> None:
        if self.keypoint_sigma <= 0:
            raise ValueError(f"keypoint_sigma must be positive, got {self.keypoint_sigma}")
        if self.num_down_blocks < 0 or self.num_residual_blocks < 0:
            raise ValueError("num_down_blocks and num_residual_blocks must be non-negative")


@dataclass
class ImageDiscriminatorParams:
    """``model_params.image_discriminator``: FOMM's patch discriminator (4x4 convs, instance norm)."""

    block_expansion: int = 32
    max_features: int = 256
    num_blocks: int = 4
    sn: bool = False


@dataclass
class MotionGeneratorParams:
    """``model_params.motion_generator``: the cVAE's LSTM sizes (one LSTM layer per entry; the official [1024,
    1024]), latent size (64), the action classes (empty: unconditional, Sec. 3.2 for NEMO and MGIF) and the
    sequence discriminator's LSTM size."""

    hidden_sizes: list[int] = field(default_factory=lambda: [1024, 1024])
    latent_dim: int = 64
    actions: list[str] = field(default_factory=list)
    discriminator_hidden_size: int = 256

    def __post_init__(self) -> None:
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"hidden_sizes must be a non-empty list of positive sizes, got {self.hidden_sizes}")
        if self.latent_dim < 1 or self.discriminator_hidden_size < 1:
            raise ValueError("latent_dim and discriminator_hidden_size must be positive")
        if len(set(self.actions)) != len(self.actions):
            raise ValueError(f"actions must be distinct, got {self.actions}")


@dataclass
class KPVPConfig:
    """KPVP's ``model_params``: K (40 for Penn Action in the paper), channels and the networks' parameters."""

    num_kp: int = 40
    num_channels: int = 3
    detector: KPVPDetectorParams = field(default_factory=KPVPDetectorParams)
    translator: TranslatorParams = field(default_factory=TranslatorParams)
    image_discriminator: ImageDiscriminatorParams = field(default_factory=ImageDiscriminatorParams)
    motion_generator: MotionGeneratorParams = field(default_factory=MotionGeneratorParams)

    def __post_init__(self) -> None:
        if self.num_kp < 1 or self.num_channels < 1:
            raise ValueError("num_kp and num_channels must be positive")


# ------------------------------------------------------------------------------------------------------- training
@dataclass
class KPVPLossWeights:
    """Stage 1's generator loss (Eq. 4): the perceptual loss (``perceptual`` per VGG19 layer; lambda_1 = 1 in the
    paper) + ``generator_gan`` * the logistic GAN loss; ``discriminator_gan`` weighs the image discriminator's loss
    (0 switches the GAN off)."""

    perceptual: list[float] = field(default_factory=lambda: [1.0] * 5)
    generator_gan: float = 1.0
    discriminator_gan: float = 1.0


@dataclass
class KPVPTrainParams(RunParams, PerceptualParams):
    """Stage 1 (detector + translator): Adam (0.5, 0.999) with ``lr`` (1e-4) multiplied by ``lr_decay`` (0.95)
    every ``lr_decay_every`` (20000) steps, as the paper; plus :class:`RunParams` and :class:`PerceptualParams`
    (the paper's perceptual loss is single-scale: ``scales`` [1])."""

    scales: list[float] = field(default_factory=lambda: [1.0])
    lr: float = 1.0e-4
    lr_decay: float = 0.95
    lr_decay_every: int = 20000
    loss_weights: KPVPLossWeights = field(default_factory=KPVPLossWeights)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.lr_decay <= 1 or self.lr_decay_every < 1:
            raise ValueError("lr_decay must be in (0, 1] and lr_decay_every at least 1")


@dataclass
class MotionLossWeights:
    """Stage 3's loss (Eq. 5): ``kl`` * KL + ``l1`` (lambda_2 = 1000) * L1 + ``generator_gan`` (lambda_3 = 2) *
    the sequence GAN; ``discriminator_gan`` weighs D_seq's loss."""

    kl: float = 1.0
    l1: float = 1000.0
    generator_gan: float = 2.0
    discriminator_gan: float = 1.0


@dataclass
class MotionTrainParams:
    """Stage 3 (the motion generator on stage 2's pseudo-labels): windows of 1 + ``num_frames`` detected
    keypoint frames (k_0 and the T futures), ``num_steps`` Adam (0.5, 0.999) steps of ``batch_size`` windows, lr
    decayed as stage 1's."""

    num_frames: int = 32
    num_steps: int = 20000
    batch_size: int = 32
    lr: float = 1.0e-4
    lr_decay: float = 0.95
    lr_decay_every: int = 20000
    seed: int = 0
    loss_weights: MotionLossWeights = field(default_factory=MotionLossWeights)

    def __post_init__(self) -> None:
        for name in ("num_frames", "num_steps", "batch_size", "lr_decay_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


# ----------------------------------------------------------------------------------------------- experiment
@dataclass
class KPVPExperiment:
    """A whole KPVP experiment (ours: the official code is TensorFlow with flags). ``train_params`` drives stage 1,
    ``motion_params`` stage 3; ``animate_params`` the relative / absolute transfer of the translator used as an
    animator (keypoints of the driving frames instead of generated ones)."""

    model_params: KPVPConfig = field(default_factory=KPVPConfig)
    family: Literal["kpvp"] = "kpvp"
    dataset_params: DatasetParams = field(default_factory=DatasetParams)
    train_params: KPVPTrainParams = field(default_factory=KPVPTrainParams)
    motion_params: MotionTrainParams = field(default_factory=MotionTrainParams)
    reconstruction_params: ReconstructionParams = field(default_factory=ReconstructionParams)
    animate_params: AnimateParams = field(default_factory=AnimateParams)
    visualizer_params: VisualizerParams = field(default_factory=VisualizerParams)
    unused_keys: ClassVar[tuple[str, ...]] = SHARED_UNUSED_SECTIONS

    @property
    def frame_size(self) -> int:
        """Square frame side from ``dataset_params`` (default 128, the paper's)."""
        return self.dataset_params.frame_size or 128
