"""Model families. ``base``: the interface every family implements (:class:`AnimationModel`) and the family
registry; ``fomm``: First Order Motion Model networks and configs (``fomm_animator``: FOMM behind the interface)."""

from motiontransfer.models.base import AnimationModel, SourceState, model_class, model_from_file
from motiontransfer.models.fomm import (
    CommonParams,
    DenseMotionNetwork,
    DenseMotionParams,
    DiscriminatorParams,
    FOMMConfig,
    GeneratorParams,
    KPDetector,
    KPDetectorParams,
    OcclusionAwareGenerator,
    build_discriminator,
    build_fomm,
    build_generator,
    build_kp_detector,
    vox256_config,
)

__all__ = [
    "AnimationModel",
    "CommonParams",
    "DenseMotionNetwork",
    "DenseMotionParams",
    "DiscriminatorParams",
    "FOMMConfig",
    "GeneratorParams",
    "KPDetector",
    "KPDetectorParams",
    "OcclusionAwareGenerator",
    "SourceState",
    "build_discriminator",
    "build_fomm",
    "build_generator",
    "build_kp_detector",
    "model_class",
    "model_from_file",
    "vox256_config",
]
