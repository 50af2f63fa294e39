"""Tests for motiontransfer.fileio: atomic writes of files and folders, and faults of the machine or the path as
one user error naming the target."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from motiontransfer.errors import OutputFileError
from motiontransfer.fileio import (
    AtomicOutput,
    atomic_output,
    atomic_write_bytes,
    atomic_write_text,
    describe_kind,
    fault_errno,
    not_a_folder,
)


def _leftovers(folder: Path) -> list[str]:
    """Hidden temporary entries left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_temp_name_is_hidden_sibling_keeping_suffix(tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    with atomic_output(target) as temp:
        assert temp.parent == tmp_path
        assert temp.name.startswith(".out.tmp-")
        assert temp.suffix == ".mp4"
        assert not temp.exists()
        temp.write_bytes(b"video")
        assert not target.exists()
    assert target.read_bytes() == b"video"
    assert _leftovers(tmp_path) == []


def test_creates_parent_folders(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c.txt"
    atomic_write_text(target, "hello")
    assert target.read_text() == "hello"


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_exception_keeps_existing_target_and_removes_temp(tmp_path: Path, error: type[BaseException]) -> None:
    target = tmp_path / "model.ckpt"
    target.write_bytes(b"old")
    with pytest.raises(error), atomic_output(target) as temp:
        temp.write_bytes(b"half-written")
        raise error()
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_exception_without_existing_target_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "new.bin"
    with pytest.raises(ValueError), atomic_output(target) as temp:
        temp.write_bytes(b"x")
        raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []


def test_replaces_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert _leftovers(tmp_path) == []


def test_write_bytes_and_text_return_path(tmp_path: Path) -> None:
    assert atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01") == tmp_path / "b.bin"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert atomic_write_text(tmp_path / "t.txt", "ü", encoding="utf-8") == tmp_path / "t.txt"
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "ü"


def test_nothing_written_raises_and_leaves_no_target(tmp_path: Path) -> None:
    target = tmp_path / "never.txt"
    with pytest.raises(FileNotFoundError), atomic_output(target):
        pass
    assert not target.exists()


def test_directory_replaces_old_folder_after_completion(tmp_path: Path) -> None:
    target = tmp_path / "frames"
    target.mkdir()
    (target / "old.png").write_bytes(b"old")
    with atomic_output(target, directory=True) as temp:
        assert temp.is_dir() and temp.name.startswith(".frames.tmp-")
        (temp / "000000.png").write_bytes(b"new")
        assert (target / "old.png").exists()  # old folder untouched while writing
    assert sorted(p.name for p in target.iterdir()) == ["000000.png"]
    assert _leftovers(tmp_path) == []


def test_directory_exception_keeps_old_folder(tmp_path: Path) -> None:
    target = tmp_path / "frames"
    target.mkdir()
    (target / "keep.png").write_bytes(b"keep")
    with pytest.raises(KeyboardInterrupt), atomic_output(target, directory=True) as temp:
        (temp / "000000.png").write_bytes(b"new")
        raise KeyboardInterrupt
    assert sorted(p.name for p in target.iterdir()) == ["keep.png"]
    assert _leftovers(tmp_path) == []


def test_explicit_open_commit_discard(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    output = AtomicOutput(target)
    temp = output.open()
    temp.write_text("a")
    assert output.commit() == target
    assert target.read_text() == "a"

    output = AtomicOutput(target)
    output.open().write_text("b")
    output.discard()
    output.discard()  # idempotent
    assert target.read_text() == "a"
    assert _leftovers(tmp_path) == []


def test_a_parent_that_is_a_file_is_named_and_nothing_is_created(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    target = tmp_path / "notes.txt" / "sub" / "out.mp4"
    assert not_a_folder(target) == tmp_path / "notes.txt"
    with pytest.raises(OutputFileError, match=r"notes\.txt is a file, not a folder") as caught:
        atomic_write_text(target, "x")
    assert caught.value.path == target
    assert (tmp_path / "notes.txt").read_text() == "x"


@pytest.mark.parametrize(("number", "reason"), [(errno.ENOSPC, "no space left on the device"),
                                                (errno.EROFS, "the file system is read-only"),
                                                (errno.EACCES, "permission denied")])
def test_a_machine_fault_in_the_block_becomes_one_user_error(tmp_path: Path, number: int, reason: str) -> None:
    target = tmp_path / "out.bin"
    with pytest.raises(OutputFileError) as caught, atomic_output(target) as temp:
        temp.write_bytes(b"half")
        raise OSError(number, os.strerror(number), str(temp))
    assert str(caught.value) == f"{target}: cannot be written ({reason})"  # the target, not the hidden file
    assert isinstance(caught.value.__cause__, OSError)
    assert not target.exists() and _leftovers(tmp_path) == []


def test_bugs_keep_their_own_exception(tmp_path: Path) -> None:
    with pytest.raises(OSError) as caught, atomic_output(tmp_path / "a.bin"):
        raise OSError(errno.EBADF, "Bad file descriptor")
    assert not isinstance(caught.value, OutputFileError)
    with pytest.raises(ValueError), atomic_output(tmp_path / "b.bin"):
        raise ValueError("a bug")
    assert _leftovers(tmp_path) == []


def test_a_file_of_a_folder_output_is_named_at_its_final_place(tmp_path: Path) -> None:
    with pytest.raises(OutputFileError) as caught, atomic_output(tmp_path / "frames", directory=True) as temp:
        raise OutputFileError(temp / "000001.png", "cannot be written (no space left on the device)")
    assert caught.value.path == tmp_path / "frames" / "000001.png"
    assert _leftovers(tmp_path) == [] and not (tmp_path / "frames").exists()


def test_fault_errno_reads_oserrors_and_safetensors_messages() -> None:
    class SafetensorError(Exception):
        pass

    assert fault_errno(OSError(errno.ENOSPC, "full")) == errno.ENOSPC
    message = "Error while serializing: I/O error: No space left on device (os error 28)"
    assert fault_errno(SafetensorError(message)) == errno.ENOSPC
    assert fault_errno(SafetensorError("header too large")) is None
    assert fault_errno(ValueError("os error 28")) is None


def test_describe_kind_names_what_is_there(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "broken").symlink_to(tmp_path / "gone")
    assert describe_kind(tmp_path) == "a folder"
    assert describe_kind(tmp_path / "file") == "a file"
    assert describe_kind(tmp_path / "broken") == "a broken symbolic link"
    assert describe_kind(tmp_path / "missing") == "nothing"
    if Path("/dev/null").exists():
        assert describe_kind(Path("/dev/null")) == "a character device"
