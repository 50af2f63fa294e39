"""motiontransfer: self-supervised image animation (Monkey-Net, FOMM, LIA, KPVP) in one library.

``motiontransfer.load(checkpoint, config=None, device=None)`` returns an :class:`~motiontransfer.api.Animator`
(imported on first use, so that ``import motiontransfer`` stays light).
"""

from __future__ import annotations

from typing import Any

from motiontransfer.errors import ConfigError, InputFileError, UserError

__version__ = "0.1.0"

__all__ = ["Animator", "ConfigError", "InputFileError", "UserError", "__version__", "load"]


def __getattr__(name: str) -> Any:
    if name in ("load", "Animator"):
        from motiontransfer import api

        return getattr(api, name)
    raise AttributeError(f"module 'motiontransfer' has no attribute {name!r}")
