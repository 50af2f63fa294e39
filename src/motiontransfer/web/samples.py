"""The page's sample inputs, rendered at start-up from the procedural data (nothing to ship or download).

Sources are the first frames of procedural test identities, driving clips the motion of another test identity of
the same family: the pairs the bundled models (trained on other identities) animate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec
from motiontransfer.video.io import VideoWriter, write_image

SAMPLE_FAMILIES = ("faces", "puppets")
SOURCE_SIZE = 256
DRIVING_SIZE = 128
DRIVING_FRAMES = 64
SAMPLE_FPS = 25.0
_SOURCE_IDENTITIES = (0, 2)  # test videos whose first frames are the sample sources
_DRIVING_VIDEO = 1  # the test video whose motion drives


@dataclass(frozen=True)
class Samples:
    """The sample files: source images and driving clips."""

    sources: list[Path]
    drivings: list[Path]


def write_samples(folder: Path, families: tuple[str, ...] = SAMPLE_FAMILIES,
                  driving_frames: int = DRIVING_FRAMES) -> Samples:
    """Render the sample inputs into ``folder`` (created): ``<family>-<k>.png`` and ``<family>-motion.mp4``.

    Args:
        folder: where to write them (each file atomically).
        families: procedural families to draw from.
        driving_frames: length of each driving clip.

    Returns:
        The files written, sources and driving clips in family order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    sources: list[Path] = []
    drivings: list[Path] = []
    for family in families:
        stem = family.removesuffix("s")  # faces -> face-1.png, face-motion.mp4
        stills = ProceduralSource(ProceduralSpec(family=family, size=SOURCE_SIZE, videos=max(_SOURCE_IDENTITIES) + 1,
                                                 frames=1, split="test"))
        for number, index in enumerate(_SOURCE_IDENTITIES, start=1):
            sources.append(write_image(folder / f"{stem}-{number}.png", stills.frame(index, 0).tensor()))
        clips = ProceduralSource(ProceduralSpec(family=family, size=DRIVING_SIZE, videos=_DRIVING_VIDEO + 1,
                                                frames=driving_frames, split="test"))
        with VideoWriter(folder / f"{stem}-motion.mp4", fps=SAMPLE_FPS) as writer:
            for frame in clips.frames(_DRIVING_VIDEO):
                writer.write(frame.tensor())
        drivings.append(writer.path)
    return Samples(sources, drivings)
