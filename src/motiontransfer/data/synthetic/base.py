"""The contract every procedural family (puppets, faces, shapes) fulfils, and the frame type they produce.

A family separates *who* is in a video (an identity: proportions, colours, textures, background) from *how* it
moves (a motion: an action class and its per-video speed, amplitude and phase). A motion evaluated at a time
gives a *pose*, a flat float vector whose meaning the family defines. Rendering (identity, pose) gives a frame
with ground-truth keypoints. Because motion is a pure function of time, any frame can be rendered without
rendering the ones before it, which is what on-the-fly training needs.

Cross-identity ground truth: identity A performing the motion of video B, as relative transfer defines it, is
``render(A, family.relative_pose(pose_A(0), pose_B(0), pose_B(t)))``. For A == B this is A's own video.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

Array = np.ndarray


@dataclass(frozen=True)
class RenderedFrame:
    """One rendered frame with its ground truth.

    Attributes:
        image: (size, size, 3) float32 RGB in [0, 1].
        keypoints: (K, 2) float32 pixel coordinates (x, y); pixel centres are integers, so a keypoint at
            ``(j, i)`` is at the centre of ``image[i, j]``.
        visibility: (K,) bool, False where the keypoint is covered by a part in front of it or off the image.
    """

    image: Array
    keypoints: Array
    visibility: Array

    def tensor(self) -> torch.Tensor:
        """The image as the (3, size, size) float32 tensor in [0, 1] that models and metrics take."""
        return torch.from_numpy(np.ascontiguousarray(self.image.transpose(2, 0, 1))).float()


@runtime_checkable
class Family(Protocol):
    """A kind of procedural object. Implementations are stateless apart from constants.

    Attributes:
        name: registry name (``puppets``, ``faces``, ``shapes``).
        keypoint_names: names of the K ground-truth keypoints, in output order.
        action_names: the action classes a motion can be drawn from.
        fps: frame rate used to turn frame indices into time.
    """

    name: str
    keypoint_names: tuple[str, ...]
    action_names: tuple[str, ...]
    fps: float

    def sample_identity(self, rng: np.random.Generator) -> Any:
        """Draw an identity (a frozen dataclass of JSON-able values) from ``rng``."""
        ...

    def sample_motion(self, rng: np.random.Generator, action: str | None = None, motion: str = "default") -> Any:
        """Draw a motion (a frozen dataclass with at least an ``action: str`` field); ``action`` forces the
        class, otherwise it is drawn uniformly. ``motion`` is the motion setting (``default``, or ``large`` where
        the family offers it: the same draws from ``rng``, so the same action and phases, with wider motion)."""
        ...

    def pose(self, motion: Any, time: float) -> Array:
        """The pose (flat float64 vector) of ``motion`` at ``time`` seconds; smooth in time."""
        ...

    def relative_pose(self, source_first: Array, driving_first: Array, driving_now: Array) -> Array:
        """Relative transfer in pose space: the source's first pose moved by the driving motion since its first
        frame. Must return ``driving_now`` (up to float rounding) when ``source_first == driving_first``."""
        ...

    def render(self, identity: Any, pose: Array, size: int) -> RenderedFrame:
        """Render ``identity`` in ``pose`` as a ``size`` x ``size`` frame with ground truth."""
        ...


def additive_relative_pose(source_first: Array, driving_first: Array, driving_now: Array) -> Array:
    """The default relative transfer: ``source_first + (driving_now - driving_first)`` element-wise."""
    return np.asarray(source_first) + (np.asarray(driving_now) - np.asarray(driving_first))
