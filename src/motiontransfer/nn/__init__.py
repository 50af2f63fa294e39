"""Shared network blocks (conv/res/up/down blocks, hourglass U-Net, anti-aliased downsampling) and
discriminators."""

from motiontransfer.nn.blocks import (
    AntiAliasDownsample,
    DownBlock2d,
    Hourglass,
    HourglassDecoder,
    HourglassEncoder,
    ResBlock2d,
    SameBlock2d,
    UpBlock2d,
)
from motiontransfer.nn.discriminators import DiscriminatorBlock, MultiScaleDiscriminator, PatchDiscriminator

__all__ = [
    "AntiAliasDownsample",
    "DiscriminatorBlock",
    "DownBlock2d",
    "Hourglass",
    "HourglassDecoder",
    "HourglassEncoder",
    "MultiScaleDiscriminator",
    "PatchDiscriminator",
    "ResBlock2d",
    "SameBlock2d",
    "UpBlock2d",
]
