"""The ``motion=large`` setting of the procedural faces and puppets: ``default`` is the original data, ``large``
keeps the identities and actions, moves the keypoints at least 1.8 times as far from the first frame, keeps them in
the frame and drives cross-identity transfer."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from motiontransfer.data.synthetic import FAMILIES, ProceduralSource, ProceduralSpec, get_family

FAMILIES_WITH_LARGE = ("faces", "puppets")
MARGIN_PX = 2.0
"""How far inside the image (pixel centres 0..size-1) the keypoints of the large-motion test videos stay."""


def keypoint_clip(source: ProceduralSource, index: int) -> np.ndarray:
    """(T, K, 2) ground-truth keypoints (pixels) of video ``index``, without rendering."""
    video = source.video(index)
    points = [source.family.keypoints(video.identity, source.pose(video, t), source.size)
              for t in range(video.num_frames)]
    return np.array([p[0] if isinstance(p, tuple) else p for p in points], dtype=np.float64)


def mean_displacement(clips: list[np.ndarray]) -> float:
    """Mean distance (pixels) of every keypoint from its place in frame 0, over all frames of all clips."""
    return float(np.mean([np.linalg.norm(clip - clip[:1], axis=-1).mean() for clip in clips]))


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_default_motion_is_the_original_data(name: str) -> None:
    plain = ProceduralSource(f"procedural:{name}:size=32,videos=3,frames=4,seed=3")
    keyed = ProceduralSource(f"procedural:{name}:size=32,videos=3,frames=4,seed=3,motion=default")
    assert str(keyed.spec) == str(plain.spec)
    for index in range(3):
        assert keyed.video(index) == plain.video(index)
        assert keyed.metadata(index) == plain.metadata(index)
        for a, b in zip(keyed.frames(index), plain.frames(index), strict=True):
            assert np.array_equal(a.image, b.image) and np.array_equal(a.keypoints, b.keypoints)
            assert np.array_equal(a.visibility, b.visibility)
    family = get_family(name)
    assert family.sample_motion(np.random.default_rng(4)) == family.sample_motion(np.random.default_rng(4),
                                                                                 motion="default")


@pytest.mark.parametrize("name", FAMILIES_WITH_LARGE)
def test_large_motion_keeps_identities_and_actions(name: str) -> None:
    spec = ProceduralSpec(name, size=32, videos=4, frames=3, seed=1, clips_per_identity=2, split="test")
    default, large = ProceduralSource(spec), ProceduralSource(dataclasses.replace(spec, motion="large"))
    for index in range(4):
        a, b = default.video(index), large.video(index)
        assert a.identity == b.identity and a.action == b.action and a.name == b.name
        assert a.motion != b.motion
    assert large.metadata(0)["spec"].endswith(",motion=large")
    with pytest.raises(ValueError, match="motion"):
        get_family(name).sample_motion(np.random.default_rng(0), motion="huge")


@pytest.mark.parametrize("name", FAMILIES_WITH_LARGE)
def test_large_motion_moves_keypoints_further_and_keeps_them_in_the_frame(name: str) -> None:
    spec = ProceduralSpec(name, size=64, videos=16, frames=64, seed=0, split="test")
    default = [keypoint_clip(ProceduralSource(spec), i) for i in range(16)]
    large = [keypoint_clip(ProceduralSource(dataclasses.replace(spec, motion="large")), i) for i in range(16)]
    assert mean_displacement(large) > 1.8 * mean_displacement(default)
    points = np.stack(large)
    assert points.min() >= MARGIN_PX and points.max() <= spec.size - 1 - MARGIN_PX


@pytest.mark.parametrize("name", FAMILIES_WITH_LARGE)
def test_large_motion_keeps_the_keypoints_visible(name: str) -> None:
    spec = ProceduralSpec(name, size=32, videos=4, frames=16, seed=0, split="test")
    visible = {motion: np.mean([f.visibility.mean() for i in range(4)
                                for f in ProceduralSource(dataclasses.replace(spec, motion=motion)).frames(i)])
               for motion in ("default", "large")}
    assert visible["large"] >= visible["default"] - 0.02


@pytest.mark.parametrize("name", FAMILIES_WITH_LARGE)
def test_transfer_frames_use_the_large_motion(name: str) -> None:
    spec = ProceduralSpec(name, size=32, videos=4, frames=32, seed=0, split="test")
    large = ProceduralSource(dataclasses.replace(spec, motion="large"))
    for own, transferred in zip(large.frames(1), large.transfer_frames(1, 1), strict=True):
        np.testing.assert_allclose(transferred.image, own.image, atol=1e-5)
    moved = {}
    for motion in ("default", "large"):
        source = ProceduralSource(dataclasses.replace(spec, motion=motion))
        first = [next(source.transfer_frames(a, a + 1)) for a in (0, 2)]
        for frame, own in zip(first, (source.frame(0, 0), source.frame(2, 0)), strict=True):
            np.testing.assert_allclose(frame.image, own.image, atol=1e-5)  # identity A, A's own first frame
        clips = [np.stack([f.keypoints for f in source.transfer_frames(a, a + 1)]) for a in (0, 2)]
        moved[motion] = mean_displacement(clips)
    assert moved["large"] > moved["default"]
