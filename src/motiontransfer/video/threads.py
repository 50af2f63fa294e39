"""Decoding and encoding on their own threads while the model runs.

PyAV releases the GIL while it decodes and encodes, so a reader thread that decodes the next frames and a writer
thread that encodes the last ones run next to the model's forward passes. Both hand frames over through bounded
queues (memory stays constant however long the video), and both pass errors on: an exception in the thread is
raised again in the caller, and an exception or Ctrl-C in the caller stops the thread before the caller's files
are closed or deleted.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

S = TypeVar("S")
T = TypeVar("T")

__all__ = ["BackgroundWriter", "Prefetching", "prefetch"]

_DONE = object()
_POLL_SECONDS = 0.1


class _Failure:
    """An exception raised in a background thread, carried to the caller."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetch(items: Iterable[T], depth: int = 4) -> Generator[T, None, None]:
    """Iterate ``items`` on a background thread, keeping up to ``depth`` items ready.

    Args:
        items: any iterable (a :class:`~motiontransfer.video.io.VideoReader`, a generator, ...); it is iterated on
            the background thread only.
        depth: items decoded ahead (at least 1).

    Yields:
        The items in order. An exception of the iteration is raised here; closing this generator early (or an
        exception in the caller) stops the thread at its next item.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        """Put ``item`` unless the consumer has gone; True when it was put."""
        while not stop.is_set():
            try:
                ready.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(_DONE)
        except BaseException as error:  # handed to the consumer, which raises it
            offer(_Failure(error))

    thread = threading.Thread(target=produce, name="motiontransfer-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


class BackgroundWriter(Generic[T]):
    """Call ``write(item)`` for each :meth:`put` item on a background thread, in order.

    Use as a context manager: leaving the block normally waits until every item is written (and raises the thread's
    error, if any); leaving it with an exception drops the items not yet written and stops the thread, so that the
    caller can discard its output.

    Args:
        write: the consumer (e.g. a :class:`~motiontransfer.video.io.VideoWriter`'s ``write``).
        depth: items queued before :meth:`put` waits (at least 1).
    """

    def __init__(self, write: Callable[[T], None], depth: int = 4) -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self._write = write
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._consume, name="motiontransfer-writer", daemon=True)

    def __enter__(self) -> BackgroundWriter[T]:
        self._thread.start()
        return self

    def _consume(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            if item is _DONE:
                return
            try:
                self._write(item)  # type: ignore[arg-type]
            except BaseException as error:  # raised again in the caller
                self._error = error
                return

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def put(self, item: T) -> None:
        """Queue ``item`` for writing (waits while the queue is full); raises the thread's error if it failed."""
        while True:
            self._raise_error()
            if not self._thread.is_alive():
                raise RuntimeError("the background writer has stopped")
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is None:
            while self._thread.is_alive():
                try:
                    self._queue.put(_DONE, timeout=_POLL_SECONDS)
                    break
                except queue.Full:
                    continue
            self._thread.join()
            self._raise_error()
        else:
            self._stop.set()
            self._thread.join()


class Prefetching(Generic[S, T]):
    """A re-iterable view of ``items`` whose every iteration runs on a background thread (:func:`prefetch`), so
    that a video can still be read twice (best-frame search) and each pass decodes ahead.

    Args:
        items: a re-iterable source (a :class:`~motiontransfer.video.io.VideoReader`'s ``decoded()``, a list, ...).
        depth: items decoded ahead.
        convert: applied to each item on the iterating thread (None: items as they are). Torch work belongs here,
            not in ``items``: torch run on a second thread starts a second pool of OpenMP threads next to the
            model's, which costs far more than the work itself on a small machine (vox-256, 48 frames, 2 cores:
            converting the frames on the decoding thread made the whole animation 1.7 s slower, 17.5 s vs 15.8).

    Use with a reader: ``Prefetching(reader.decoded(), convert=reader.convert)``.
    """

    def __init__(self, items: Iterable[S], depth: int = 4, convert: Callable[[S], T] | None = None) -> None:
        self.items = items
        self.depth = depth
        self.convert = convert

    def __iter__(self) -> Iterator[T]:
        items = prefetch(self.items, self.depth)
        return items if self.convert is None else _mapped(self.convert, items)  # type: ignore[return-value]


def _mapped(convert: Callable[[S], T], items: Generator[S, None, None]) -> Iterator[T]:
    """``convert`` over ``items``; closing this generator closes ``items`` (which stops the prefetching thread)."""
    try:
        for item in items:
            yield convert(item)
    finally:
        items.close()
