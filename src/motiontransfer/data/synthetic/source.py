"""Procedural video collections: deterministic from (seed, split, index), rendered on demand.

A :class:`ProceduralSource` is an indexable collection of videos of one family. Video ``i`` shows identity
``i // clips_per_identity`` performing its own motion ``i``; both are drawn from random generators keyed on
``(seed, split, index)``, so train and test identities are disjoint and any frame can be rendered alone.
The spec string ``procedural:faces:size=64,videos=200,frames=64,seed=0`` names such a source wherever a data
folder is accepted; ``motion=large`` (faces and puppets) gives the same identities and actions with wider motion.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from motiontransfer.config import to_dict
from motiontransfer.data.synthetic.base import Family, RenderedFrame
from motiontransfer.data.synthetic.faces import FaceFamily
from motiontransfer.data.synthetic.puppets import PuppetFamily
from motiontransfer.data.synthetic.shapes import ShapeFamily
from motiontransfer.errors import UserError

PREFIX = "procedural:"
FAMILIES: dict[str, type[Family]] = {"puppets": PuppetFamily, "faces": FaceFamily, "shapes": ShapeFamily}
"""The procedural data families (renderers) by name."""
MOTIONS: dict[str, tuple[str, ...]] = {
    "puppets": ("default", "large"),
    "faces": ("default", "large"),
    "shapes": ("default",),
}
"""The motion settings each family offers (the spec's ``motion`` key); ``default`` is the original data."""
MAX_FRAME_SIZE = 1024
"""The largest frame side a procedural source renders (frames are drawn in memory at float precision)."""
_SPLIT_KEYS = {"train": 0, "test": 1}
_TEXT_KEYS = ("split", "motion")
Split = Literal["train", "test"]


def get_family(name: str) -> Family:
    """Instantiate the procedural family called ``name`` (one of :data:`FAMILIES`)."""
    if name not in FAMILIES:
        raise UserError(f"unknown procedural family {name!r}; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[name]()


@dataclass(frozen=True)
class ProceduralSpec:
    """What a ``procedural:`` data string names.

    Attributes:
        family: ``puppets``, ``faces`` or ``shapes``.
        size: frame side in pixels.
        videos: number of videos in the split.
        frames: frames per video.
        seed: master seed; with the split and index it fixes every identity and motion.
        clips_per_identity: consecutive videos sharing one identity (with different motions).
        split: ``train`` or ``test``; the two draw disjoint identities.
        motion: ``default`` or ``large`` (see :data:`MOTIONS`): ``large`` draws the same identities, actions and
            phases with wider motion (larger head turns, roll, scale change and translation for faces; wider limb
            motion, more body translation and scale change for puppets). ``default`` is the original data and
            is left out of the spec string.
    """

    family: str
    size: int = 64
    videos: int = 200
    frames: int = 64
    seed: int = 0
    clips_per_identity: int = 1
    split: Split = "train"
    motion: str = "default"

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise UserError(f"unknown procedural family {self.family!r}; choose one of {', '.join(FAMILIES)}")
        for key in ("size", "videos", "frames", "clips_per_identity"):
            if getattr(self, key) < 1:
                raise UserError(f"procedural data: {key} must be a positive integer, got {getattr(self, key)}")
        if not 16 <= self.size <= MAX_FRAME_SIZE:
            raise UserError(f"procedural data: size must be between 16 and {MAX_FRAME_SIZE} pixels, got {self.size} "
                            "(frames are drawn in memory at float precision)")
        if self.split not in _SPLIT_KEYS:
            raise UserError(f"procedural data: split must be train or test, got {self.split!r}")
        if self.motion not in MOTIONS[self.family]:
            known = sorted({motion for motions in MOTIONS.values() for motion in motions})
            if self.motion in known:
                raise UserError(f"procedural data: motion={self.motion} is not available for {self.family}; it "
                                f"offers {', '.join(MOTIONS[self.family])}")
            raise UserError(f"procedural data: motion must be one of {', '.join(known)}, got {self.motion!r}")

    @classmethod
    def parse(cls, text: str, **overrides: Any) -> ProceduralSpec:
        """Parse ``procedural:FAMILY[:key=value,key=value...]``; ``overrides`` replace parsed values.

        Example: ``ProceduralSpec.parse("procedural:faces:size=128,videos=50", split="test")``.
        """
        if not text.startswith(PREFIX):
            raise UserError(f"not a procedural data spec (expected {PREFIX}FAMILY[:key=value,...]): {text!r}")
        family, _, options = text[len(PREFIX):].partition(":")
        values: dict[str, Any] = {"family": family}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for item in filter(None, (part.strip() for part in options.split(","))):
            key, sep, raw = item.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in fields or key == "family":
                valid = ", ".join(k for k in fields if k != "family")
                raise UserError(f"procedural data: bad option {item!r} in {text!r}; options: {valid}")
            if key in _TEXT_KEYS:
                values[key] = raw.strip()
                continue
            try:
                values[key] = int(raw)
            except ValueError:
                raise UserError(f"procedural data: {key} must be an integer, got {raw!r}") from None
        values.update(overrides)
        return cls(**values)

    @classmethod
    def test_split(cls, text: str, size: int) -> ProceduralSpec:
        """The test split of the spec ``text``, at frame size ``size`` unless ``text`` sets its own."""
        return cls.split_at(text, "test", size)

    @classmethod
    def split_at(cls, text: str, split: Split, size: int) -> ProceduralSpec:
        """The ``split`` (train or test) of the spec ``text``, at frame size ``size`` unless ``text`` sets its
        own."""
        spec = cls.parse(text, split=split)
        return spec if "size=" in text else dataclasses.replace(spec, size=size)

    def __str__(self) -> str:
        motion = "" if self.motion == "default" else f",motion={self.motion}"
        return (f"{PREFIX}{self.family}:size={self.size},videos={self.videos},frames={self.frames},"
                f"seed={self.seed},clips_per_identity={self.clips_per_identity},split={self.split}{motion}")


def is_procedural(data: str) -> bool:
    """True when ``data`` is a ``procedural:`` spec rather than a folder path."""
    return str(data).startswith(PREFIX)


@dataclass(frozen=True)
class ProceduralVideo:
    """The parameters of one procedural video (everything needed to render any of its frames)."""

    index: int
    identity_index: int
    identity: Any
    motion: Any
    action: str
    num_frames: int
    fps: float

    @property
    def name(self) -> str:
        """File-system name in FOMM's convention: the id (before '#') names the identity."""
        return f"id{self.identity_index:05d}#{self.action}#{self.index:05d}"


class ProceduralSource:
    """An indexable, deterministic collection of procedural videos with ground truth.

    Args:
        spec: a :class:`ProceduralSpec` or a ``procedural:`` string.
    """

    def __init__(self, spec: ProceduralSpec | str) -> None:
        self.spec = ProceduralSpec.parse(spec) if isinstance(spec, str) else spec
        self.family: Family = get_family(self.spec.family)

    def __len__(self) -> int:
        return self.spec.videos

    @property
    def size(self) -> int:
        return self.spec.size

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        return self.family.keypoint_names

    def _rng(self, index: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.spec.seed, _SPLIT_KEYS[self.spec.split], index, stream])

    def _check(self, index: int) -> int:
        if not 0 <= index < len(self):
            raise IndexError(f"video index {index} out of range for {len(self)} videos")
        return index

    def video(self, index: int) -> ProceduralVideo:
        """The identity and motion of video ``index`` (cheap: nothing is rendered)."""
        self._check(index)
        identity_index = index // self.spec.clips_per_identity
        identity = self.family.sample_identity(self._rng(identity_index, 0))
        motion = self.family.sample_motion(self._rng(index, 1), motion=self.spec.motion)
        return ProceduralVideo(index, identity_index, identity, motion, str(motion.action),
                               self.spec.frames, float(self.family.fps))

    def pose(self, video: ProceduralVideo, frame: int) -> np.ndarray:
        """Pose vector of ``video`` at frame number ``frame``."""
        return self.family.pose(video.motion, frame / video.fps)

    def frame(self, index: int, frame: int) -> RenderedFrame:
        """Render frame ``frame`` of video ``index``."""
        video = self.video(index)
        return self.family.render(video.identity, self.pose(video, frame), self.spec.size)

    def frames(self, index: int) -> Iterator[RenderedFrame]:
        """Render all frames of video ``index`` lazily, in order."""
        video = self.video(index)
        for t in range(video.num_frames):
            yield self.family.render(video.identity, self.pose(video, t), self.spec.size)

    def transfer_frames(self, identity_index: int, motion_index: int) -> Iterator[RenderedFrame]:
        """Ground truth for cross-identity animation: video ``identity_index``'s subject performing video
        ``motion_index``'s motion, relative to each video's first frame (see ``Family.relative_pose``).

        With ``identity_index == motion_index`` this reproduces that video.
        """
        source = self.video(identity_index)
        driving = self.video(motion_index)
        source_first = self.pose(source, 0)
        driving_first = self.pose(driving, 0)
        for t in range(driving.num_frames):
            pose = self.family.relative_pose(source_first, driving_first, self.pose(driving, t))
            yield self.family.render(source.identity, pose, self.spec.size)

    def metadata(self, index: int) -> dict[str, Any]:
        """JSON-able description of video ``index`` without per-frame data (identity, motion, labels)."""
        video = self.video(index)
        return {
            "family": self.spec.family,
            "spec": str(self.spec),
            "index": index,
            "name": video.name,
            "identity_index": video.identity_index,
            "action": video.action,
            "action_index": self.family.action_names.index(video.action),
            "num_frames": video.num_frames,
            "fps": video.fps,
            "size": self.spec.size,
            "keypoint_names": list(self.family.keypoint_names),
            "identity": to_dict(video.identity),
            "motion": to_dict(video.motion),
        }

