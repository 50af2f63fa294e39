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
