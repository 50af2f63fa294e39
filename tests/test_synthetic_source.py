"""Procedural sources: spec strings, determinism, splits, cross-identity ground truth."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from motiontransfer.data.synthetic import FAMILIES, Family, ProceduralSource, ProceduralSpec, get_family
from motiontransfer.errors import UserError


def test_spec_parsing_and_round_trip() -> None:
    spec = ProceduralSpec.parse("procedural:faces:size=128,videos=50,seed=3,clips-per-identity=2")
    assert (spec.family, spec.size, spec.videos, spec.seed, spec.clips_per_identity) == ("faces", 128, 50, 3, 2)
    assert spec.frames == ProceduralSpec("faces").frames
    assert ProceduralSpec.parse(str(spec)) == spec
    assert ProceduralSpec.parse("procedural:puppets", split="test").split == "test"


def test_motion_key_parses_round_trips_and_is_left_out_when_default() -> None:
    spec = ProceduralSpec.parse("procedural:puppets:videos=5,motion=large")
    assert (spec.family, spec.videos, spec.motion) == ("puppets", 5, "large")
    assert str(spec).endswith(",motion=large") and ProceduralSpec.parse(str(spec)) == spec
    default = ProceduralSpec.parse("procedural:faces:motion=default")
    assert default == ProceduralSpec("faces") and "motion" not in str(default)
    assert ProceduralSpec.test_split("procedural:faces:motion=large", 48).motion == "large"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("procedural:dragons", "dragons"),
        ("procedural:faces:size=abc", "size"),
        ("procedural:faces:colour=3", "colour"),
        ("procedural:faces:size", "size"),
        ("procedural:faces:videos=0", "videos"),
        ("procedural:faces:size=8", "size"),
        ("procedural:faces:split=val", "split"),
        ("procedural:faces:motion=huge", "motion must be one of default, large"),
        ("procedural:shapes:motion=large", "not available for shapes"),
        ("faces", "procedural"),
    ],
)
def test_bad_specs_are_user_errors(text: str, needle: str) -> None:
    with pytest.raises(UserError, match=needle):
        ProceduralSpec.parse(text)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_fulfils_the_protocol(name: str) -> None:
    family = get_family(name)
    assert isinstance(family, Family)
    assert len(family.action_names) >= 3 and len(set(family.keypoint_names)) == len(family.keypoint_names)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_source_is_deterministic_and_splits_are_disjoint(name: str) -> None:
    spec = ProceduralSpec(name, size=32, videos=4, frames=6, seed=11)
    a, b = ProceduralSource(spec), ProceduralSource(spec)
    for index in range(len(a)):
        assert a.video(index) == b.video(index)
    fa, fb = a.frame(2, 5), b.frame(2, 5)
    assert np.array_equal(fa.image, fb.image) and np.array_equal(fa.keypoints, fb.keypoints)
    test = ProceduralSource(dataclasses.replace(spec, split="test"))
    train_ids = {repr(a.video(i).identity) for i in range(len(a))}
    test_ids = {repr(test.video(i).identity) for i in range(len(test))}
    assert not train_ids & test_ids
    other_seed = ProceduralSource(dataclasses.replace(spec, seed=12))
    assert repr(other_seed.video(0).identity) not in train_ids


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_frames_have_ground_truth_of_the_right_shape(name: str) -> None:
    source = ProceduralSource(ProceduralSpec(name, size=48, videos=2, frames=3))
    frames = list(source.frames(1))
    assert len(frames) == 3
    k = len(source.keypoint_names)
    for frame in frames:
        assert frame.image.shape == (48, 48, 3) and frame.image.dtype == np.float32
        assert frame.image.min() >= 0.0 and frame.image.max() <= 1.0
        assert frame.keypoints.shape == (k, 2) and frame.visibility.shape == (k,)
        assert frame.visibility.dtype == bool


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_transfer_of_a_video_onto_itself_reproduces_it(name: str) -> None:
    source = ProceduralSource(ProceduralSpec(name, size=32, videos=3, frames=5, seed=5))
    for own, transferred in zip(source.frames(1), source.transfer_frames(1, 1), strict=True):
        np.testing.assert_allclose(transferred.image, own.image, atol=1e-5)
        np.testing.assert_allclose(transferred.keypoints, own.keypoints, atol=1e-4)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_cross_identity_transfer_keeps_identity_and_follows_driving_motion(name: str) -> None:
    source = ProceduralSource(ProceduralSpec(name, size=64, videos=3, frames=12, seed=2))
    a_first = source.frame(0, 0)
    b_frames = list(source.frames(1))
    transferred = list(source.transfer_frames(0, 1))
    # Frame 0 of the transfer is A's own first frame: the driving motion has not moved yet.
    np.testing.assert_allclose(transferred[0].image, a_first.image, atol=1e-5)
    # Later frames: A's keypoints move (approximately) as B's do, when the motion is a pure translation
    # or small; at least the direction of the mean keypoint displacement agrees.
    b_shift = b_frames[-1].keypoints.mean(0) - b_frames[0].keypoints.mean(0)
    t_shift = transferred[-1].keypoints.mean(0) - transferred[0].keypoints.mean(0)
    if np.linalg.norm(b_shift) > 1.0:
        assert float(np.dot(b_shift, t_shift)) > 0


def test_clips_per_identity_share_the_identity() -> None:
    source = ProceduralSource(ProceduralSpec("puppets", size=32, videos=4, frames=2, clips_per_identity=2))
    v0, v1, v2 = source.video(0), source.video(1), source.video(2)
    assert v0.identity == v1.identity and v0.identity != v2.identity
    assert v0.name.split("#")[0] == v1.name.split("#")[0] != v2.name.split("#")[0]


def test_index_out_of_range() -> None:
    source = ProceduralSource(ProceduralSpec("shapes", size=32, videos=2, frames=2))
    with pytest.raises(IndexError):
        source.video(2)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_relative_pose_is_additive(name: str) -> None:
    family = get_family(name)
    rng = np.random.default_rng(21)
    p, q, r = (family.pose(family.sample_motion(rng), t) for t in (0.0, 1.0, 2.0))
    np.testing.assert_allclose(family.relative_pose(p, p, q), q, atol=1e-12)
    np.testing.assert_allclose(family.relative_pose(r, p, q) - r, q - p, atol=1e-12)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_keypoints_are_resolution_independent(name: str) -> None:
    family = get_family(name)
    rng = np.random.default_rng(12)
    identity, motion = family.sample_identity(rng), family.sample_motion(rng)
    for t in (0.0, 0.7, 2.1):
        pose = family.pose(motion, t)
        small, large, huge = (family.render(identity, pose, size) for size in (64, 128, 256))
        np.testing.assert_allclose(large.keypoints / 127, small.keypoints / 63, atol=1e-5)
        np.testing.assert_allclose(huge.keypoints / 255, small.keypoints / 63, atol=1e-5)
        np.testing.assert_array_equal(large.visibility, small.visibility)
        shrunk = large.image.reshape(64, 2, 64, 2, 3).mean((1, 3))
        assert np.abs(shrunk - small.image).mean() < 0.05


def test_test_split_takes_the_model_size_unless_the_spec_sets_one_and_frames_become_tensors() -> None:
    spec = ProceduralSpec.test_split("procedural:faces:videos=3", 48)
    assert (spec.split, spec.size, spec.videos) == ("test", 48, 3)
    assert ProceduralSpec.test_split("procedural:faces:size=32", 48).size == 32
    frame = ProceduralSource(ProceduralSpec.test_split("procedural:shapes:videos=1,frames=2", 24)).frame(0, 1)
    tensor = frame.tensor()
    assert tensor.shape == (3, 24, 24) and tensor.dtype == torch.float32
    assert np.array_equal(tensor.permute(1, 2, 0).numpy(), frame.image)


@pytest.mark.parametrize("size", [8, 1025, 100000])
def test_frame_sizes_outside_16_to_1024_are_refused_before_any_rendering(size: int) -> None:
    with pytest.raises(UserError, match="between 16 and 1024"):
        ProceduralSpec.parse(f"procedural:faces:size={size}")
    assert ProceduralSpec.parse("procedural:faces:size=1024").size == 1024
