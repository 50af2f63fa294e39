"""Decoding and encoding threads (motiontransfer.video.threads): order, bounded look-ahead, errors both ways, and
stopping when the caller stops."""

from __future__ import annotations

import threading
import time

import pytest

from motiontransfer.video.threads import BackgroundWriter, Prefetching, prefetch


class _Reiterable:
    """An iterable whose every iteration is a fresh ``factory()`` generator (as a reader's ``decoded()``)."""

    def __init__(self, factory):
        self.factory = factory

    def __iter__(self):
        return self.factory()


def _threads_named(prefix: str) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith(prefix)]


def test_prefetch_yields_every_item_in_order_from_another_thread():
    seen_threads: set[int] = set()

    def produce():
        for i in range(50):
            seen_threads.add(threading.get_ident())
            yield i

    assert list(prefetch(produce(), depth=3)) == list(range(50))
    assert seen_threads and threading.get_ident() not in seen_threads
    assert not _threads_named("motiontransfer-prefetch")


def test_prefetch_reads_at_most_depth_items_ahead():
    produced: list[int] = []

    def produce():
        for i in range(100):
            produced.append(i)
            yield i

    stream = prefetch(produce(), depth=2)
    assert next(stream) == 0
    time.sleep(0.3)
    # item 0 consumed, 2 in the queue, 1 more produced and waiting to be put
    assert len(produced) <= 4
    stream.close()
    assert not _threads_named("motiontransfer-prefetch")


def test_prefetch_raises_the_producers_error_in_the_caller():
    def produce():
        yield 1
        raise OSError("disk unreadable")

    stream = prefetch(produce())
    assert next(stream) == 1
    with pytest.raises(OSError, match="disk unreadable"):
        next(stream)


def test_prefetch_stops_the_thread_when_the_caller_stops_early():
    produced: list[int] = []

    def produce():
        for i in range(10_000):
            produced.append(i)
            yield i

    for item in prefetch(produce(), depth=2):
        if item == 3:
            break
    assert not _threads_named("motiontransfer-prefetch")
    assert len(produced) < 10


def test_prefetching_view_can_be_iterated_twice():
    frames = Prefetching([1, 2, 3], depth=1)
    assert list(frames) == [1, 2, 3]
    assert list(frames) == [1, 2, 3]
    assert iter(frames) is not frames


@pytest.mark.parametrize("depth", [0, -1])
def test_depth_must_be_positive(depth):
    with pytest.raises(ValueError, match="depth"):
        list(prefetch([1], depth=depth))
    with pytest.raises(ValueError, match="depth"):
        BackgroundWriter(print, depth=depth)


def test_background_writer_writes_everything_in_order_on_its_thread():
    written: list[int] = []
    writer_threads: set[int] = set()

    def write(item: int) -> None:
        writer_threads.add(threading.get_ident())
        time.sleep(0.001)
        written.append(item)

    with BackgroundWriter(write, depth=2) as background:
        for i in range(40):
            background.put(i)
    assert written == list(range(40))
    assert threading.get_ident() not in writer_threads
    assert not _threads_named("motiontransfer-writer")


def test_background_writer_raises_the_write_error_in_the_caller():
    def write(item: int) -> None:
        if item == 2:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"), BackgroundWriter(write, depth=1) as background:
        for i in range(100):
            background.put(i)
    assert not _threads_named("motiontransfer-writer")


def test_background_writer_error_on_the_last_item_is_raised_at_exit():
    def write(item: int) -> None:
        raise ValueError("bad frame")

    with pytest.raises(ValueError, match="bad frame"), BackgroundWriter(write) as background:
        background.put(0)


def test_an_error_in_the_caller_stops_the_writer_without_writing_the_rest():
    written: list[int] = []
    release = threading.Event()

    def write(item: int) -> None:
        release.wait(5)
        time.sleep(0.05)  # slow enough that the caller's stop arrives before the queue drains
        written.append(item)

    with pytest.raises(KeyboardInterrupt), BackgroundWriter(write, depth=8) as background:
        for i in range(5):
            background.put(i)
        release.set()
        raise KeyboardInterrupt
    assert not _threads_named("motiontransfer-writer")
    assert len(written) < 5


def test_prefetching_converts_on_the_iterating_thread_and_decodes_on_another():
    decode_threads: set[int] = set()
    convert_threads: set[int] = set()

    def decode():
        for i in range(20):
            decode_threads.add(threading.get_ident())
            yield i

    def convert(item: int) -> int:
        convert_threads.add(threading.get_ident())
        return 10 * item

    frames = Prefetching(_Reiterable(decode), depth=2, convert=convert)
    assert list(frames) == [10 * i for i in range(20)]
    assert list(frames) == [10 * i for i in range(20)]  # still re-iterable
    assert convert_threads == {threading.get_ident()}
    assert decode_threads and threading.get_ident() not in decode_threads


def test_prefetching_with_convert_stops_its_thread_when_the_caller_stops():
    produced: list[int] = []

    def decode():
        for i in range(1000):
            produced.append(i)
            yield i

    stream = iter(Prefetching(_Reiterable(decode), depth=2, convert=str))
    assert next(stream) == "0"
    stream.close()
    assert not _threads_named("motiontransfer-prefetch")
    assert len(produced) < 10
