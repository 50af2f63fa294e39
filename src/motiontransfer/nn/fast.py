"""Exact, faster inference-only rewrites of the convolution blocks of :mod:`motiontransfer.nn.blocks`.

:func:`accelerate_network` returns a copy of a network in which every :class:`~motiontransfer.nn.blocks.ResBlock2d`,
:class:`~motiontransfer.nn.blocks.UpBlock2d`, :class:`~motiontransfer.nn.blocks.DownBlock2d` and
:class:`~motiontransfer.nn.blocks.SameBlock2d` (also inside hourglasses) is replaced by a block computing the same
function with fewer operations (:class:`FastOptions` says which):

* **BatchNorm folding**: an eval-mode BatchNorm after a convolution is an affine map per output channel, folded
  into the convolution's weights and bias (ResBlock2d's pre-activation ``norm1`` stays a per-channel affine).
* **Sub-pixel upsampling**: nearest x2 upsampling followed by a 3x3 convolution (padding 1) equals, for each of the
  four output phases (row and column parity), a 2x2 convolution at the low resolution whose taps are sums of the
  3x3 taps. The four phases are one 2x2 convolution with 4 C_out channels, interleaved afterwards: 16 taps per
  low-resolution pixel instead of 9 taps on 4 high-resolution pixels (2.25x fewer multiply-adds).
* **Winograd convolution** (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016) for the
  wide 3x3 stride-1 convolutions on large enough inputs: F(m x m, 3x3) computes each m x m output tile from an
  (m + 2)^2 input tile with (m + 2)^2 multiplications per channel pair instead of 9 m^2, as (m + 2)^2 independent
  matrix products between transformed input tiles and filters transformed once at construction. F(4x4, 3x3)
  (4x fewer multiplications, the default) has float32 errors about 4x a direct convolution's, F(2x2, 3x3) (2.25x,
  transforms of 0, +-1, +-1/2) the same as a direct convolution's; the sub-pixel 2x2 convolutions of the wide up
  blocks use F(2x2, 2x2) (integer transforms, 1.78x). Winograd runs on CPU tensors, float32 only unless
  :attr:`FastOptions.winograd_bf16` (its extra roundings in bfloat16 cost accuracy; measured there).

StyleGAN2's equalised-learning-rate layers (:class:`~motiontransfer.nn.stylegan2.EqualConv2d`,
:class:`~motiontransfer.nn.stylegan2.EqualLinear`, used by LIA) scale their weights at every call; their fast
versions do it once, which gives the same numbers bit for bit.

The fast blocks are for inference only: their weights are derived once from the eval-mode statistics, they refuse
to run in training mode or on inputs that require gradients (call them under :func:`torch.no_grad` or
:func:`torch.inference_mode`), and they have no trained layout (their state dicts do not load into the originals).
Device and dtype (float32, bfloat16, ...) follow the module's ``.to(...)`` and the inputs; outputs are channels-last
when the input or the weights are, as with torch's convolutions. The Winograd and sub-pixel weights take more memory
than the originals (see :class:`FastOptions`).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from motiontransfer.nn.blocks import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d
from motiontransfer.nn.stylegan2 import EqualConv2d, EqualLinear, fused_leaky_relu

__all__ = [
    "WINOGRAD_F2",
    "WINOGRAD_F2_K2",
    "WINOGRAD_F4",
    "FastDownBlock2d",
    "FastEqualLinear",
    "FastOptions",
    "FastResBlock2d",
    "FastSameBlock2d",
    "FastUpBlock2d",
    "FixedConv2d",
    "SubPixelUpConv2d",
    "WinogradConv2d",
    "WinogradTransform",
    "accelerate_network",
    "accelerate_network_",
    "batch_norm_affine",
    "fixed_conv",
    "fold_batch_norm",
    "foldable_batch_norm",
    "plain_conv",
    "subpixel_weight",
    "winograd_conv2d",
    "winograd_weight",
]

# ----------------------------------------------------------------------------------------------- BatchNorm folding


def _check_inference(module: nn.Module, x: torch.Tensor) -> None:
    """Raise if ``module`` is in training mode or ``x`` needs gradients (the fast blocks are inference-only)."""
    if module.training:
        raise RuntimeError(f"{type(module).__name__} is inference-only: call .eval() (its BatchNorm is folded)")
    if x.requires_grad and torch.is_grad_enabled():
        raise RuntimeError(f"{type(module).__name__} is inference-only: run it under torch.no_grad()")


def foldable_batch_norm(norm: nn.Module) -> bool:
    """Whether ``norm`` is a BatchNorm2d whose eval-mode output is a fixed per-channel affine (running statistics)."""
    return isinstance(norm, nn.BatchNorm2d) and norm.running_mean is not None and norm.running_var is not None


def batch_norm_affine(norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as ``y = x * scale + shift`` per channel.

    Returns:
        scale (C,), shift (C,) in float64 (callers cast to the weights' dtype).
    """
    assert norm.running_mean is not None and norm.running_var is not None
    inv_std = torch.rsqrt(norm.running_var.double() + norm.eps)
    weight = norm.weight.double() if norm.weight is not None else torch.ones_like(inv_std)
    bias = norm.bias.double() if norm.bias is not None else torch.zeros_like(inv_std)
    scale = weight * inv_std
    return scale, bias - norm.running_mean.double() * scale


def fold_batch_norm(conv: nn.Conv2d, norm: nn.BatchNorm2d | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights of ``norm(conv(x))`` as one convolution (or of ``conv`` alone when ``norm`` is None).

    The per-channel scale and shift are computed in float64 and the filters multiplied in their own dtype (one
    rounding more than a float64 product, and none of the float64 copies of wide filter banks, which cost 0.2 s
    and hundreds of MB while a vox-256 model was prepared).

    Returns:
        weight (C_out, C_in / groups, kh, kw) and bias (C_out,), in the convolution's dtype.
    """
    weight = conv.weight.detach()
    bias = conv.bias.detach() if conv.bias is not None else weight.new_zeros(weight.shape[0])
    if norm is None:
        return weight, bias
    scale, shift = batch_norm_affine(norm)
    folded_bias = (bias.double() * scale + shift).to(weight.dtype)
    return weight * scale.to(weight.dtype)[:, None, None, None], folded_bias


def _param(value: torch.Tensor, like: torch.Tensor) -> nn.Parameter:
    """A frozen parameter holding a copy of ``value`` in ``like``'s dtype and device (parameters follow
    ``module.to``; a copy, so that a fast network never shares storage with the network it was made from)."""
    copied = value.detach().to(device=like.device, dtype=like.dtype, copy=True)
    return nn.Parameter(copied.contiguous(), requires_grad=False)


# ------------------------------------------------------------------------------------------------------- Winograd


@dataclass(frozen=True)
class WinogradTransform:
    """The matrices of a 1-D Winograd algorithm F(m, r) (Lavin & Gray 2016); 2-D is the nested product.

    ``y = AT [(G g) * (BT d)]`` for an input tile d of alpha = m + r - 1 samples and a filter g of r taps gives the
    m outputs of the correlation ``y_i = sum_j d_{i+j} g_j``.

    Attributes:
        m: outputs per tile. bt: (alpha, alpha) input transform. g: (alpha, r) filter transform.
        at: (m, alpha) output transform.
    """

    m: int
    bt: tuple[tuple[float, ...], ...]
    g: tuple[tuple[float, ...], ...]
    at: tuple[tuple[float, ...], ...]

    @property
    def alpha(self) -> int:
        """Input tile size m + r - 1."""
        return len(self.bt)

    @property
    def taps(self) -> int:
        """Filter size r."""
        return len(self.g[0])

    @property
    def bias_slot(self) -> int:
        """Index l of a column of AT made of ones: a constant added to product (l, l) reaches every output once."""
        for index in range(self.alpha):
            if all(row[index] == 1 for row in self.at):
                return index
        raise ValueError("AT has no all-ones column to carry the bias")


WINOGRAD_F2 = WinogradTransform(
    m=2,
    bt=((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1)),
    g=((1, 0, 0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0, 0, 1)),
    at=((1, 1, 1, 0), (0, 1, -1, -1)),
)
"""F(2x2, 3x3): 4x4 input tiles, 2x2 output tiles, 16 products instead of 36 (2.25x fewer); entries 0, +-1, +-1/2,
so float32 errors stay those of a direct convolution."""

WINOGRAD_F4 = WinogradTransform(
    m=4,
    bt=((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0), (0, -2, -1, 2, 1, 0),
        (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1)),
    g=((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6), (1 / 24, 1 / 12, 1 / 6),
       (1 / 24, -1 / 12, 1 / 6), (0, 0, 1)),
    at=((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1)),
)
"""F(4x4, 3x3): 6x6 input tiles, 4x4 output tiles, 36 products instead of 144 (4x fewer); float32 errors about 4x
a direct convolution's (measured), too large for bfloat16."""

WINOGRAD_F2_K2 = WinogradTransform(
    m=2,
    bt=((1, -1, 0), (0, 1, 0), (0, -1, 1)),
    g=((1, 0), (1, 1), (0, 1)),
    at=((1, 1, 0), (0, 1, 1)),
)
"""F(2x2, 2x2) for the 2x2 sub-pixel convolutions: 3x3 input tiles, 9 products instead of 16 (1.78x fewer), integer
transforms."""


def _sandwich(left: torch.Tensor, weight: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """``left @ w @ right^T`` for every filter w: (C_out, C_in, r, s) -> (C_out, C_in, a, b) with left (a, r) and
    right (b, s), as two plain matrix products (an einsum over large filter banks is much slower)."""
    out_channels, in_channels, rows, columns = weight.shape
    half = (weight.reshape(-1, columns) @ right.T).reshape(out_channels, in_channels, rows, -1)
    full = half.transpose(2, 3).reshape(-1, rows) @ left.T
    return full.reshape(out_channels, in_channels, right.shape[0], left.shape[0]).transpose(2, 3)


def winograd_weight(weight: torch.Tensor, bias: torch.Tensor | None, transform: WinogradTransform,
                    dtype: torch.dtype | None = None,
                    chunk_channels: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Transformed filters ``G g G^T`` as the weights of the grouped 1x1 convolution of :func:`winograd_conv2d`.

    Each block of ``chunk_channels`` output channels is transformed in float64 and rounded once to ``dtype``, so
    the result is the correctly rounded transform while the float64 temporaries stay a block's size: transforming
    a whole wide filter bank in float64 made tens of MB of short-lived buffers in the middle of the first frame,
    which glibc's heap kept (fast vox-256 peak RSS 971 MiB against 806 at 100 frames).

    Args:
        weight: (C_out, C_in, r, r) with r = ``transform.taps``. bias: (C_out,) or None.
        dtype: of the results; None: ``weight``'s.
        chunk_channels: output channels transformed at a time.

    Returns:
        weight (alpha^2 C_out, C_in, 1, 1), group ``k * alpha + l`` holding entry (k, l) of the transformed filters,
        and bias (alpha^2 C_out,): the bias in group ``bias_slot * (alpha + 1)``, zeros elsewhere.
    """
    if weight.shape[2:] != (transform.taps, transform.taps):
        raise ValueError(f"a {transform.taps}x{transform.taps} transform cannot take {tuple(weight.shape)} weights")
    dtype = weight.dtype if dtype is None else dtype
    alpha, (out_channels, in_channels) = transform.alpha, weight.shape[:2]
    g = torch.tensor(transform.g, dtype=torch.float64, device=weight.device)
    transformed = torch.empty(alpha, alpha, out_channels, in_channels, dtype=dtype, device=weight.device)
    for start in range(0, out_channels, chunk_channels):
        block = weight[start:start + chunk_channels].double()
        transformed[:, :, start:start + block.shape[0]] = _sandwich(g, block, g).permute(2, 3, 0, 1)
    full_bias = torch.zeros(alpha**2, out_channels, dtype=dtype, device=weight.device)
    if bias is not None:
        full_bias[transform.bias_slot * (alpha + 1)] = bias
    return transformed.view(alpha**2 * out_channels, in_channels, 1, 1), full_bias.view(-1)


def _combine(terms: list[tuple[float, torch.Tensor]], out: torch.Tensor) -> torch.Tensor:
    """``out = sum(c * t for c, t in terms)``, with additions and subtractions for coefficients +-1."""
    terms = sorted((term for term in terms if term[0] != 0), key=lambda term: term[0] != 1)
    (first_coefficient, first), rest = terms[0], terms[1:]
    if first_coefficient == 1 and rest:
        torch.add(first, rest[0][1], alpha=rest[0][0], out=out)
        rest = rest[1:]
    else:
        torch.mul(first, first_coefficient, out=out)
    for coefficient, term in rest:
        out.add_(term, alpha=coefficient)
    return out


def _is_channels_last(x: torch.Tensor) -> bool:
    """Whether ``x`` is stored channels-last (and not also plainly contiguous, as a 1x1 image is)."""
    return not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def _output_format(*tensors: torch.Tensor) -> torch.memory_format:
    """The layout of a convolution's output, as torch picks it: channels-last when the input or the weights are."""
    return torch.channels_last if any(_is_channels_last(x) for x in tensors) else torch.contiguous_format


def _every(x: torch.Tensor, dim: int, start: int, step: int, count: int) -> torch.Tensor:
    """View of ``count`` entries of ``x`` along ``dim``: start, start + step, ..."""
    return x.narrow(dim, start, step * (count - 1) + 1)[(slice(None),) * dim + (slice(None, None, step),)]


def _grouped_pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, groups: int) -> torch.Tensor:
    """Grouped 1x1 convolution (B, G C_in, h, w) -> (B, G C_out, h, w). On the CPU it calls oneDNN directly:
    :func:`torch.nn.functional.conv2d` sends single-threaded 1x1 convolutions to a much slower fallback."""
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.bfloat16) and torch.backends.mkldnn.is_available():
        return torch.mkldnn_convolution(x, weight, bias, [0, 0], [1, 1], [1, 1], groups)
    return F.conv2d(x, weight, bias, groups=groups)


def _padded_tiles_input(x: torch.Tensor, transform: WinogradTransform,
                        padding: int) -> tuple[torch.Tensor, int, int]:
    """``x`` zero-padded, channels-last, to cover whole tiles: (B, C, m * tiles_h + r - 1, m * tiles_w + r - 1),
    with tiles_h and tiles_w."""
    batch, channels, height, width = x.shape
    m, taps = transform.m, transform.taps
    tiles_h = -(-(height + 2 * padding - taps + 1) // m)
    tiles_w = -(-(width + 2 * padding - taps + 1) // m)
    padded = torch.empty((batch, channels, m * tiles_h + taps - 1, m * tiles_w + taps - 1), dtype=x.dtype,
                         device=x.device, memory_format=torch.channels_last)
    padded[:, :, padding:padding + height, padding:padding + width].copy_(x)
    padded[:, :, :padding].zero_()
    padded[:, :, padding + height:].zero_()
    padded[:, :, :, :padding].zero_()
    padded[:, :, :, padding + width:].zero_()
    return padded, tiles_h, tiles_w


@functools.lru_cache(maxsize=32)
def _dense_transforms(transform: WinogradTransform, dtype: torch.dtype,
                      device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The 2-D transforms as matrices over flattened tiles: ``BT (x) BT`` (alpha^2, alpha^2) for the input and
    ``AT (x) AT`` (m^2, alpha^2) for the output (Kronecker products; small integers, exact in bfloat16)."""
    bt = torch.tensor(transform.bt, dtype=torch.float64)
    at = torch.tensor(transform.at, dtype=torch.float64)
    return torch.kron(bt, bt).to(device, dtype), torch.kron(at, at).to(device, dtype)


def _winograd_tiles_dense(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                          transform: WinogradTransform, padding: int) -> torch.Tensor:
    """:func:`_winograd_tiles` with each transform done as one batched matrix product over flattened tiles (the
    tiles gathered from a strided view). Fewer passes over memory than the separable form and one rounding per
    transform: in bfloat16 a vox-256 bottleneck convolution took 5.9 ms against 7.9, with a largest error of 0.43
    against 0.81 from a float64 convolution (outputs of unit scale); in float32 the separable form was as fast or
    faster."""
    batch, channels = x.shape[:2]
    m, alpha = transform.m, transform.alpha
    out_channels = weight.shape[0] // alpha**2
    padded, tiles_h, tiles_w = _padded_tiles_input(x, transform, padding)
    input_matrix, output_matrix = _dense_transforms(transform, x.dtype, x.device)
    stride_b, stride_c, stride_h, stride_w = padded.stride()
    tiles = padded.as_strided((batch, tiles_h, tiles_w, alpha, alpha, channels),
                              (stride_b, m * stride_h, m * stride_w, stride_h, stride_w, stride_c))
    # (B tiles_h tiles_w, alpha^2, C) is, in memory, the channels-last (B, alpha^2 C, tiles_h, tiles_w) input of the
    # grouped products.
    transformed = torch.matmul(input_matrix, tiles.reshape(-1, alpha * alpha, channels))
    transformed = transformed.view(batch, tiles_h, tiles_w, -1).permute(0, 3, 1, 2)
    products = _grouped_pointwise(transformed, weight, bias, alpha * alpha)
    products = products.permute(0, 2, 3, 1).reshape(-1, alpha * alpha, out_channels)
    out_tiles = torch.matmul(output_matrix, products).view(batch, tiles_h, tiles_w, m, m, out_channels)
    out = out_tiles.permute(0, 1, 3, 2, 4, 5).reshape(batch, tiles_h * m, tiles_w * m, out_channels)
    return out.permute(0, 3, 1, 2)


def _winograd_tiles(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, transform: WinogradTransform,
                    padding: int) -> torch.Tensor:
    """The convolution of :func:`winograd_conv2d` before cropping: (B, C_out, m * tiles_h, m * tiles_w),
    channels-last, valid on its first H + 2 padding - r + 1 rows and columns. bfloat16 inputs take
    :func:`_winograd_tiles_dense`."""
    if x.dtype == torch.bfloat16:
        return _winograd_tiles_dense(x, weight, bias, transform, padding)
    batch, channels = x.shape[:2]
    m, alpha = transform.m, transform.alpha
    out_channels = weight.shape[0] // alpha**2
    padded, tiles_h, tiles_w = _padded_tiles_input(x, transform, padding)

    def empty(*shape: int) -> torch.Tensor:
        return torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last)

    # Input transform BT d B, separably: rows into (B, alpha, C, tiles_h, W'), then columns into the alpha^2 groups
    # of channels of the grouped convolution, (B, alpha, alpha, C, tiles_h, tiles_w).
    rows = empty(batch, alpha * channels, tiles_h, padded.shape[3]).view(batch, alpha, channels, tiles_h, -1)
    row_taps = [_every(padded, 2, i, m, tiles_h) for i in range(alpha)]
    for k, coefficients in enumerate(transform.bt):
        _combine(list(zip(coefficients, row_taps, strict=True)), out=rows[:, k])
    transformed = empty(batch, alpha * alpha * channels, tiles_h, tiles_w)
    slots = transformed.view(batch, alpha, alpha, channels, tiles_h, tiles_w)
    column_taps = [_every(rows, 4, j, m, tiles_w) for j in range(alpha)]
    for index, coefficients in enumerate(transform.bt):
        _combine(list(zip(coefficients, column_taps, strict=True)), out=slots[:, :, index])
    # The alpha^2 products over the input channels, one group each.
    products = _grouped_pointwise(transformed, weight, bias, alpha * alpha)
    products = products.view(batch, alpha, alpha, out_channels, tiles_h, tiles_w)
    # Output transform AT M A: over the column index into (B, alpha, m, C_out, ...), then over the row index into
    # the interleaved output (B, C_out, tiles_h, m, tiles_w, m).
    half = empty(batch, alpha * m * out_channels, tiles_h, tiles_w).view(batch, alpha, m, out_channels,
                                                                         tiles_h, tiles_w)
    for q, coefficients in enumerate(transform.at):
        _combine([(c, products[:, :, index]) for index, c in enumerate(coefficients)], out=half[:, :, q])
    out = empty(batch, out_channels, tiles_h * m, tiles_w * m)
    tiled = out.view(batch, out_channels, tiles_h, m, tiles_w, m)
    for p, coefficients in enumerate(transform.at):
        _combine([(c, half[:, index]) for index, c in enumerate(coefficients)],
                 out=tiled[:, :, :, p].permute(0, 4, 1, 2, 3))
    return out


def winograd_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, transform: WinogradTransform,
                    padding: int = 1,
                    residual: torch.Tensor | None = None,
                    memory_format: torch.memory_format | None = None) -> torch.Tensor:
    """Stride-1 convolution by Winograd's minimal filtering (Lavin & Gray 2016).

    The zero-padded input is cut into overlapping alpha x alpha tiles (stride m), transformed to ``BT d B``
    (separably, rows then columns), multiplied with the transformed filters as alpha^2 independent products over
    the input channels (one grouped 1x1 convolution, so oneDNN's kernels run them), and transformed back with
    ``AT M A`` into m x m output tiles. The work is done channels-last.

    Args:
        x: (B, C_in, H, W), contiguous or channels-last.
        weight, bias: (alpha^2 C_out, C_in, 1, 1) and (alpha^2 C_out,) (or None) from :func:`winograd_weight` with
            the same ``transform``, in ``x``'s dtype.
        transform: e.g. :data:`WINOGRAD_F2` or :data:`WINOGRAD_F4` for 3x3 filters.
        padding: zero padding on every side.
        residual: (B, C_out, H', W') added to the output, or None.
        memory_format: the output's layout; None: ``x``'s.

    Returns:
        (B, C_out, H', W') = ``conv2d(x, w, b, padding=padding) + residual`` with H' = H + 2 padding - r + 1 (W'
        alike).
    """
    out = _winograd_tiles(x, weight, bias, transform, padding)
    size = (x.shape[2] + 2 * padding - transform.taps + 1, x.shape[3] + 2 * padding - transform.taps + 1)
    layout = memory_format if memory_format is not None else _output_format(x)
    if tuple(out.shape[2:]) != size or layout != torch.channels_last:
        out = out[:, :, :size[0], :size[1]].contiguous(memory_format=layout)
    return out if residual is None else out.add_(residual)


def _winograd_applies(x: torch.Tensor, transform: WinogradTransform | None, min_pixels: int,
                      bfloat16: bool = False) -> bool:
    """Whether to run a Winograd convolution on ``x``: on the CPU (other devices have their own algorithms), float32,
    or bfloat16 when ``bfloat16`` (its rounding of the transforms costs accuracy, see :class:`FastOptions`), with at
    least ``min_pixels`` pixels."""
    dtypes = (torch.float32, torch.bfloat16) if bfloat16 else (torch.float32,)
    return (transform is not None and x.dtype in dtypes and x.device.type == "cpu"
            and x.shape[2] * x.shape[3] >= min_pixels)


# ---------------------------------------------------------------------------------------------- convolution modules


class LazyWinogradWeights:
    """The Winograd-transformed filters of a convolution, made on first use (a layer that never sees an input large
    enough for Winograd never holds them: they take alpha^2 / r^2 times the memory of the direct filters) and remade
    when the module's dtype or device changes, in the direct filters' dtype (see :func:`winograd_weight`).

    Args:
        transform: the Winograd transform.
    """

    def __init__(self, transform: WinogradTransform) -> None:
        self.transform = transform
        self._cached: tuple[torch.Tensor, torch.Tensor] | None = None

    def get(self, weight: torch.Tensor, bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(transformed weight, transformed bias) for the direct ``weight`` (C_out, C_in, r, r) and ``bias``."""
        cached = self._cached
        if cached is None or cached[0].dtype != weight.dtype or cached[0].device != weight.device:
            # A (N, C, 1, 1) tensor is both contiguous and channels-last: no layout to choose.
            cached = winograd_weight(weight, bias, self.transform)
            self._cached = cached
        return cached


class FixedConv2d(nn.Module):
    """A convolution with fixed (e.g. BatchNorm-folded) weights, for inference.

    Args:
        weight: (C_out, C_in / groups, kh, kw). bias: (C_out,). like: a tensor giving the dtype and device.
        stride, padding, dilation, groups: as :func:`torch.nn.functional.conv2d`'s.

    Shapes: (B, C_in, H, W) -> (B, C_out, H', W').
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, like: torch.Tensor,
                 stride: tuple[int, int] = (1, 1), padding: tuple[int, int] = (0, 0),
                 dilation: tuple[int, int] = (1, 1), groups: int = 1) -> None:
        super().__init__()
        self.weight = _param(weight, like)
        self.bias = _param(bias, like)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.out_channels = weight.shape[0]

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, H', W') (+ ``residual`` of that shape when given)."""
        out = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return out if residual is None else out.add_(residual)


class WinogradConv2d(FixedConv2d):
    """A 3x3, stride-1, padding-1 convolution run with :func:`winograd_conv2d` where that pays
    (float32 on the CPU, at least ``min_pixels`` pixels), else as a direct convolution.

    Args:
        weight: (C_out, C_in, 3, 3). bias: (C_out,). like: a tensor giving the dtype and device.
        transform: :data:`WINOGRAD_F2` or :data:`WINOGRAD_F4`. min_pixels: smallest H * W run with Winograd.

    Shapes: (B, C_in, H, W) -> (B, C_out, H, W), channels-last when the input or the weights are (as torch's
    convolutions).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, like: torch.Tensor,
                 transform: WinogradTransform = WINOGRAD_F4, min_pixels: int = 0, bfloat16: bool = False) -> None:
        super().__init__(weight, bias, like, padding=(1, 1))
        self.transform = transform
        self.min_pixels = min_pixels
        self.bfloat16 = bfloat16
        self.transformed = LazyWinogradWeights(transform)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, H, W) (+ ``residual`` of that shape when given)."""
        if not _winograd_applies(x, self.transform, self.min_pixels, self.bfloat16):
            return super().forward(x, residual)
        weight, bias = self.transformed.get(self.weight, self.bias)
        return winograd_conv2d(x, weight, bias, self.transform, 1, residual, _output_format(x, self.weight))


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


@dataclass(frozen=True)
class FastOptions:
    """How :func:`accelerate_network` rewrites convolutions (defaults measured on a 2-core AVX-512 CPU).

    Attributes:
        winograd: transform for 3x3 stride-1 padding-1 ungrouped convolutions, None for none.
        subpixel_winograd: transform for the 2x2 sub-pixel convolutions of the up blocks, None for none.
        min_channels, max_channels: Winograd only for convolutions whose input and output channels are all in this
            range. Its transformed weights take alpha^2 / r^2 times the memory of the direct ones (4x for F(4x4,
            3x3)) and both are kept; the very wide layers of the hourglasses run at a few pixels, where Winograd
            does not pay.
        min_pixels: Winograd only on inputs of at least this many pixels (H * W; checked per call).
        winograd_bf16: also run Winograd on bfloat16 inputs (else float32 only). Its transforms add roundings: on the
            trained fomm-faces (64 px) with Winograd forced onto every layer and its decoder stacks in bf16, frames
            were 124.0 dB (F(4x4)) and 133.9 dB (F(2x2)) from float32 against 136.1 dB with direct bf16
            convolutions; vox-256 bf16 went from 272 to 220 ms a frame (F(4x4)), and to 209 against 237 when the
            bfloat16 transforms became dense matrix products (:func:`_winograd_tiles_dense`).
        subpixel_max_weights: up blocks whose 3x3 convolution has more weights than this are not rewritten to
            sub-pixel form (only folded): the sub-pixel weights take 16/9 of the memory, and such wide blocks run
            on a few pixels, where the rewrite saves little (nothing on a 2x2 input).
    """

    winograd: WinogradTransform | None = WINOGRAD_F4
    subpixel_winograd: WinogradTransform | None = WINOGRAD_F2_K2
    min_channels: int = 128
    max_channels: int = 256
    min_pixels: int = 32 * 32
    winograd_bf16: bool = False
    subpixel_max_weights: int = 512 * 512 * 9

    def wide_enough(self, conv: nn.Conv2d) -> bool:
        """Whether ``conv``'s channel counts are in [min_channels, max_channels]."""
        channels = (conv.in_channels, conv.out_channels)
        return self.min_channels <= min(channels) and max(channels) <= self.max_channels


def plain_conv(conv: nn.Module) -> bool:
    """Whether ``conv`` is an :class:`torch.nn.Conv2d` with zero padding given in pixels (what the rewrites take)."""
    return type(conv) is nn.Conv2d and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)


def fixed_conv(conv: nn.Conv2d, norm: nn.BatchNorm2d | None, options: FastOptions) -> FixedConv2d:
    """``norm(conv(x))`` (a :func:`plain_conv`) as one :class:`FixedConv2d`, or a :class:`WinogradConv2d` when
    ``options`` allow it for this convolution (3x3, stride 1, padding 1, ungrouped, wide enough)."""
    weight, bias = fold_batch_norm(conv, norm)
    stride, padding, dilation = _pair(conv.stride), _pair(conv.padding), _pair(conv.dilation)
    if (options.winograd is not None and conv.kernel_size == (3, 3) and stride == (1, 1) and padding == (1, 1)
            and dilation == (1, 1) and conv.groups == 1 and options.wide_enough(conv)):
        return WinogradConv2d(weight, bias, conv.weight, options.winograd, options.min_pixels, options.winograd_bf16)
    return FixedConv2d(weight, bias, conv.weight, stride, padding, dilation, conv.groups)


def subpixel_weight(weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights of the 2x2 low-resolution convolution equal to nearest x2 upsampling then a 3x3 convolution.

    Output phase (a, b) (row and column parity at the high resolution) at low-resolution pixel (i, j) reads rows
    i - 1 + a, i + a and columns j - 1 + b, j + b; along each axis its two taps are (w0, w1 + w2) for parity 0 and
    (w0 + w1, w2) for parity 1.

    Args:
        weight: (C_out, C_in, 3, 3). bias: (C_out,).

    Returns:
        weight (4 C_out, C_in, 2, 2), phase-major (channel (2a + b) C_out + c), and bias (4 C_out,).
    """
    out_channels, in_channels = weight.shape[:2]
    phases = weight.new_empty(2, 2, out_channels, in_channels, 2, 2)
    for a, rows in enumerate(_parity_taps(weight, 2)):
        for b, taps in enumerate(_parity_taps(rows, 3)):
            phases[a, b] = taps
    return phases.view(4 * out_channels, in_channels, 2, 2), bias.repeat(4)


def _parity_taps(weight: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The two taps of each upsampling parity along ``dim`` (of size 3): (w0, w1 + w2) and (w0 + w1, w2), each with
    ``dim`` of size 2 (additions: a matrix product with 0/1 matrices was 0.16 s of a vox-256 model's preparation)."""
    w0, w1, w2 = weight.unbind(dim)
    return torch.stack([w0, w1 + w2], dim), torch.stack([w0 + w1, w2], dim)


class SubPixelUpConv2d(nn.Module):
    """Nearest x2 upsampling, a 3x3 convolution with padding 1 (weights already folded) and a ReLU, computed at
    the low resolution (see :func:`subpixel_weight`): one 2x2 convolution (padding 1) to the four phases, then
    interleaved. The 2x2 convolution runs with ``winograd`` where :class:`WinogradConv2d` would.

    Args:
        weight: (C_out, C_in, 3, 3). bias: (C_out,). like: a tensor giving the dtype and device.
        winograd: a 2x2-filter transform (:data:`WINOGRAD_F2_K2`) or None. min_pixels: as :class:`WinogradConv2d`.

    Shapes: (B, C_in, H, W) -> (B, C_out, 2H, 2W), channels-last when the input or the weights are.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, like: torch.Tensor,
                 winograd: WinogradTransform | None = None, min_pixels: int = 0, bfloat16: bool = False) -> None:
        super().__init__()
        self.bfloat16 = bfloat16
        phase_weight, phase_bias = subpixel_weight(weight, bias)
        self.weight = _param(phase_weight, like)
        self.bias = _param(phase_bias, like)
        self.out_channels = weight.shape[0]
        self.winograd = winograd
        self.min_pixels = min_pixels
        self.transformed = None if winograd is None else LazyWinogradWeights(winograd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, 2H, 2W)."""
        batch, _, height, width = x.shape
        if _winograd_applies(x, self.winograd, self.min_pixels, self.bfloat16):
            assert self.winograd is not None
            assert self.transformed is not None
            weight, bias = self.transformed.get(self.weight, self.bias)
            phases = _winograd_tiles(x, weight, bias, self.winograd, 1)
        else:
            phases = F.conv2d(x, self.weight, self.bias, padding=1)  # (B, 4 C_out, H + 1, W + 1)
        out = torch.empty(batch, self.out_channels, 2 * height, 2 * width, dtype=phases.dtype, device=phases.device,
                          memory_format=_output_format(x, self.weight))
        for a in (0, 1):
            for b in (0, 1):
                phase = 2 * a + b
                source = phases[:, phase * self.out_channels:(phase + 1) * self.out_channels,
                                a:a + height, b:b + width]
                torch.clamp_min(source, 0, out=out[:, :, a::2, b::2])
        return out


# ------------------------------------------------------------------------------------------------------ fast blocks


class FastSameBlock2d(nn.Module):
    """:class:`~motiontransfer.nn.blocks.SameBlock2d` (conv, BatchNorm, ReLU) with the BatchNorm folded.

    Shapes: (B, C_in, H, W) -> (B, C_out, H, W).
    """

    def __init__(self, block: SameBlock2d, options: FastOptions) -> None:
        super().__init__()
        self.conv = fixed_conv(block.conv, block.norm, options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, H, W)."""
        _check_inference(self, x)
        return F.relu(self.conv(x), inplace=True)


class FastDownBlock2d(nn.Module):
    """:class:`~motiontransfer.nn.blocks.DownBlock2d` (conv, BatchNorm, ReLU, 2x2 average pooling) with the
    BatchNorm folded.

    Shapes: (B, C_in, H, W) -> (B, C_out, H // 2, W // 2).
    """

    def __init__(self, block: DownBlock2d, options: FastOptions) -> None:
        super().__init__()
        self.conv = fixed_conv(block.conv, block.norm, options)
        self.pool = copy.deepcopy(block.pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, H // 2, W // 2)."""
        _check_inference(self, x)
        return self.pool(F.relu(self.conv(x), inplace=True))


class FastUpBlock2d(nn.Module):
    """:class:`~motiontransfer.nn.blocks.UpBlock2d` (nearest x2, conv, BatchNorm, ReLU) with the BatchNorm folded
    and, for an ungrouped 3x3 convolution with padding 1 (and at most ``options.subpixel_max_weights`` weights),
    the sub-pixel rewrite (:class:`SubPixelUpConv2d`).

    Shapes: (B, C_in, H, W) -> (B, C_out, 2H, 2W).
    """

    def __init__(self, block: UpBlock2d, options: FastOptions) -> None:
        super().__init__()
        conv = block.conv
        self.subpixel = (conv.kernel_size == (3, 3) and _pair(conv.stride) == (1, 1)
                         and _pair(conv.padding) == (1, 1) and _pair(conv.dilation) == (1, 1) and conv.groups == 1
                         and conv.padding_mode == "zeros" and conv.weight.numel() <= options.subpixel_max_weights)
        if self.subpixel:
            weight, bias = fold_batch_norm(conv, block.norm)
            winograd = options.subpixel_winograd if options.wide_enough(conv) else None
            self.conv: nn.Module = SubPixelUpConv2d(weight, bias, conv.weight, winograd, options.min_pixels,
                                                    options.winograd_bf16)
        else:
            self.conv = fixed_conv(conv, block.norm, FastOptions(winograd=None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, 2H, 2W)."""
        _check_inference(self, x)
        if self.subpixel:
            return self.conv(x)
        return F.relu(self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest")), inplace=True)


class FastResBlock2d(nn.Module):
    """:class:`~motiontransfer.nn.blocks.ResBlock2d`: ``x + conv2(relu(conv1'(relu(x * s + t))))`` with ``norm1``
    as the per-channel affine (s, t) and ``norm2`` folded into ``conv1'``.

    Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, block: ResBlock2d, options: FastOptions) -> None:
        super().__init__()
        scale, shift = batch_norm_affine(block.norm1)
        self.scale = _param(scale.view(1, -1, 1, 1), block.conv1.weight)
        self.shift = _param(shift.view(1, -1, 1, 1), block.conv1.weight)
        self.conv1 = fixed_conv(block.conv1, block.norm2, options)
        self.conv2 = fixed_conv(block.conv2, None, options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        _check_inference(self, x)
        out = torch.addcmul(self.shift, x, self.scale).relu_()
        out = F.relu(self.conv1(out), inplace=True)
        return self.conv2(out, residual=x)


# ------------------------------------------------------------------------------------------ equalised-lr layers


class FastEqualLinear(nn.Module):
    """:class:`~motiontransfer.nn.stylegan2.EqualLinear` with its run-time weight and bias scaling done once (the
    same products, so the same numbers): ``linear(x, W * scale) + b * lr_mul``, optionally through
    :func:`~motiontransfer.nn.stylegan2.fused_leaky_relu`.

    Shapes: (B, in_dim) -> (B, out_dim).
    """

    def __init__(self, layer: EqualLinear) -> None:
        super().__init__()
        self.weight = _param(layer.weight * layer.scale, layer.weight)
        self.bias = None if layer.bias is None else _param(layer.bias * layer.lr_mul, layer.weight)
        self.activation = layer.activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) -> (B, out_dim)."""
        if self.activation:
            out = F.linear(x, self.weight)
            return fused_leaky_relu(out, self.bias if self.bias is not None else out.new_zeros(out.shape[-1]))
        return F.linear(x, self.weight, bias=self.bias)


def _fast_equal_conv(conv: EqualConv2d) -> FixedConv2d:
    """:class:`~motiontransfer.nn.stylegan2.EqualConv2d` as a :class:`FixedConv2d` with the weight scaled once
    (the same product as at run time; a missing bias becomes zeros, which adds exactly nothing)."""
    weight = conv.weight * conv.scale
    bias = conv.bias if conv.bias is not None else torch.zeros(weight.shape[0], dtype=weight.dtype)
    return FixedConv2d(weight, bias, conv.weight, stride=_pair(conv.stride), padding=_pair(conv.padding))


# --------------------------------------------------------------------------------------------------------- network


def _fast_block(block: nn.Module, options: FastOptions) -> nn.Module | None:
    """The fast equivalent of a block of :mod:`motiontransfer.nn.blocks` (exact type), or None (another module, a
    BatchNorm without running statistics, which cannot be folded, or a convolution that is not a
    :func:`plain_conv`)."""
    kind = type(block)
    if kind is EqualLinear:
        return FastEqualLinear(block)
    if kind is EqualConv2d:
        return _fast_equal_conv(block)
    if kind is ResBlock2d:
        foldable = (foldable_batch_norm(block.norm1) and foldable_batch_norm(block.norm2)
                    and plain_conv(block.conv1) and plain_conv(block.conv2))
        return FastResBlock2d(block, options) if foldable else None
    if kind in (SameBlock2d, DownBlock2d, UpBlock2d) and foldable_batch_norm(block.norm) and plain_conv(block.conv):
        fast = {SameBlock2d: FastSameBlock2d, DownBlock2d: FastDownBlock2d, UpBlock2d: FastUpBlock2d}[kind]
        return fast(block, options)
    return None


@torch.no_grad()
def accelerate_network(network: nn.Module, options: FastOptions | None = None) -> nn.Module:
    """An inference-only copy of ``network`` with every block of :mod:`motiontransfer.nn.blocks` (ResBlock2d,
    UpBlock2d, DownBlock2d, SameBlock2d, also inside hourglasses) replaced by its fast equivalent (module docstring).

    Args:
        network: any module (not modified); its BatchNorm running statistics are used as in eval mode.
        options: which rewrites to use (:class:`FastOptions`; default: all, with the measured thresholds).

    Returns:
        A new module in eval mode computing the same function as ``network.eval()`` up to float rounding; modules it
        does not know are deep copies of the originals. Run it without gradients.
    """
    options = options if options is not None else FastOptions()
    # deepcopy's memo maps each block to its fast equivalent, so the copy holds the fast blocks (and the replaced
    # blocks' weights are never copied).
    memo: dict[int, object] = {}
    for module in network.modules():
        fast = _fast_block(module, options)
        if fast is not None:
            memo[id(module)] = fast
    return copy.deepcopy(network, memo).eval()


@torch.no_grad()
def accelerate_network_(network: nn.Module, options: FastOptions | None = None) -> nn.Module:
    """:func:`accelerate_network` in place: each block is replaced inside ``network`` as soon as its fast equivalent is
    built, so the original's weights are freed block by block and memory never holds both networks (for a model
    loaded only to run it).

    Args:
        network: any module; modified (its blocks replaced) and put in eval mode.
        options: as :func:`accelerate_network`.

    Returns:
        ``network`` itself, or the fast equivalent when ``network`` is itself one block.
    """
    options = options if options is not None else FastOptions()
    fast = _fast_block(network, options)
    if fast is not None:
        return fast.eval()
    _replace_children(network, options)
    return network.eval()


def _replace_children(module: nn.Module, options: FastOptions) -> None:
    """Replace, depth first, every child of ``module`` that has a fast equivalent (:func:`_fast_block`)."""
    for name, child in list(module.named_children()):
        fast = _fast_block(child, options)
        if fast is None:
            _replace_children(child, options)
        else:
            setattr(module, name, fast)
