"""Atomic file and folder writes: the single place where outputs are moved into place.

Every output (videos, frame folders, images, checkpoints) is first written under a hidden temporary name in
the same folder as the target and renamed onto the target only once it is complete. A crash, an exception or a
Ctrl-C therefore never leaves a half-written file at the target path, and an existing target stays untouched
until the new one is complete.

Temporary names look like ``.out.tmp-3f9a1c2b.mp4`` for ``out.mp4``: hidden, recognisable, in the same folder
(so the final rename is atomic on the same file system) and ending with the target's suffix so that encoders
can infer the format from the name.

A write that fails because of the machine or the path rather than a bug (no space left, a read-only or
permission-denied folder, a parent that is a file) raises :class:`~motiontransfer.errors.OutputFileError` naming the
target (see :func:`output_fault`); the temporary output is deleted first.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import stat
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType, TracebackType

from motiontransfer.errors import OutputFileError

__all__ = [
    "OUTPUT_FAULTS",
    "AtomicOutput",
    "atomic_output",
    "atomic_write_bytes",
    "atomic_write_text",
    "describe_kind",
    "fault_errno",
    "not_a_folder",
    "output_fault",
    "raise_output_fault",
    "temporary_sibling",
]

OUTPUT_FAULTS: Mapping[int, str] = MappingProxyType({
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for the file system",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENAMETOOLONG: "file name too long",
    errno.EIO: "input/output error from the device",
})
"""Errors of the machine or of the path (not bugs) that stop an output from being written, with what the user is
told about each."""
# errno values of creating a file or folder below something that is not a folder.
_NOT_A_FOLDER_ERRNOS = frozenset({errno.ENOTDIR, errno.EEXIST, errno.ENOENT})


def fault_errno(exc: BaseException) -> int | None:
    """The ``errno`` of a failed read or write: an ``OSError``'s (PyAV's errors are OSErrors too), or the
    ``os error N`` a safetensors error quotes; None for anything else."""
    if isinstance(exc, OSError):
        return exc.errno
    if type(exc).__name__ == "SafetensorError":  # safetensors (Rust) reports I/O errors only in its message
        match = re.search(r"os error (\d+)", str(exc))
        return int(match.group(1)) if match else None
    return None


def describe_kind(path: Path) -> str:
    """What is at ``path``, for messages: ``a folder``, ``a file``, ``a character device``, ... or ``nothing``."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return "nothing"
    if stat.S_ISLNK(mode) and not path.exists():
        return "a broken symbolic link"
    mode = path.stat().st_mode if stat.S_ISLNK(mode) else mode
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISREG, "a file"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def not_a_folder(path: str | Path) -> Path | None:
    """The first existing ancestor of ``path`` that is not a folder (where a folder would have to be created), or
    None when every existing ancestor is a folder."""
    for parent in reversed(Path(path).parents):
        if not parent.exists():
            return None if not parent.is_symlink() else parent
        if not parent.is_dir():
            return parent
    return None


def output_fault(path: str | Path, exc: BaseException) -> OutputFileError | None:
    """The user's error for a failure to write ``path``, or None when ``exc`` is no fault of the machine or the path.

    Faults are the errors of :data:`OUTPUT_FAULTS` and creating ``path`` below something that is not a folder; any
    other exception (a bug) is left to keep its traceback. The message names ``path``, not the temporary file.
    """
    if isinstance(exc, OutputFileError):
        return None
    number = fault_errno(exc)
    if number is None:
        return None
    path = Path(path)
    blocker = not_a_folder(path)
    if blocker is not None and number in _NOT_A_FOLDER_ERRNOS:
        return OutputFileError(path, f"cannot be written: {blocker} is {describe_kind(blocker)}, not a folder")
    if number not in OUTPUT_FAULTS:
        return None
    return OutputFileError(path, f"cannot be written ({OUTPUT_FAULTS[number]})")


def raise_output_fault(path: str | Path, exc: BaseException) -> None:
    """Raise :func:`output_fault` of ``exc`` (chained to it) when it is one; return otherwise, for the caller to
    re-raise ``exc``."""
    fault = output_fault(path, exc)
    if fault is not None:
        raise fault from exc


def temporary_sibling(path: Path, tag: str = "tmp") -> Path:
    """Return an unused hidden path next to ``path`` that keeps its suffix.

    Args:
        path: the eventual target, e.g. ``out/video.mp4``.
        tag: a word put into the name, e.g. ``tmp`` gives ``out/.video.tmp-<hex>.mp4``.

    Returns:
        A path in the same folder as ``path`` that did not exist when checked (random 32-bit hex token).
    """
    path = Path(path)
    while True:
        candidate = path.with_name(f".{path.stem}.{tag}-{secrets.token_hex(4)}{path.suffix}")
        if not candidate.exists() and not candidate.is_symlink():
            return candidate


def _remove(path: Path) -> None:
    """Delete a file, symlink or folder tree at ``path`` if it exists; never raises for a missing path."""
    if path.is_symlink() or path.is_file():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def _fsync(path: Path) -> None:
    """Flush a finished file's contents, or a folder's entries (a rename), to disk (best effort: not every
    file system supports it for folders)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class AtomicOutput:
    """Context manager for one atomic output; see :func:`atomic_output`.

    Besides the ``with`` protocol it offers :meth:`open`, :meth:`commit` and :meth:`discard` for writers whose
    lifetime is not a single block (e.g. a video writer that is closed by an explicit call).
    """

    def __init__(self, path: str | Path, *, directory: bool = False) -> None:
        self.path = Path(path)
        self.directory = directory
        self.temp_path: Path | None = None

    def open(self) -> Path:
        """Create the parent folders and reserve the temporary path.

        Returns:
            The temporary path. For ``directory=True`` it is an existing empty folder; for files it does not
            exist yet (the caller creates it, e.g. an encoder that wants to open the file itself).
        """
        if self.temp_path is not None:
            raise RuntimeError(f"atomic output for {self.path} is already open")
        blocker = not_a_folder(self.path)
        if blocker is not None:
            raise OutputFileError(self.path, f"cannot be written: {blocker} is {describe_kind(blocker)}, not a folder")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            candidate = self._reserve()
        except OSError as exc:
            raise_output_fault(self.path, exc)
            raise
        self.temp_path = candidate
        return candidate

    def _reserve(self) -> Path:
        """An unused temporary path; created as an empty folder for folder outputs."""
        while True:
            candidate = temporary_sibling(self.path)
            if not self.directory:
                return candidate
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                continue

    def commit(self) -> Path:
        """Move the finished temporary file or folder onto the target and return the target path.

        A file replaces the target with one ``os.replace``. A folder first moves any existing target aside,
        renames the new folder into place and only then deletes the old one, so the old target is removed only
        once the new one is complete. If the rename fails the temporary output is deleted and the error
        raised.
        """
        temp = self._require_open()
        if not temp.exists():
            self.temp_path = None
            raise FileNotFoundError(f"nothing was written to the temporary output for {self.path}")
        try:
            if self.directory:
                self._replace_directory(temp)
            else:
                _fsync(temp)
                os.replace(temp, self.path)
        except BaseException as exc:
            _remove(temp)
            self.temp_path = None
            raise_output_fault(self.path, exc)
            raise
        self.temp_path = None
        _fsync(self.path.parent)
        return self.path

    def _replace_directory(self, temp: Path) -> None:
        """Put the finished folder ``temp`` at the target; the old target is deleted only after the swap."""
        old: Path | None = None
        if self.path.exists() or self.path.is_symlink():
            old = temporary_sibling(self.path, tag="old")
            os.replace(self.path, old)
        try:
            os.replace(temp, self.path)
        except BaseException:
            if old is not None:
                os.replace(old, self.path)
            raise
        if old is not None:
            _remove(old)

    def discard(self) -> None:
        """Delete the temporary output (if any); the target is left as it was. Safe to call repeatedly."""
        if self.temp_path is not None:
            _remove(self.temp_path)
            self.temp_path = None

    def _require_open(self) -> Path:
        """Return the temporary path, raising if :meth:`open` has not been called."""
        if self.temp_path is None:
            raise RuntimeError(f"atomic output for {self.path} is not open")
        return self.temp_path

    def __enter__(self) -> Path:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
            return
        temp = self.temp_path
        self.discard()
        if isinstance(exc, OutputFileError) and temp is not None and exc.path.is_relative_to(temp):
            # a file of a folder output: name it at its final place, not inside the hidden temporary folder
            raise OutputFileError(self.path / exc.path.relative_to(temp), exc.reason) from exc
        if exc is not None:
            raise_output_fault(self.path, exc)


def atomic_output(path: str | Path, *, directory: bool = False) -> AtomicOutput:
    """Write a file or folder atomically.

    Usage::

        with atomic_output(Path("out/video.mp4")) as tmp:   # tmp == out/.video.tmp-1a2b3c4d.mp4
            encode_video_to(tmp)
        # now out/video.mp4 exists and is complete

    Args:
        path: the target file or folder. Its parent folders are created.
        directory: if True the temporary path is a freshly created empty folder and the target is a folder;
            an existing target (file or folder) is replaced only after the new folder is complete.

    Returns:
        A context manager whose ``__enter__`` returns the temporary path (same folder as ``path``, hidden
        name, same suffix). On normal exit the temporary output is renamed onto ``path``; on any exception
        (including ``KeyboardInterrupt``) it is deleted and an existing ``path`` is left untouched. A fault of the
        machine or the path (:func:`output_fault`) is raised as :class:`~motiontransfer.errors.OutputFileError`.
    """
    return AtomicOutput(path, directory=directory)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary sibling, fsync, rename); return the path."""
    with atomic_output(path) as temp, open(temp, "wb") as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically with the given encoding (UTF-8 by default); return the path."""
    return atomic_write_bytes(path, text.encode(encoding))
