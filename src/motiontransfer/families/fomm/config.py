"""FOMM's experiment: the official ``model_params`` (:class:`FOMMConfig`, key for key as the official YAML files;
defaults are the official constructor defaults, fields without one are required) and its training sections, plus
the sections every family shares (:mod:`motiontransfer.params`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from motiontransfer.errors import ConfigError
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
class CommonParams:
    """``model_params.common_params``: shared by all three networks."""

    num_kp: int
    num_channels: int = 3
    estimate_jacobian: bool = False


@dataclass
class KPDetectorParams:
    """``model_params.kp_detector_params``."""

    temperature: float
    block_expansion: int
    max_features: int
    num_blocks: int
    scale_factor: float = 1
    single_jacobian_map: bool = False
    pad: int = 0


@dataclass
class DenseMotionParams:
    """``model_params.generator_params.dense_motion_params``."""

    block_expansion: int
    max_features: int
    num_blocks: int
    scale_factor: float = 1
    kp_variance: float = 0.01


@dataclass
class GeneratorParams:
    """``model_params.generator_params``; without dense_motion_params the generator does not warp.

    Two options of ours (not in the official code, default off, so the official architecture is unchanged), after
    FOMM's successor TPSMM (Zhao and Zhang, CVPR 2022):

    * ``image_blend``: the output is ``(1 - o) * synthesis + o * warp(source)`` with ``o`` the finest occlusion map,
      so visible pixels come from the warped source itself and the decoder only fills occluded regions; the image
      loss then also reaches the dense motion (and the keypoints) directly through the warped source.
    * ``multi_scale_occlusion``: the dense motion network predicts one occlusion map per generator resolution
      (``num_down_blocks + 1``); the encoder features of every resolution are warped, multiplied by their map and
      concatenated into the decoder at the same resolution (a U-Net with warped skips).

    Both need ``dense_motion_params`` and ``estimate_occlusion_map``.
    """

    block_expansion: int
    max_features: int
    num_down_blocks: int
    num_bottleneck_blocks: int
    estimate_occlusion_map: bool = False
    dense_motion_params: DenseMotionParams | None = None
    image_blend: bool = False
    multi_scale_occlusion: bool = False

    def __post_init__(self) -> None:
        for option in ("image_blend", "multi_scale_occlusion"):
            if getattr(self, option) and (self.dense_motion_params is None or not self.estimate_occlusion_map):
                raise ConfigError(f"model_params.generator_params.{option} needs dense_motion_params and "
                                  "estimate_occlusion_map: true")


@dataclass
class DiscriminatorParams:
    """``model_params.discriminator_params``. Scales keep their YAML type: 1 -> key '1', 1.0 -> key '1-0'."""

    scales: tuple[int | float, ...] = (1,)
    block_expansion: int = 64
    max_features: int = 512
    num_blocks: int = 4
    sn: bool = False
    use_kp: bool = False
    kp_variance: float = 0.01


@dataclass
class FOMMConfig:
    """The official ``model_params`` plus two corner policies of ours.

    ``align_corners``: grid_sample's convention for every warp; False is what the official code does under
    torch >= 1.3, True what it did under torch 1.0 when it was trained. ``flow_resize_align_corners``: the
    convention of the generator's resizing of the dense motion to another resolution; False is the official code's
    under every torch since 0.4.1. Only True/True makes an identity motion an exact identity warp (with False the
    warp zooms by W / (W - 1) and resizing shifts border pixels by up to half a pixel, an L1 error of about 0.03 on
    64-px procedural faces), so our own configs use True/True; official checkpoints keep the defaults.
    """

    common_params: CommonParams
    kp_detector_params: KPDetectorParams
    generator_params: GeneratorParams
    discriminator_params: DiscriminatorParams = field(default_factory=DiscriminatorParams)
    align_corners: bool = False
    flow_resize_align_corners: bool = False


def vox256_config() -> FOMMConfig:
    """The official ``config/vox-256.yaml`` model parameters (discriminator with spectral norm)."""
    return FOMMConfig(
        common_params=CommonParams(num_kp=10, num_channels=3, estimate_jacobian=True),
        kp_detector_params=KPDetectorParams(temperature=0.1, block_expansion=32, max_features=1024, num_blocks=5,
                                            scale_factor=0.25),
        generator_params=GeneratorParams(
            block_expansion=64, max_features=512, num_down_blocks=2, num_bottleneck_blocks=6,
            estimate_occlusion_map=True,
            dense_motion_params=DenseMotionParams(block_expansion=64, max_features=1024, num_blocks=5,
                                                  scale_factor=0.25),
        ),
        discriminator_params=DiscriminatorParams(scales=(1,), block_expansion=32, max_features=512, num_blocks=4,
                                                 sn=True),
    )


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
class TrainParams(RunParams, PerceptualParams):
    """Official FOMM training parameters, plus :class:`RunParams` and :class:`PerceptualParams` (``checkpoint_freq``,
    in epochs, is accepted and never read: checkpoints are written every ``checkpoint_every`` steps)."""

    lr_generator: float = 2.0e-4
    lr_discriminator: float = 2.0e-4
    lr_kp_detector: float = 2.0e-4
    checkpoint_freq: int = 50
    transform_params: TransformParams | None = field(default_factory=TransformParams)
    loss_weights: LossWeights = field(default_factory=LossWeights)
    keypoint_separation_sigma: float = 0.1
    """Ours: the separation prior's length scale in [-1, 1] coordinates (0.1 = 3.2 px at 64 px)."""
    unused_keys: ClassVar[tuple[str, ...]] = ("checkpoint_freq",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.keypoint_separation_sigma <= 0:
            raise ValueError(f"keypoint_separation_sigma must be positive, got {self.keypoint_separation_sigma}")


# ----------------------------------------------------------------------------------------------- experiment
@dataclass
class FommExperiment:
    """A whole FOMM experiment. ``family`` is ours (official files omit it; it defaults to ``fomm``)."""

    model_params: FOMMConfig
    family: Literal["fomm"] = "fomm"
    dataset_params: DatasetParams = field(default_factory=DatasetParams)
    train_params: TrainParams = field(default_factory=TrainParams)
    reconstruction_params: ReconstructionParams = field(default_factory=ReconstructionParams)
    animate_params: AnimateParams = field(default_factory=AnimateParams)
    visualizer_params: VisualizerParams = field(default_factory=VisualizerParams)
    unused_keys: ClassVar[tuple[str, ...]] = SHARED_UNUSED_SECTIONS

    @property
    def frame_size(self) -> int:
        """Square frame side the model is trained on (dataset ``frame_shape``; 256 when unset, as FOMM)."""
        return self.dataset_params.frame_size or 256
