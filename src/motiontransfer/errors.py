"""Exceptions that mean "the user made a mistake", as opposed to a bug in the library.

The CLI turns a :class:`UserError` into one clear line on stderr and exit code 2; any other exception is a
bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A mistake in the user's input: a missing or unreadable file, a bad value, an unknown format."""


class InputFileError(UserError):
    """A file or folder given by the user cannot be used; the message names it."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class OutputFileError(InputFileError):
    """An output file or folder cannot be written (no space left, a read-only or permission-denied folder, a parent
    that is a file); the message names the target, never the hidden temporary file."""


class ConfigError(UserError):
    """A configuration value or key is invalid; the message names the key."""


class Term(str):
    """A word of an error message that the command line spells its own way: a parameter of the Python API
    (``steps``, ``adapt_scale``), shown as is by Python and as its flag (``--steps``) by the CLI."""


class ArgumentError(UserError):
    """A bad argument of a library call. The message is made of plain text and :class:`Term` parts; ``str()`` shows
    the Python names and :meth:`render` lets the CLI substitute its flags, so that no library message names a flag.

    Example: ``ArgumentError(Term("steps"), " must be at least 1, got 0")`` reads ``steps must be at least 1, got 0``
    in Python and ``--steps must be at least 1, got 0`` on the command line.
    """

    def __init__(self, *parts: str) -> None:
        self.parts = parts
        super().__init__("".join(parts))

    def render(self, names: dict[str, str]) -> str:
        """The message with every :class:`Term` replaced by ``names[term]`` (kept when it has no entry)."""
        return "".join(names.get(part, part) if isinstance(part, Term) else part for part in self.parts)


class CapabilityError(ArgumentError):
    """A model asked for something it cannot do (adapt the movement scale without keypoints, generate a video without
    a motion predictor, ...); the message says what the model cannot do and why."""
