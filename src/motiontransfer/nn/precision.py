"""Reduced-precision islands: run chosen sub-networks in bfloat16 inside a float32 model.

Keypoints, Jacobians, motion fields and masks need float32 (bfloat16 keeps 8 bits of mantissa: a coordinate in
[-1, 1] would be off by up to a pixel at 256 px), but the convolution stacks that turn warped features into pixels
tolerate it, and oneDNN runs bfloat16 convolutions about twice as fast as float32 ones on CPUs with AVX512-BF16 or
AMX. A :class:`PrecisionIsland` holds its module's weights in the low precision, casts floating-point inputs to it
on the way in and the outputs back to the caller's dtype on the way out, so the rest of the model never sees the
low precision.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

__all__ = ["PrecisionIsland", "wrap_precision_islands"]


def _cast_floats(value: Any, dtype: torch.dtype) -> Any:
    """``value`` with every floating-point tensor (also inside lists, tuples and dicts) cast to ``dtype``."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_floats(item, dtype) for item in value)
    if isinstance(value, dict):
        return {key: _cast_floats(item, dtype) for key, item in value.items()}
    return value


def _first_float_dtype(values: Iterable[Any]) -> torch.dtype | None:
    """dtype of the first floating-point tensor among ``values`` (searched one level into lists and tuples)."""
    for value in values:
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value.dtype
        if isinstance(value, (list, tuple)):
            found = _first_float_dtype(value)
            if found is not None:
                return found
    return None


class PrecisionIsland(nn.Module):
    """Run ``module`` in ``dtype`` (e.g. ``torch.bfloat16``) and hand back results in the caller's dtype.

    Args:
        module: the wrapped module; its parameters and buffers are converted to ``dtype`` (in place).
        dtype: the island's floating-point type.

    Shapes are the wrapped module's; floating-point outputs come back in the dtype of the first floating-point
    input (inputs of another dtype are cast to ``dtype`` on the way in).
    """

    def __init__(self, module: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.module = module.to(dtype)
        self.dtype = dtype

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped module's forward in ``dtype``; outputs cast back to the inputs' dtype."""
        caller_dtype = _first_float_dtype([*args, *kwargs.values()])
        out = self.module(*_cast_floats(args, self.dtype), **_cast_floats(kwargs, self.dtype))
        return out if caller_dtype is None else _cast_floats(out, caller_dtype)


def wrap_precision_islands(root: nn.Module, paths: Iterable[str], dtype: torch.dtype) -> list[str]:
    """Replace the sub-modules of ``root`` named by ``paths`` (dotted attribute paths, e.g.
    ``"generator.bottleneck"``) with :class:`PrecisionIsland` wrappers, in place. A path naming an
    :class:`~torch.nn.ModuleList` wraps each of its items instead (the owner iterates the list); paths that do not
    exist in this model (an optional network that is not set) are skipped.

    Returns:
        The paths that were wrapped (items of a list as ``path.i``).
    """
    wrapped: list[str] = []
    for path in paths:
        owner_path, _, name = path.rpartition(".")
        try:
            owner = root.get_submodule(owner_path) if owner_path else root
        except AttributeError:
            continue
        module = getattr(owner, name, None)
        if not isinstance(module, nn.Module):
            continue
        if isinstance(module, nn.ModuleList):
            for index in range(len(module)):
                module[index] = PrecisionIsland(module[index], dtype)
                wrapped.append(f"{path}.{index}")
        else:
            setattr(owner, name, PrecisionIsland(module, dtype))
            wrapped.append(path)
    return wrapped
