"""The embedded default job behind ``motiontransfer demo``: needs no data and no weights.

It renders a procedural test identity A and a driving clip of identity B, and writes the ground truth of
"A performing B's motion" (relative transfer) side by side with the driving clip: the task every model in
this library learns, with the answer it should give.
"""

from __future__ import annotations

from pathlib import Path

from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec
from motiontransfer.data.synthetic.writer import write_preview
from motiontransfer.data.video_io import VideoWriter
from motiontransfer.visualize import draw_keypoints, image_grid


def run_demo(out: Path, family: str = "faces", size: int = 128, frames: int = 64, seed: int = 0) -> list[Path]:
    """Write ``out/demo.mp4`` (source | driving | ground-truth animation, with GT keypoints in a second row)
    and ``out/demo-preview.png`` (sample frames of the family).

    Returns:
        The written paths.
    """
    spec = ProceduralSpec(family=family, size=size, videos=2, frames=frames, seed=seed, split="test")
    source = ProceduralSource(spec)
    source_frame = source.frame(0, 0)
    driving = source.frames(1)
    animated = source.transfer_frames(0, 1)
    with VideoWriter(out / "demo.mp4", fps=source.family.fps) as writer:
        for drive, target in zip(driving, animated, strict=True):
            top = [source_frame.image, drive.image, target.image]
            bottom = [draw_keypoints(f.image, f.keypoints, f.visibility) for f in (source_frame, drive, target)]
            writer.write(image_grid([top, bottom]))
        video_path = writer.close()
    gallery = ProceduralSource(ProceduralSpec(family=family, size=size, videos=4, frames=frames, seed=seed))
    preview_path = write_preview(gallery, out / "demo-preview.png")
    return [video_path, preview_path]
