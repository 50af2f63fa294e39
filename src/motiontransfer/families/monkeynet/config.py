"""Monkey-Net's experiment: the official ``model_params`` (:class:`MonkeyNetConfig`, key for key as the official
YAML files, plus two corner policies of ours) and the official training, transfer and prediction sections, plus the
sections every family shares (:mod:`motiontransfer.params`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from motiontransfer.params import (
    SHARED_UNUSED_SECTIONS,
    DatasetParams,
    ReconstructionParams,
    RunParams,
    VisualizerParams,
)

KpVariance = Literal["matrix", "single"] | float

# ---------------------------------------------------------------------------------------------------- model_params


@dataclass
class MovementEmbeddingParams:
    """How keypoints are shown to a network (the official ``MovementEmbeddingModule`` options).

    ``use_heatmap``: one Gaussian map per keypoint (``heatmap_type`` ``gaussian``: of the driving keypoints;
    ``difference``: driving minus source), normalised by ``norm_const`` (``sum``: each map sums to 1; a number: the
    maps are divided by it). ``use_difference``: the keypoint displacement h_s - h_d as 2 constant maps.
    ``use_deformed_source_image``: the source shifted by each displacement (C maps). ``add_bg_feature_map``: one
    more all-zero "keypoint" first (the background). ``scale_factor``: work at that fraction of the resolution.
    """

    use_deformed_source_image: bool = False
    use_difference: bool = False
    use_heatmap: bool = True
    add_bg_feature_map: bool = False
    heatmap_type: Literal["gaussian", "difference"] = "gaussian"
    norm_const: Literal["sum"] | float = "sum"
    scale_factor: float = 1.0

    def __post_init__(self) -> None:
        if not (self.use_heatmap or self.use_difference or self.use_deformed_source_image):
            raise ValueError("at least one of use_heatmap, use_difference, use_deformed_source_image must be true")
        if not isinstance(self.norm_const, str) and self.norm_const <= 0:
            raise ValueError(f"norm_const must be 'sum' or a positive number, got {self.norm_const}")


@dataclass
class MaskEmbeddingParams(MovementEmbeddingParams):
    """The dense motion module's embedding: a :class:`MovementEmbeddingParams` whose background map is always on
    (the official module adds it; the key is not accepted in the YAML)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.add_bg_feature_map:
            raise ValueError("add_bg_feature_map is implied for the dense motion embedding; remove the key")


@dataclass
class CommonParams:
    num_kp: int
    num_channels: int = 3
    kp_variance: KpVariance = "matrix"

    def __post_init__(self) -> None:
        if isinstance(self.kp_variance, str) and self.kp_variance not in ("matrix", "single"):
            raise ValueError(f"kp_variance must be 'matrix', 'single' or a number, got {self.kp_variance!r}")
        if not isinstance(self.kp_variance, str) and self.kp_variance <= 0:
            raise ValueError(f"kp_variance must be positive, got {self.kp_variance}")


@dataclass
class KPDetectorParams:
    block_expansion: int
    max_features: int
    num_blocks: int
    temperature: float
    scale_factor: float = 1.0
    clip_variance: float | None = None


@dataclass
class DenseMotionParams:
    block_expansion: int
    max_features: int
    num_blocks: int
    use_mask: bool
    use_correction: bool
    mask_embedding_params: MaskEmbeddingParams = field(default_factory=MaskEmbeddingParams)
    num_group_blocks: int = 0
    bg_init: float = 2.0
    scale_factor: float = 1.0

    def __post_init__(self) -> None:
        if not (self.use_mask or self.use_correction):
            raise ValueError("use_mask and use_correction cannot both be false (no motion left); "
                             "for the 'no F' ablation set generator_params.dense_motion_params to null")


@dataclass
class GeneratorParams:
    block_expansion: int
    max_features: int
    num_blocks: int
    num_refinement_blocks: int
    dense_motion_params: DenseMotionParams | None = None
    kp_embedding_params: MovementEmbeddingParams | None = None
    interpolation_mode: Literal["nearest", "trilinear", "aligned"] = "nearest"
    """How the dense motion is resized to each skip's resolution: ``nearest`` (official default) and
    ``trilinear`` (official vox; over one frame it is bilinear with align_corners False) as the official code;
    ``aligned`` (ours) is bilinear in the grid's own convention (align_corners True), which maps a coordinate grid
    exactly, where the official modes are up to half a pixel off at the far border. Use it for new models."""


@dataclass
class DiscriminatorParams:
    block_expansion: int = 64
    num_blocks: int = 4
    max_features: int = 512
    scale_factor: float = 1.0
    kp_embedding_params: MovementEmbeddingParams | None = None


@dataclass
class MonkeyNetConfig:
    """The official ``model_params`` plus ``align_corners`` (ours): grid_sample's convention for every warp; True
    is what the official code did (torch 0.4.1, before the option existed), so it is the default."""

    common_params: CommonParams
    kp_detector_params: KPDetectorParams
    generator_params: GeneratorParams
    discriminator_params: DiscriminatorParams = field(default_factory=DiscriminatorParams)
    align_corners: bool = True


# ------------------------------------------------------------------------------------------------------- training
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


# --------------------------------------------------------------------------------------- transfer and prediction
@dataclass
class TransferParams:
    """The official ``transfer_params``: the transfer's ``normalization_params``; ``num_pairs`` is accepted and never
    read."""

    num_pairs: int = 100
    format: str = ".gif"
    normalization_params: MonkeyNetNormalizationParams = field(default_factory=MonkeyNetNormalizationParams)
    unused_keys: ClassVar[tuple[str, ...]] = ("num_pairs",)


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
    unused_keys: ClassVar[tuple[str, ...]] = SHARED_UNUSED_SECTIONS

    @property
    def frame_size(self) -> int:
        """Square frame side: ``frame_shape``/``image_shape``, else the crop size, else 64 (the paper's)."""
        if self.dataset_params.frame_size is not None:
            return self.dataset_params.frame_size
        crop = self.dataset_params.augmentation_params.crop_param
        return int(crop.size[0]) if crop is not None else 64
