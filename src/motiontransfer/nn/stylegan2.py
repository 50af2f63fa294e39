"""StyleGAN2 layers in pure PyTorch (no CUDA extension; CPU and GPU), shared by LIA's encoder, flow-field decoder
and discriminator.

Equalised learning rate (Karras et al.): weights are stored with unit variance and scaled by 1 / sqrt(fan_in) at
every forward pass, so Adam's steps are the same size for every layer. Module and parameter names follow the
rosinality StyleGAN2 port that LIA builds on (``conv.0.weight``, ``modulation.weight``, ``activate.bias``,
``kernel`` buffers, ...), so LIA's official state dicts load one to one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2.0)
DEFAULT_BLUR = (1, 3, 3, 1)


def blur_kernel(taps: Sequence[float]) -> torch.Tensor:
    """The separable 2-D FIR filter of 1-D ``taps``: outer(taps, taps) / sum, float32 (k, k)."""
    k = torch.tensor(list(taps), dtype=torch.float32)
    kernel = k[None, :] * k[:, None]
    return kernel / kernel.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad, filter with ``kernel`` (per channel), downsample by striding.

    Args:
        x: (B, C, H, W).
        kernel: (k, k) FIR filter (applied as a true convolution, i.e. flipped).
        up: zero-insertion factor (each pixel followed by up - 1 zeros along both axes).
        down: keep every ``down``-th output pixel.
        pad: (before, after) zero padding of both axes after upsampling; both >= 0.

    Returns:
        (B, C, (H * up + p0 + p1 - k + 1) / down, ...) rounded up.
    """
    batch, channels, height, width = x.shape
    if up > 1:
        spread = x.new_zeros(batch, channels, height * up, width * up)
        spread[:, :, ::up, ::up] = x
        x = spread
    # The zero padding is the convolution's own (the same products, without a padded copy of x); an uneven pad
    # is the larger one on both sides with the extra rows and columns cropped.
    most = max(pad)
    weight = torch.flip(kernel, [0, 1]).to(x.dtype).expand(channels, 1, *kernel.shape)
    x = F.conv2d(x, weight, padding=most, groups=channels)
    if pad[0] != pad[1]:
        end_h, end_w = x.shape[2] - (most - pad[1]), x.shape[3] - (most - pad[1])
        x = x[:, :, most - pad[0]:end_h, most - pad[0]:end_w]
    return x[:, :, ::down, ::down] if down > 1 else x


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor, negative_slope: float = 0.2,
                     scale: float = SQRT2) -> torch.Tensor:
    """leaky_relu(x + bias) * sqrt(2) (StyleGAN2's bias-activation; the gain keeps the signal's variance).

    Args:
        x: (B, C, ...). bias: broadcastable to x, e.g. (1, C, 1, 1) or (C,) for (B, C) inputs.
    """
    if bias.dim() == 1 and x.dim() > 2:
        bias = bias.view(1, -1, *([1] * (x.dim() - 2)))
    return F.leaky_relu(x + bias, negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    """:func:`fused_leaky_relu` with a learned per-channel ``bias`` (1, C, 1, 1), initialised to 0."""

    def __init__(self, channels: int, negative_slope: float = 0.2, scale: float = SQRT2) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)


class ScaledLeakyReLU(nn.Module):
    """Leaky ReLU (slope 0.2) without bias or gain (used where a layer has no bias)."""

    def __init__(self, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Elementwise."""
        return F.leaky_relu(x, self.negative_slope)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: y = x (W * lr_mul / sqrt(in))^T + b * lr_mul, optionally through
    :func:`fused_leaky_relu`.

    Args:
        in_dim, out_dim: sizes. bias_init: initial bias. lr_mul: learning-rate multiplier (weights are stored
        divided by it). activation: ``"fused_lrelu"`` (any truthy value) or None.

    Shapes: (B, in_dim) -> (B, out_dim).
    """

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: str | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) -> (B, out_dim)."""
        bias = None if self.bias is None else self.bias * self.lr_mul
        if self.activation:
            out = F.linear(x, self.weight * self.scale)
            return fused_leaky_relu(out, bias if bias is not None else out.new_zeros(out.shape[-1]))
        return F.linear(x, self.weight * self.scale, bias=bias)


class EqualConv2d(nn.Module):
    """Convolution with equalised learning rate (weights scaled by 1 / sqrt(in * k * k) at run time).

    Shapes: (B, in, H, W) -> (B, out, H', W') as :func:`torch.nn.functional.conv2d` with ``stride``/``padding``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.stride = stride
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """See the class docstring."""
        return F.conv2d(x, self.weight * self.scale, bias=self.bias, stride=self.stride, padding=self.padding)


class Blur(nn.Module):
    """FIR low-pass filter (:func:`upfirdn2d` with ``pad``), the ``kernel`` buffer scaled by factor^2 after a
    zero-insertion upsampling so the signal keeps its level."""

    def __init__(self, taps: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1) -> None:
        super().__init__()
        self.register_buffer("kernel", blur_kernel(taps) * upsample_factor**2)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H + p0 + p1 - k + 1, ...)."""
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """x2 (``factor``) upsampling: zero insertion then the blur filter. Shapes: (B, C, H, W) -> (B, C, 2H, 2W)."""

    def __init__(self, taps: Sequence[float] = DEFAULT_BLUR, factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", blur_kernel(taps) * factor**2)
        extra = len(taps) - factor
        self.pad = ((extra + 1) // 2 + factor - 1, extra // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """See the class docstring."""
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


def _downsample_blur(taps: Sequence[float], kernel_size: int) -> Blur:
    """The blur that precedes a stride-2 convolution of ``kernel_size`` (keeps the output at exactly H / 2)."""
    extra = (len(taps) - 2) + (kernel_size - 1)
    return Blur(taps, pad=((extra + 1) // 2, extra // 2))


class ConvLayer(nn.Sequential):
    """[Blur] -> :class:`EqualConv2d` -> activation, as an ``nn.Sequential`` (official indices: with
    ``downsample`` the blur is ``0`` and the convolution ``1``).

    Args:
        downsample: blur, then a stride-2 convolution (H -> H / 2).
        bias: a bias (in the activation when ``activate``, else in the convolution).
        activate: :class:`FusedLeakyReLU` (with bias) or :class:`ScaledLeakyReLU` (without).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, downsample: bool = False,
                 taps: Sequence[float] = DEFAULT_BLUR, bias: bool = True, activate: bool = True) -> None:
        layers: list[nn.Module] = []
        if downsample:
            layers.append(_downsample_blur(taps, kernel_size))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                  bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_channels) if bias else ScaledLeakyReLU(0.2))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Residual downsampling block: (conv3x3, blur + stride-2 conv3x3) + (blur + stride-2 1x1 skip), / sqrt(2).

    Shapes: (B, in, H, W) -> (B, out, H / 2, W / 2).
    """

    def __init__(self, in_channels: int, out_channels: int, taps: Sequence[float] = DEFAULT_BLUR) -> None:
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3, taps=taps)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True, taps=taps)
        self.skip = ConvLayer(in_channels, out_channels, 1, downsample=True, taps=taps, activate=False, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """See the class docstring."""
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


class ModulatedConv2d(nn.Module):
    """Modulated convolution (StyleGAN2 Eq. 1-3): the weight w (out, in, k, k), scaled by 1 / sqrt(in k^2), is
    multiplied per input channel by the style s = A(style) (an :class:`EqualLinear`, bias 1) and, with
    ``demodulate``, divided per output channel by sqrt(sum(w'^2) + 1e-8); each sample gets its own weight
    (a grouped convolution). ``upsample``: transposed stride-2 convolution then blur; ``downsample``: blur then
    stride-2 convolution.

    Shapes: x (B, in, H, W), style (B, style_dim) -> (B, out, H', W') with H' = H, 2H or H / 2.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False, downsample: bool = False,
                 taps: Sequence[float] = DEFAULT_BLUR) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.upsample, self.downsample, self.demodulate = upsample, downsample, demodulate
        if upsample:
            extra = (len(taps) - 2) - (kernel_size - 1)
            self.blur = Blur(taps, pad=((extra + 1) // 2 + 1, extra // 2 + 1), upsample_factor=2)
        elif downsample:
            self.blur = _downsample_blur(taps, kernel_size)
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)

    def modulated_weight(self, style: torch.Tensor) -> torch.Tensor:
        """Per-sample weights (B, out, in, k, k) for styles (B, style_dim)."""
        scales = self.modulation(style).view(-1, 1, self.in_channels, 1, 1)
        weight = self.scale * self.weight * scales
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        return weight

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """See the class docstring."""
        batch, _, height, width = x.shape
        weight = self.modulated_weight(style)
        k = self.kernel_size
        if self.upsample:
            grouped = weight.transpose(1, 2).reshape(batch * self.in_channels, self.out_channels, k, k)
            out = F.conv_transpose2d(x.reshape(1, -1, height, width), grouped, stride=2, groups=batch)
            return self.blur(out.view(batch, self.out_channels, *out.shape[2:]))
        grouped = weight.reshape(batch * self.out_channels, self.in_channels, k, k)
        if self.downsample:
            x = self.blur(x)
            out = F.conv2d(x.reshape(1, -1, *x.shape[2:]), grouped, stride=2, groups=batch)
        else:
            out = F.conv2d(x.reshape(1, -1, height, width), grouped, padding=self.padding, groups=batch)
        return out.view(batch, self.out_channels, *out.shape[2:])


class NoiseInjection(nn.Module):
    """x + weight * noise (weight starts at 0); without noise the input passes unchanged (LIA never injects
    noise)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, H, W) [+ noise (B, 1, H, W)] -> (B, C, H, W)."""
        return x if noise is None else x + self.weight * noise


class ConstantInput(nn.Module):
    """The learned constant (1, C, size, size) that starts the synthesis, repeated over the batch."""

    def __init__(self, channels: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        """-> (batch, C, size, size)."""
        return self.input.expand(batch, -1, -1, -1)


class StyledConv(nn.Module):
    """:class:`ModulatedConv2d` -> :class:`NoiseInjection` -> :class:`FusedLeakyReLU`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 upsample: bool = False, taps: Sequence[float] = DEFAULT_BLUR, demodulate: bool = True) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim, demodulate=demodulate,
                                    upsample=upsample, taps=taps)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """(B, in, H, W), (B, style_dim) -> (B, out, H', W')."""
        return self.activate(self.noise(self.conv(x, style), noise))


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, num_features: int = 1) -> torch.Tensor:
    """StyleGAN2's minibatch standard deviation: one extra channel (per feature group) holding the standard
    deviation of the features across groups of samples, averaged over channels and pixels.

    Args:
        x: (B, C, H, W). group_size: samples per group (the largest divisor of B not above it is used).

    Returns:
        (B, C + num_features, H, W).
    """
    batch, channels, height, width = x.shape
    group = max(g for g in range(1, min(batch, group_size) + 1) if batch % g == 0)
    grouped = x.view(group, -1, num_features, channels // num_features, height, width)
    std = torch.sqrt(grouped.var(dim=0, unbiased=False) + 1e-8).mean(dim=(2, 3, 4))  # (B / group, features)
    std = std[:, :, None, None].repeat(group, 1, height, width)
    return torch.cat([x, std], dim=1)


class StyleGAN2Discriminator(nn.Module):
    """StyleGAN2's residual discriminator (LIA's): a 1x1 :class:`ConvLayer` from RGB, :class:`ResBlock` down to
    4 px, minibatch standard deviation, a 3x3 ``final_conv`` and two :class:`EqualLinear` (the first with leaky
    ReLU) to one logit per image.

    Args:
        size: input side (power of two >= 8). channels: resolution -> channels (e.g. LIA's table).

    Shapes: (B, 3, size, size) in [-1, 1] -> (B, 1) logits.
    """

    def __init__(self, size: int, channels: dict[int, int], taps: Sequence[float] = DEFAULT_BLUR) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvLayer(3, channels[size], 1)]
        in_channels = channels[size]
        resolution = size
        while resolution > 4:
            resolution //= 2
            layers.append(ResBlock(in_channels, channels[resolution], taps))
            in_channels = channels[resolution]
        self.convs = nn.Sequential(*layers)
        self.final_conv = ConvLayer(in_channels + 1, channels[4], 3)
        self.final_linear = nn.Sequential(EqualLinear(channels[4] * 4 * 4, channels[4], activation="fused_lrelu"),
                                          EqualLinear(channels[4], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """See the class docstring."""
        out = self.final_conv(minibatch_stddev(self.convs(x)))
        return self.final_linear(out.flatten(1))
