"""Model families. ``fomm``: First Order Motion Model networks and configs."""

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
    "CommonParams",
    "DenseMotionNetwork",
    "DenseMotionParams",
    "DiscriminatorParams",
    "FOMMConfig",
    "GeneratorParams",
    "KPDetector",
    "KPDetectorParams",
    "OcclusionAwareGenerator",
    "build_discriminator",
    "build_fomm",
    "build_generator",
    "build_kp_detector",
    "vox256_config",
]
