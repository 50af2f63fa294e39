"""Write procedural videos to disk in FOMM's dataset layout, with ground-truth sidecars, and previews.

Layout written by :func:`write_dataset`::

    OUT/train/<name>.mp4   (or OUT/train/<name>/000000.png ... with format="png")
    OUT/train/<name>.json  sidecar: identity, motion, action label, keypoint names, per-frame keypoints
                           (pixels) and visibility
    OUT/test/...           same, with identities disjoint from train

``<name>`` is ``id<identity>#<action>#<index>``, so FOMM's ``id_sampling`` (video id = name before '#')
groups the clips of one identity.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm import tqdm

from motiontransfer.data.synthetic.base import RenderedFrame
from motiontransfer.data.synthetic.source import ProceduralSource, ProceduralSpec
from motiontransfer.data.video_io import VideoWriter, write_image
from motiontransfer.errors import UserError
from motiontransfer.fileio import atomic_write_text
from motiontransfer.visualize import draw_keypoints, image_grid

VideoFormat = Literal["mp4", "png"]


def write_video_with_sidecar(source: ProceduralSource, index: int, folder: Path, video_format: VideoFormat,
                             frames: Iterable[RenderedFrame] | None = None) -> Path:
    """Render video ``index`` of ``source`` into ``folder`` and write its JSON sidecar next to it.

    Args:
        frames: frames to write instead of the source's own (used for transfer ground truth); default renders
            video ``index``.

    Returns:
        The path of the written video (file or frame folder).
    """
    meta = source.metadata(index)
    target = folder / (meta["name"] + (".mp4" if video_format == "mp4" else ""))
    keypoints: list[Any] = []
    visibility: list[Any] = []
    with VideoWriter(target, fps=meta["fps"]) as writer:
        for frame in source.frames(index) if frames is None else frames:
            writer.write(frame.image)
            keypoints.append(np.round(frame.keypoints, 3).tolist())
            visibility.append(frame.visibility.astype(bool).tolist())
    meta.update(keypoints=keypoints, visibility=visibility)
    atomic_write_text(folder / (meta["name"] + ".json"), json.dumps(meta))
    return target


def write_dataset(family: str, out: Path, videos: int, frames: int, size: int, seed: int,
                  test_videos: int | None = None, video_format: VideoFormat = "mp4",
                  clips_per_identity: int = 1, progress: bool = True) -> dict[str, int]:
    """Write ``videos`` training and ``test_videos`` (default ``max(1, videos // 5)``) test videos.

    Returns:
        Number of videos written per split, e.g. ``{"train": 100, "test": 20}``.
    """
    if video_format not in ("mp4", "png"):
        raise UserError(f"--format must be mp4 or png, got {video_format!r}")
    test_videos = max(1, videos // 5) if test_videos is None else test_videos
    counts = {"train": videos, "test": test_videos}
    total = sum(counts.values())
    with tqdm(total=total, desc=f"make-dataset {family}", unit="video", disable=not progress) as bar:
        for split, count in counts.items():
            if count == 0:
                continue
            spec = ProceduralSpec(family=family, size=size, videos=count, frames=frames, seed=seed,
                                  clips_per_identity=clips_per_identity, split=split)  # type: ignore[arg-type]
            source = ProceduralSource(spec)
            folder = out / split
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                write_video_with_sidecar(source, index, folder, video_format)
                bar.update(1)
    return counts


def preview_grid(source: ProceduralSource, videos: int = 4, frames_per_video: int = 6) -> np.ndarray:
    """A grid image: one row per video, ``frames_per_video`` evenly spaced frames with GT keypoints drawn.

    Returns:
        (H, W, 3) uint8 image.
    """
    rows = []
    for index in range(min(videos, len(source))):
        video = source.video(index)
        times = np.linspace(0, video.num_frames - 1, frames_per_video).round().astype(int)
        row = []
        for t in times:
            frame = source.family.render(video.identity, source.pose(video, int(t)), source.size)
            row.append(draw_keypoints(frame.image, frame.keypoints, frame.visibility))
        rows.append(row)
    return image_grid(rows)


def write_preview(source: ProceduralSource, path: Path, videos: int = 4, frames_per_video: int = 6) -> Path:
    """Write :func:`preview_grid` to ``path`` (PNG or JPEG by suffix) atomically and return the path."""
    return write_image(path, preview_grid(source, videos, frames_per_video))
