"""Experiment configs: one YAML file describes data, model, training and animation, validated into dataclasses.

The layouts are the official ones: first-order-model's (``dataset_params``, ``model_params``, ``train_params``,
``reconstruction_params``, ``animate_params``, ``visualizer_params``) and monkey-net's (``transfer_params`` and
``prediction_params`` instead of ``animate_params``), so the official ``config/*.yaml`` files load unchanged; a few
optional keys are ours (marked "ours" below). Any unknown key is an error naming it. ``family`` (ours) names the
model family; official files omit it and the family is recognised from their sections (:func:`guess_family`).

Bundled configs live in ``motiontransfer/configs/<family>/<name>.yaml`` and are loaded by name
(``load_experiment("vox-256")``); anything else is read as a path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from motiontransfer.config import from_dict, load_yaml
from motiontransfer.data.datasets import AugmentationConfig, JitterConfig
from motiontransfer.errors import ConfigError, InputFileError, UserError
from motiontransfer.models.fomm import FOMMConfig
from motiontransfer.models.kpvp import KPVPConfig
from motiontransfer.models.lia import LIAConfig
from motiontransfer.models.monkeynet import MonkeyNetConfig

Family = Literal["fomm", "monkeynet", "lia", "kpvp"]


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
class TransformParams:
    """Random TPS + affine transforms for the equivariance losses (FOMM Sec. 3.3)."""

    sigma_affine: float = 0.05
    sigma_tps: float = 0.005
    points_tps: int = 5


@dataclass
class LossWeights:
    generator_gan: float = 0.0
    discriminator_gan: float = 1.0
    feature_matching: list[float] = field(default_factory=lambda: [10.0, 10.0, 10.0, 10.0])
    perceptual: list[float] = field(default_factory=lambda: [10.0] * 5)
    equivariance_value: float = 10.0
    equivariance_jacobian: float = 10.0
    keypoint_separation: float = 0.0
    """Ours, 0 (off) in every official config: weight of the keypoint separation prior
    (:func:`motiontransfer.losses.keypoint_separation_loss`; its length scale is
    ``train_params.keypoint_separation_sigma``)."""


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


@dataclass
class TrainParams(RunParams, PerceptualParams):
    """Official FOMM training parameters, plus :class:`RunParams` and :class:`PerceptualParams`."""

    lr_generator: float = 2.0e-4
    lr_discriminator: float = 2.0e-4
    lr_kp_detector: float = 2.0e-4
    checkpoint_freq: int = 50
    transform_params: TransformParams | None = field(default_factory=TransformParams)
    loss_weights: LossWeights = field(default_factory=LossWeights)
    keypoint_separation_sigma: float = 0.1
    """Ours: the separation prior's length scale in [-1, 1] coordinates (0.1 = 3.2 px at 64 px)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.keypoint_separation_sigma <= 0:
            raise ValueError(f"keypoint_separation_sigma must be positive, got {self.keypoint_separation_sigma}")


# -------------------------------------------------------------------------------------- test / animation
@dataclass
class ReconstructionParams:
    num_videos: int | None = None
    format: str = ".mp4"


@dataclass
class NormalizationParams:
    """How driving keypoints are normalised before transfer (FOMM Sec. 3.6)."""

    adapt_movement_scale: bool = False
    use_relative_movement: bool = True
    use_relative_jacobian: bool = True


@dataclass
class AnimateParams:
    num_pairs: int = 50
    format: str = ".mp4"
    normalization_params: NormalizationParams = field(default_factory=NormalizationParams)


@dataclass
class VisualizerParams:
    kp_size: int = 5
    draw_border: bool = True
    colormap: str = "gist_rainbow"


# ----------------------------------------------------------------------------------------------- experiment
@dataclass
class FommExperiment:
    """A whole FOMM experiment. ``family`` is ours (official files omit it; it defaults to ``fomm``)."""

    model_params: FOMMConfig
    family: Family = "fomm"
    dataset_params: DatasetParams = field(default_factory=DatasetParams)
    train_params: TrainParams = field(default_factory=TrainParams)
    reconstruction_params: ReconstructionParams = field(default_factory=ReconstructionParams)
    animate_params: AnimateParams = field(default_factory=AnimateParams)
    visualizer_params: VisualizerParams = field(default_factory=VisualizerParams)

    @property
    def frame_size(self) -> int:
        """Square frame side the model is trained on (dataset ``frame_shape``; 256 when unset, as FOMM)."""
        return self.dataset_params.frame_size or 256


# ------------------------------------------------------------------------------------------------- Monkey-Net
@dataclass
class MonkeyNetLossWeights:
    """Monkey-Net's loss weights: ``reconstruction`` weighs the discriminator feature matching over [image,
    block_1, ..., block_n] (the first is the pixel L1), ``reconstruction_deformed`` a pixel L1 of the source warped
    by the dense motion (0 in the official configs), and the LSGAN terms."""

    reconstruction: list[float] = field(default_factory=lambda: [10.0, 10.0, 10.0, 10.0, 1.0])
    reconstruction_deformed: float = 0.0
    generator_gan: float = 1.0
    discriminator_gan: float = 1.0


@dataclass
class LogParams:
    """The official logging intervals (iterations / epochs); kept for the record, our runs use ``log_every`` and
    ``checkpoint_every``."""

    log_freq_iter: int = 200
    cpk_freq_epoch: int = 100


@dataclass
class MonkeyNetTrainParams(RunParams):
    """Official Monkey-Net training parameters (one learning rate for all networks; ``detach_kp_*`` stop the
    generator's / discriminator's gradients reaching the keypoint detector), plus :class:`RunParams`."""

    detach_kp_generator: bool = False
    detach_kp_discriminator: bool = True
    lr: float = 2.0e-4
    loss_weights: MonkeyNetLossWeights = field(default_factory=MonkeyNetLossWeights)
    log_params: LogParams | None = None


@dataclass
class MonkeyNetNormalizationParams:
    """How driving keypoints become the source's (the official ``normalize_kp``): ``move_location`` (relative
    motion, Eq. 7), ``movement_mult`` (scale the movement by the convex-hull size ratio), ``adapt_variance``
    (Sigma_s' = Sigma_t Sigma_1^-1 Sigma_s), ``clip_mean`` (keep means inside [-1, 1])."""

    movement_mult: bool = False
    move_location: bool = True
    adapt_variance: bool = False
    clip_mean: bool = False


@dataclass
class TransferParams:
    num_pairs: int = 100
    format: str = ".gif"
    normalization_params: MonkeyNetNormalizationParams = field(default_factory=MonkeyNetNormalizationParams)


@dataclass
class RNNParams:
    num_features: int = 1024
    num_layers: int = 1
    dropout: float = 0.0


@dataclass
class PredictionParams:
    """The image-to-video keypoint predictor (official ``prediction_params``): a GRU over keypoint sequences."""

    rnn_params: RNNParams = field(default_factory=RNNParams)
    predict_variance: bool = False
    num_epochs: int = 1000
    lr: float = 1.0e-3
    batch_size: int = 256
    num_frames: int = 32
    init_frames: int = 1
    train_size: int | None = None
    format: str = ".gif"


@dataclass
class MonkeyNetExperiment:
    """A whole Monkey-Net experiment (the official monkey-net layout; ``family`` is ours)."""

    model_params: MonkeyNetConfig
    family: Literal["monkeynet"] = "monkeynet"
    dataset_params: DatasetParams = field(default_factory=DatasetParams)
    train_params: MonkeyNetTrainParams = field(default_factory=MonkeyNetTrainParams)
    reconstruction_params: ReconstructionParams = field(default_factory=ReconstructionParams)
    transfer_params: TransferParams = field(default_factory=TransferParams)
    prediction_params: PredictionParams = field(default_factory=PredictionParams)
    visualizer_params: VisualizerParams = field(default_factory=VisualizerParams)

    @property
    def frame_size(self) -> int:
        """Square frame side: ``frame_shape``/``image_shape``, else the crop size, else 64 (the paper's)."""
        if self.dataset_params.frame_size is not None:
            return self.dataset_params.frame_size
        crop = self.dataset_params.augmentation_params.crop_param
        return int(crop.size[0]) if crop is not None else 64


# -------------------------------------------------------------------------------------------------------- LIA
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


@dataclass
class LIAExperiment:
    """A whole LIA experiment (ours: the official code has command-line arguments, no config files)."""

    model_params: LIAConfig = field(default_factory=LIAConfig)
    family: Literal["lia"] = "lia"
    dataset_params: DatasetParams = field(default_factory=DatasetParams)
    train_params: LIATrainParams = field(default_factory=LIATrainParams)
    reconstruction_params: ReconstructionParams = field(default_factory=ReconstructionParams)
    visualizer_params: VisualizerParams = field(default_factory=VisualizerParams)

    @property
    def frame_size(self) -> int:
        """The model's frame side (``model_params.size``)."""
        return self.model_params.size


# ------------------------------------------------------------------------------------------------------- KPVP
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

    @property
    def frame_size(self) -> int:
        """Square frame side from ``dataset_params`` (default 128, the paper's)."""
        return self.dataset_params.frame_size or 128


Experiment = FommExperiment | MonkeyNetExperiment | LIAExperiment | KPVPExperiment
_EXPERIMENT_TYPES: dict[str, type[Any]] = {"fomm": FommExperiment, "monkeynet": MonkeyNetExperiment,
                                           "lia": LIAExperiment, "kpvp": KPVPExperiment}
DEFAULT_OFFICIAL_CONFIGS: dict[str, str] = {"lia": "lia-vox-256"}
"""Configs used for official checkpoints given without one: LIA's vox, taichi and ted models share the official
256 px architecture."""
_MONKEYNET_SECTIONS = ("transfer_params", "prediction_params")


def guess_family(data: dict[str, Any]) -> str:
    """The family of a parsed config: its ``family`` key, else ``monkeynet`` for the official monkey-net layout
    (``transfer_params`` / ``prediction_params`` sections, or ``kp_variance`` in ``common_params``), else
    ``fomm``."""
    if "family" in data:
        return str(data["family"])
    common = (data.get("model_params") or {}).get("common_params") or {}
    if any(key in data for key in _MONKEYNET_SECTIONS) or "kp_variance" in common:
        return "monkeynet"
    return "fomm"


def experiment_from_dict(data: dict[str, Any]) -> Experiment:
    """Validate plain data (a parsed YAML file, or model-file metadata) into the family's experiment class."""
    family = guess_family(data)
    if family not in _EXPERIMENT_TYPES:
        raise ConfigError(f"family: unknown model family {family!r}; known: {', '.join(_EXPERIMENT_TYPES)}")
    if "model_params" not in data:
        raise ConfigError("missing required key model_params (is this an experiment config file?)")
    return from_dict(_EXPERIMENT_TYPES[family], {**data, "family": family})


def bundled_config_names() -> dict[str, Path]:
    """Names of the configs shipped in the package, mapped to their files."""
    root = resources.files("motiontransfer") / "configs"
    names: dict[str, Path] = {}
    if root.is_dir():
        for family_dir in sorted(root.iterdir(), key=lambda p: p.name):
            if family_dir.is_dir():
                for file in sorted(family_dir.iterdir(), key=lambda p: p.name):
                    if file.name.endswith(".yaml"):
                        names.setdefault(file.name[: -len(".yaml")], Path(str(file)))
    return names


def resolve_config(name_or_path: str | Path) -> Path:
    """The YAML file meant by a bundled config name (``vox-256``) or a path."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise InputFileError(path, "config file not found")
        return path
    bundled = bundled_config_names()
    if text in bundled:
        return bundled[text]
    raise UserError(f"unknown config {text!r}: not a file, and not a bundled config "
                    f"({', '.join(sorted(bundled))})")


def load_experiment(name_or_path: str | Path) -> Experiment:
    """Load and validate an experiment config by bundled name or path.

    Raises:
        UserError / InputFileError / ConfigError: unknown name, missing or invalid file, unknown key or bad
            value (the message names the file and the dotted key).
    """
    path = resolve_config(name_or_path)
    try:
        return experiment_from_dict(load_yaml(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
