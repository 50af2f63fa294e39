"""LIA, the Latent Image Animator (Wang et al., ICLR 2022): no keypoints; motion is a linear walk in latent space
along an orthonormal, learned motion dictionary, decoded by a StyleGAN2-style flow-field generator.

* Encoder E (Sec. 3.1): the appearance path (StyleGAN2 residual down-sampling blocks) maps an image to a latent
  z (style_dim) and keeps its feature maps at every resolution; a 5-layer MLP maps a latent to the motion
  magnitudes A = (a_1, ..., a_M).
* Linear Motion Decomposition (Sec. 3.2): a learnable style_dim x M matrix, orthonormalised at every forward pass
  by QR (Gram-Schmidt, Eq. 3), gives the directions d_i; w = sum_i a_i d_i (Eq. 2); z_{s->d} = z_{s->r} + w (Eq. 4).
* Generator G (Sec. 3.3): StyledConv layers from a learned constant; at every resolution from 8 px a ToFlow layer
  predicts a flow (tanh) and a mask (sigmoid) that warp and mask the encoder feature of that resolution (Eq. 5);
  ToRGB layers accumulate the image (Eq. 6).

Module and parameter names follow the official code (``enc.net_app.convs``, ``enc.fc``, ``dec.direction``,
``dec.input``, ``dec.conv1``, ``dec.convs``, ``dec.to_rgbs``, ``dec.to_flows``, ...), so an official ``gen`` state dict
loads one to one. Sizes 64 to 1024; ``channel_multiplier`` as the official decoder; ``max_channels`` and a smaller
``style_dim`` (ours) shrink the networks for CPU configs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from motiontransfer.families.lia.config import LIAConfig
from motiontransfer.nn.stylegan2 import (
    DEFAULT_BLUR,
    ConstantInput,
    ConvLayer,
    EqualConv2d,
    EqualLinear,
    ModulatedConv2d,
    ResBlock,
    StyledConv,
    StyleGAN2Discriminator,
    Upsample,
)
from motiontransfer.ops.grid import make_coordinate_grid
from motiontransfer.ops.warp import warp

# -------------------------------------------------------------------------------------------------------- encoder


class EncoderApp(nn.Module):
    """Appearance path: a 1x1 :class:`ConvLayer` to the top channels, ``log2(size) - 2`` :class:`ResBlock` down to
    4 px, and a 4x4 :class:`EqualConv2d` (no bias) to the ``style_dim`` latent (official channel table, as the
    official encoder, without the decoder's multiplier).

    Forward: (B, 3, S, S) in [-1, 1] -> (latent (B, style_dim), features [8 px, 16 px, ..., S px]).
    """

    def __init__(self, config: LIAConfig) -> None:
        super().__init__()
        size = config.size
        self.convs = nn.ModuleList([ConvLayer(3, config.channels(size, 1), 1)])
        in_channels = config.channels(size, 1)
        for level in range(config.log_size, 2, -1):
            out_channels = config.channels(2 ** (level - 1), 1)
            self.convs.append(ResBlock(in_channels, out_channels, config.blur_kernel))
            in_channels = out_channels
        self.convs.append(EqualConv2d(in_channels, config.style_dim, 4, padding=0, bias=False))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """See the class docstring."""
        outputs = []
        for conv in self.convs:
            x = conv(x)
            outputs.append(x)
        return outputs[-1].flatten(1), outputs[::-1][2:]


class Encoder(nn.Module):
    """E: :class:`EncoderApp` (``net_app``) and the motion MLP ``fc`` (4 EqualLinear style_dim -> style_dim, then
    one to ``motion_dim``; to ``style_dim`` without the dictionary)."""

    def __init__(self, config: LIAConfig) -> None:
        super().__init__()
        self.net_app = EncoderApp(config)
        dim = config.style_dim
        out = config.motion_dim if config.use_dictionary else dim
        self.fc = nn.Sequential(*[EqualLinear(dim, dim) for _ in range(4)], EqualLinear(dim, out))

    def appearance(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Image (B, 3, S, S) in [-1, 1] -> (z (B, style_dim), feature maps)."""
        return self.net_app(x)

    def motion(self, x: torch.Tensor) -> torch.Tensor:
        """Image (B, 3, S, S) in [-1, 1] -> motion magnitudes A (B, motion_dim) (or w without the dictionary)."""
        return self.fc(self.net_app(x)[0])


# ------------------------------------------------------------------------------------------- motion dictionary


class Direction(nn.Module):
    """The motion dictionary (Sec. 3.2): a learnable (style_dim, M) ``weight`` whose QR factor Q (computed at every
    call from weight + 1e-8, as the official code) has orthonormal columns d_1..d_M (Eq. 3)."""

    def __init__(self, style_dim: int, motion_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(style_dim, motion_dim))

    def basis(self) -> torch.Tensor:
        """Q (style_dim, M), orthonormal columns."""
        q, _ = torch.linalg.qr(self.weight + 1e-8)
        return q

    def forward(self, magnitudes: torch.Tensor) -> torch.Tensor:
        """w = sum_i a_i d_i (Eq. 2): (B, M) -> (B, style_dim)."""
        return magnitudes @ self.basis().T


# ------------------------------------------------------------------------------------------------------ decoder


class ToRGB(nn.Module):
    """1x1 :class:`ConvLayer` to RGB (with its leaky ReLU, as the official code) plus a bias, added to the
    up-sampled previous RGB."""

    def __init__(self, in_channels: int, upsample: bool = True, taps: Sequence[int] = DEFAULT_BLUR) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample(taps)
        self.conv = ConvLayer(in_channels, 3, 1)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, H, W) [+ previous RGB (B, 3, H/2, W/2)] -> (B, 3, H, W)."""
        out = self.conv(x) + self.bias
        return out if skip is None else out + self.upsample(skip)


class ToFlow(nn.Module):
    """Flow and mask of one resolution (Eq. 5): a 1x1 modulated convolution (no demodulation) to 3 channels plus a
    bias and the up-sampled previous ones; flow = tanh(channels 0-1) added to the identity grid, mask =
    sigmoid(channel 2). The encoder feature warped by the flow and masked replaces the decoder feature where the
    mask is 1.

    Forward: decoder feature x (B, C, H, W), style (B, style_dim), encoder feature (B, C, H, W), previous raw
    output (B, 3, H/2, W/2) or None -> (warped and masked feature, x blended with it, raw output (B, 3, H, W)).
    """

    def __init__(self, in_channels: int, style_dim: int, upsample: bool = True, taps: Sequence[int] = DEFAULT_BLUR,
                 align_corners: bool = False) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample(taps)
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.align_corners = align_corners

    def forward(self, x: torch.Tensor, style: torch.Tensor, feature: torch.Tensor,
                skip: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """See the class docstring."""
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        height, width = x.shape[2:]
        grid = make_coordinate_grid(height, width, device=x.device, dtype=x.dtype)
        flow = torch.tanh(out[:, :2]).permute(0, 2, 3, 1) + grid
        mask = torch.sigmoid(out[:, 2:3])
        warped = warp(feature, flow, align_corners=self.align_corners) * mask
        return warped, warped + x * (1 - mask), out


class Synthesis(nn.Module):
    """The flow-field generator G with the motion dictionary (``direction``).

    Forward: source latent z (B, style_dim), latent shift w (B, style_dim) or None, encoder features
    [8 px ... S px] -> image (B, 3, S, S) in about [-1, 1].
    """

    def __init__(self, config: LIAConfig) -> None:
        super().__init__()
        taps, style_dim = config.blur_kernel, config.style_dim
        self.direction = Direction(style_dim, config.motion_dim)
        self.input = ConstantInput(config.channels(4))
        self.conv1 = StyledConv(config.channels(4), config.channels(4), 3, style_dim, taps=taps)
        self.to_rgb1 = ToRGB(config.channels(4), upsample=False)  # present in the official model, unused
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.to_flows = nn.ModuleList()
        in_channels = config.channels(4)
        for level in range(3, config.log_size + 1):
            out_channels = config.channels(2**level)
            self.convs.append(StyledConv(in_channels, out_channels, 3, style_dim, upsample=True, taps=taps))
            self.convs.append(StyledConv(out_channels, out_channels, 3, style_dim, taps=taps))
            self.to_rgbs.append(ToRGB(out_channels, taps=taps))
            self.to_flows.append(ToFlow(out_channels, style_dim, taps=taps, align_corners=config.align_corners))
            in_channels = out_channels

    def forward(self, latent: torch.Tensor, shift: torch.Tensor | None,
                features: Sequence[torch.Tensor]) -> torch.Tensor:
        """See the class docstring."""
        style = latent if shift is None else latent + shift  # Eq. 4
        out = self.conv1(self.input(style.shape[0]), style)
        rgb: torch.Tensor | None = None
        raw: torch.Tensor | None = None
        layers = zip(self.convs[::2], self.convs[1::2], self.to_rgbs, self.to_flows, features, strict=True)
        for up_conv, conv, to_rgb, to_flow, feature in layers:
            out = conv(up_conv(out, style), style)
            warped, out, raw = to_flow(out, style, feature, raw)
            rgb = to_rgb(warped, rgb)
        assert rgb is not None
        return rgb


# ---------------------------------------------------------------------------------------------------- generator


class Generator(nn.Module):
    """LIA's generator: ``enc`` (:class:`Encoder`) and ``dec`` (:class:`Synthesis`), the official ``gen``."""

    def __init__(self, config: LIAConfig) -> None:
        super().__init__()
        self.config = config
        self.enc = Encoder(config)
        self.dec = Synthesis(config)

    def latent_shift(self, magnitudes: torch.Tensor) -> torch.Tensor:
        """w for motion codes (B, M) (Eq. 2), or the codes themselves without the dictionary."""
        return self.dec.direction(magnitudes) if self.config.use_dictionary else magnitudes

    def forward(self, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``driving`` from ``source`` (training, absolute motion, Eq. 11): (B, 3, S, S) in [-1, 1]
        each -> (B, 3, S, S)."""
        latent, features = self.enc.appearance(source)
        return self.dec(latent, self.latent_shift(self.enc.motion(driving)), features)


def build_discriminator(config: LIAConfig) -> StyleGAN2Discriminator:
    """LIA's StyleGAN2 discriminator at ``config.size`` with the decoder's channel table."""
    resolutions = [2**level for level in range(2, config.log_size + 1)]
    return StyleGAN2Discriminator(config.size, {r: config.channels(r) for r in resolutions}, config.blur_kernel)


def to_signed(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1] (LIA's image range)."""
    return images * 2 - 1


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped."""
    return ((images + 1) / 2).clamp(0, 1)
