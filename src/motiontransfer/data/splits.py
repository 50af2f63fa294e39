"""The videos of a dataset split, whatever the data: a FOMM-layout folder of video files or frame folders, or a
``procedural:`` spec. Each video is a name, a frame rate, a factory of fresh frame streams and (procedural data)
its action, so that evaluation, training stages and inference jobs read any data the same way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from motiontransfer.data.datasets import FramesDataset
from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec, is_procedural
from motiontransfer.video.io import DEFAULT_FPS, iter_frames, probe


@dataclass(frozen=True)
class SplitVideo:
    """A video of a split: its name, frame rate, a factory of fresh (3, H, W) frame streams and its action class
    (procedural videos; None for video files, which carry no labels)."""

    name: str
    fps: float
    frames: Callable[[], Iterator[torch.Tensor]]
    action: str | None = None


def split_test_videos(data: str | Path, size: int, num_videos: int | None = None) -> list[SplitVideo]:
    """The test split of ``data`` (a FOMM-layout folder or a ``procedural:`` spec) at frame size ``size``:
    name, frame rate and a frame-stream factory per video (the first ``num_videos`` when given)."""
    return split_videos(data, size, "test", num_videos)


def split_videos(data: str | Path, size: int, split: Literal["train", "test"],
                 num_videos: int | None = None) -> list[SplitVideo]:
    """Like :func:`split_test_videos` for either split (``train``: the videos a model was trained on)."""
    if is_procedural(str(data)):
        spec = ProceduralSpec.split_at(str(data), split, size)
        source = ProceduralSource(spec)
        count = len(source) if num_videos is None else min(num_videos, len(source))
        return [_procedural_video(source, index) for index in range(count)]
    dataset = FramesDataset(data, split=split, frame_size=size)
    count = dataset.num_videos if num_videos is None else min(num_videos, dataset.num_videos)
    return [_file_video(dataset.video_path(index), size) for index in range(count)]


def _procedural_video(source: ProceduralSource, index: int) -> SplitVideo:
    video = source.video(index)

    def frames() -> Iterator[torch.Tensor]:
        return (frame.tensor() for frame in source.frames(index))

    return SplitVideo(video.name, video.fps, frames, video.action)


def _file_video(path: Path, size: int) -> SplitVideo:
    return SplitVideo(path.stem if path.is_file() else path.name, probe(path).fps or DEFAULT_FPS,
                      lambda: iter_frames(path, size=size))
