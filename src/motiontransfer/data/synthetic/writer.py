"""Write procedural videos to disk in FOMM's dataset layout, with ground-truth sidecars, and previews.

Layout written by :func:`write_dataset`::

    OUT/train/<name>.mp4   (or OUT/train/<name>/000000.png ... with format="png")
    OUT/train/<name>.json  sidecar: identity, motion, action label, keypoint names, per-frame keypoints
                           (pixels) and visibility
    OUT/test/...           same, with identities disjoint from train

``<name>`` is ``id<identity>#<action>#<index>``, so FOMM's ``id_sampling`` (video id = name before '#')
groups the clips of one identity.

Each split folder is written under a hidden temporary name and moved into place when complete, so an interrupted
run leaves no partial split. A dataset is never mixed with an earlier one: a root whose splits already hold videos
is refused unless ``overwrite`` asks to replace them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm import tqdm

from motiontransfer.data.synthetic.base import RenderedFrame
from motiontransfer.data.synthetic.source import MAX_FRAME_SIZE, ProceduralSource, ProceduralSpec
from motiontransfer.errors import ArgumentError, OutputFileError, Term
from motiontransfer.fileio import atomic_output, atomic_write_text, describe_kind, not_a_folder
from motiontransfer.video.io import IMAGE_SUFFIXES, VIDEO_SUFFIXES, VideoWriter, write_image
from motiontransfer.visualize import draw_keypoints, image_grid

VideoFormat = Literal["mp4", "png"]
SPLITS = ("train", "test")


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
                  clips_per_identity: int = 1, progress: bool = True, overwrite: bool = False) -> dict[str, int]:
    """Write ``videos`` training and ``test_videos`` (default ``max(1, videos // 5)``) test videos.

    Args:
        overwrite: replace the splits of an earlier dataset in ``out`` (else such a root is refused).

    Returns:
        Number of videos written per split, e.g. ``{"train": 100, "test": 20}``.

    Raises:
        UserError: a bad format or size, or an ``out`` that already holds a dataset (see
            :func:`check_dataset_root`); checked before anything is written.
        OutputFileError: ``out`` cannot be written (a parent that is a file, no space left, ...).
    """
    if video_format not in ("mp4", "png"):
        raise ArgumentError(Term("video_format"), f" must be mp4 or png, got {video_format!r}")
    check_frame_size(size)
    test_videos = max(1, videos // 5) if test_videos is None else test_videos
    counts = {"train": videos, "test": test_videos}
    sources = {split: ProceduralSource(ProceduralSpec(family=family, size=size, videos=count, frames=frames,
                                                      seed=seed, clips_per_identity=clips_per_identity,
                                                      split=split))  # type: ignore[arg-type]
               for split, count in counts.items() if count > 0}
    old_videos = check_dataset_root(Path(out), overwrite)
    with contextlib.ExitStack() as splits, \
            tqdm(total=sum(counts.values()), desc=f"make-dataset {family}", unit="video", disable=not progress) as bar:
        for split, source in sources.items():
            folder = splits.enter_context(atomic_output(Path(out) / split, directory=True))
            for index in range(len(source)):
                write_video_with_sidecar(source, index, folder, video_format)
                bar.update(1)
    for split in SPLITS:
        if split not in sources and old_videos.get(split):  # replaced by an empty split
            _remove_split(Path(out) / split)
    return counts


def check_frame_size(size: int) -> int:
    """``size`` when it is a frame side :func:`write_dataset` can render (16 to :data:`MAX_FRAME_SIZE`).

    Raises:
        UserError: a size out of that range (checked before anything is written).
    """
    if not 16 <= size <= MAX_FRAME_SIZE:
        gib = size * size * 3 * 4 / 2**30
        detail = f"; one {size}x{size} frame alone needs {gib:.1f} GiB" if gib >= 1 else ""
        raise ArgumentError(Term("size"), f" must be between 16 and {MAX_FRAME_SIZE} pixels, got {size}{detail}")
    return size


def check_dataset_root(out: Path, overwrite: bool) -> dict[str, int]:
    """Check that a dataset can be written to ``out`` and return the number of videos each split already holds.

    Raises:
        OutputFileError: ``out``, a parent or a split is not a folder.
        UserError: the splits already hold videos and ``overwrite`` is False (a new dataset would mix with them,
            with colliding names), or a split holds files that are not dataset videos (never replaced).
    """
    blocker = not_a_folder(out / "train")
    if blocker == out:
        raise OutputFileError(out, f"is {describe_kind(out)}, not a folder")
    if blocker is not None:
        raise OutputFileError(out, f"cannot be written: {blocker} is {describe_kind(blocker)}, not a folder")
    found: dict[str, int] = {}
    for split in SPLITS:
        folder = out / split
        if not folder.exists():
            continue
        if not folder.is_dir():
            raise OutputFileError(folder, f"is {describe_kind(folder)}, not a split folder")
        found[split], foreign = _dataset_entries(folder)
        if foreign:
            raise ArgumentError(f"{folder} holds files that are not dataset videos (e.g. {foreign[0]}); refusing to "
                                "write a dataset there: choose a new ", Term("out_dir"), " folder")
    total = sum(found.values())
    if total and not overwrite:
        raise ArgumentError(f"{out} already holds a dataset ({total} videos in {'/, '.join(found)}/); pass ",
                            Term("overwrite"), " to replace it, or choose a new ", Term("out_dir"), " folder (new "
                            "videos would mix with the old ones)")
    return found


def _dataset_entries(folder: Path) -> tuple[int, list[str]]:
    """(videos in ``folder``, sorted names of entries that are neither videos, frame folders nor sidecars)."""
    videos, foreign = 0, []
    with os.scandir(folder) as entries:
        for entry in entries:
            suffix = Path(entry.name).suffix.lower()
            is_file = entry.is_file(follow_symlinks=False)
            is_video_folder = entry.is_dir(follow_symlinks=False) and _is_frame_folder(Path(entry.path))
            if (is_file and suffix in VIDEO_SUFFIXES) or is_video_folder:
                videos += 1
            elif not (is_file and suffix == ".json"):
                foreign.append(entry.name)
    return videos, sorted(foreign)


def _is_frame_folder(folder: Path) -> bool:
    """Whether ``folder`` holds nothing but image files."""
    with os.scandir(folder) as entries:
        return all(entry.is_file(follow_symlinks=False) and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES
                   for entry in entries)


def _remove_split(folder: Path) -> None:
    """Delete a split folder of an earlier dataset (checked by :func:`check_dataset_root` to hold only videos)."""
    shutil.rmtree(folder)


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
