"""Convolutional building blocks shared by the keypoint-based models (FOMM and Monkey-Net).

Attribute names (``conv``, ``norm``, ``norm1``/``conv1``/``norm2``/``conv2``, ``encoder.down_blocks.{i}``,
``decoder.up_blocks.{i}``) follow the official FOMM code, so official state dicts load one to one. Normalisation is
plain :class:`torch.nn.BatchNorm2d` (the official code used a synchronised BatchNorm with the same parameters and
buffers), upsampling is nearest-neighbour x2.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import torch
import torch.nn.functional as F
from torch import nn

KernelSize = int | tuple[int, int]


class ResBlock2d(nn.Module):
    """Pre-activation residual block that keeps the resolution: x + conv2(relu(norm2(conv1(relu(norm1(x)))))).

    Args:
        in_features: channels C (input and output).
        kernel_size: convolution kernel size.
        padding: convolution padding (kernel_size // 2 keeps the size).

    Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, in_features: int, kernel_size: KernelSize = 3, padding: KernelSize = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_features, in_features, kernel_size=kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(in_features, in_features, kernel_size=kernel_size, padding=padding)
        self.norm1 = nn.BatchNorm2d(in_features, affine=True)
        self.norm2 = nn.BatchNorm2d(in_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class UpBlock2d(nn.Module):
    """Nearest x2 upsampling, convolution, BatchNorm, ReLU.

    Shapes: (B, in_features, H, W) -> (B, out_features, 2H, 2W) (with a size-preserving kernel/padding).
    """

    def __init__(self, in_features: int, out_features: int, kernel_size: KernelSize = 3, padding: KernelSize = 1,
                 groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding, groups=groups)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, 2H, 2W)."""
        out = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return F.relu(self.norm(self.conv(out)))


class DownBlock2d(nn.Module):
    """Convolution, BatchNorm, ReLU, 2x2 average pooling.

    Shapes: (B, in_features, H, W) -> (B, out_features, H // 2, W // 2) (with a size-preserving kernel/padding).
    """

    def __init__(self, in_features: int, out_features: int, kernel_size: KernelSize = 3, padding: KernelSize = 1,
                 groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding, groups=groups)
        self.norm = nn.BatchNorm2d(out_features, affine=True)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, H // 2, W // 2)."""
        return self.pool(F.relu(self.norm(self.conv(x))))


class SameBlock2d(nn.Module):
    """Convolution, BatchNorm, ReLU at constant resolution.

    Shapes: (B, in_features, H, W) -> (B, out_features, H, W) (with a size-preserving kernel/padding).
    """

    def __init__(self, in_features: int, out_features: int, groups: int = 1, kernel_size: KernelSize = 3,
                 padding: KernelSize = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding, groups=groups)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, H, W)."""
        return F.relu(self.norm(self.conv(x)))


def hourglass_channels(block_expansion: int, level: int, max_features: int) -> int:
    """Channels of hourglass level ``level`` (level 0 = first down block's output): min(max, be * 2^(level+1))."""
    return min(max_features, block_expansion * (2 ** (level + 1)))


class HourglassEncoder(nn.Module):
    """U-Net encoder: ``num_blocks`` :class:`DownBlock2d`; block i outputs min(max_features, be * 2^(i+1)) channels.

    Forward: (B, in_features, H, W) -> list of num_blocks + 1 tensors, the input first, then each block's output
    (B, C_i, H / 2^(i+1), W / 2^(i+1)). H and W must be divisible by 2^num_blocks.
    """

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256) -> None:
        super().__init__()
        blocks = []
        for i in range(num_blocks):
            in_channels = in_features if i == 0 else hourglass_channels(block_expansion, i - 1, max_features)
            out_channels = hourglass_channels(block_expansion, i, max_features)
            blocks.append(DownBlock2d(in_channels, out_channels, kernel_size=3, padding=1))
        self.down_blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, C, H, W) -> [x, d_1, ..., d_n] (see the class docstring)."""
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class HourglassDecoder(nn.Module):
    """U-Net decoder: :class:`UpBlock2d` from the deepest level up, each output concatenated with the encoder
    feature of the same resolution.

    Args:
        block_expansion, in_features, num_blocks, max_features: as the encoder's.
        additional_features_for_block: extra channels every skip carries (Monkey-Net's generator concatenates
            keypoint embeddings to its warped skips); 0 for FOMM.
        out_features: when given, a final 3x3 convolution ``conv`` to this many channels (Monkey-Net's hourglasses);
            None (FOMM) returns the concatenated features.

    ``out_filters`` is ``out_features`` when given, else ``block_expansion + in_features +
    additional_features_for_block``.

    Forward: the encoder's list [x, d_1, ..., d_n] (each with the additional channels) -> (B, out_filters, H, W).
    The list is not modified.
    """

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256,
                 additional_features_for_block: int = 0, out_features: int | None = None) -> None:
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            deepest = i == num_blocks - 1
            in_channels = ((1 if deepest else 2) * hourglass_channels(block_expansion, i, max_features)
                           + additional_features_for_block)
            out_channels = min(max_features, block_expansion * (2**i))
            blocks.append(UpBlock2d(in_channels, out_channels, kernel_size=3, padding=1))
        self.up_blocks = nn.ModuleList(blocks)
        concatenated = block_expansion + in_features + additional_features_for_block
        self.conv = None if out_features is None else nn.Conv2d(concatenated, out_features, kernel_size=3, padding=1)
        self.out_filters = concatenated if out_features is None else out_features

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """[x, d_1, ..., d_n] -> (B, out_filters, H, W)."""
        out = features[-1]
        for block, skip in zip(self.up_blocks, reversed(features[:-1]), strict=True):
            out = torch.cat([block(out), skip], dim=1)
        return out if self.conv is None else self.conv(out)


class Hourglass(nn.Module):
    """U-Net ("hourglass") of :class:`HourglassEncoder` + :class:`HourglassDecoder`.

    Args:
        block_expansion: channel multiplier be.
        in_features: input channels C.
        num_blocks: number of down (and up) blocks.
        max_features: channel cap.
        out_features: None (FOMM): no final convolution; else the decoder's final 3x3 ``conv`` (Monkey-Net).

    Shapes: (B, C, H, W) -> (B, out_filters, H, W) with out_filters = out_features or be + C; H and W divisible
    by 2^num_blocks.
    """

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256,
                 out_features: int | None = None) -> None:
        super().__init__()
        self.encoder = HourglassEncoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = HourglassDecoder(block_expansion, in_features, num_blocks, max_features,
                                        out_features=out_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, out_filters, H, W)."""
        return self.decoder(self.encoder(x))


def gaussian_kernel_1d(size: int, sigma: float) -> torch.Tensor:
    """Unnormalised 1-D Gaussian exp(-(i - (size-1)/2)^2 / (2 sigma^2)), i = 0..size-1, float32 (size,)."""
    positions = torch.arange(size, dtype=torch.float32)
    return torch.exp(-((positions - (size - 1) / 2) ** 2) / (2 * sigma**2))


class AntiAliasDownsample(nn.Module):
    """Band-limited downsampling (the official AntiAliasInterpolation2d): Gaussian blur, then subsampling.

    The Gaussian has sigma = (1/scale - 1) / 2 and a (2 round(4 sigma) + 1)^2 kernel (13x13 at scale 0.25),
    normalised to sum 1 and stored as the depthwise-conv buffer ``weight`` (channels, 1, k, k). The input is padded
    with zeros (k//2 before, k//2 - 1 after for an even k), blurred per channel, and every int(1/scale)-th pixel is
    kept, giving floor(H * scale) x floor(W * scale) (the same pixels as nearest interpolation with that scale
    factor; for a non-integer 1/scale, nearest interpolation itself is used). Identity when scale == 1.

    Shapes: (B, channels, H, W) -> (B, channels, floor(H * scale), floor(W * scale)).
    """

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        if not 0 < scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {scale}")
        self.scale = float(scale)
        self.groups = channels
        if scale == 1:
            kernel = torch.ones(1, 1)
        else:
            sigma = (1 / scale - 1) / 2
            size = 2 * round(sigma * 4) + 1
            gaussian = gaussian_kernel_1d(size, sigma)
            kernel = gaussian[:, None] * gaussian[None, :]
            kernel = kernel / kernel.sum()
        self.pad_before = kernel.shape[0] // 2
        self.pad_after = self.pad_before - 1 if kernel.shape[0] % 2 == 0 else self.pad_before
        self.register_buffer("weight", kernel.expand(channels, 1, *kernel.shape).clone())
        step = 1 / scale
        self.step = round(step) if abs(step - round(step)) < 1e-6 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, floor(H * scale), floor(W * scale))."""
        if self.scale == 1:
            return x
        pads = (self.pad_before, self.pad_after, self.pad_before, self.pad_after)
        out = F.conv2d(F.pad(x, pads), weight=self.weight.to(x.dtype), groups=self.groups)
        if self.step is None:
            return F.interpolate(out, scale_factor=(self.scale, self.scale), mode="nearest")
        height, width = math.floor(x.shape[2] * self.scale), math.floor(x.shape[3] * self.scale)
        return out[:, :, :: self.step, :: self.step][:, :, :height, :width]


def sequential_taps(layers: nn.Sequential, x: torch.Tensor, taps: Collection[int]) -> list[torch.Tensor]:
    """Run ``x`` through ``layers`` and return the outputs of the layers whose indices are in ``taps``, in order
    (the feature pyramid of a VGG or AlexNet ``features`` stack)."""
    outputs = []
    for index, layer in enumerate(layers):
        x = layer(x)
        if index in taps:
            outputs.append(x)
    return outputs
