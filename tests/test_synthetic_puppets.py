"""Tests for the articulated-puppet procedural family (motiontransfer.data.synthetic.puppets)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from motiontransfer.data.synthetic.base import Family, RenderedFrame
from motiontransfer.data.synthetic.puppets import (
    POSE_NAMES,
    PuppetFamily,
    PuppetIdentity,
    PuppetMotion,
)

FAMILY = PuppetFamily()
KP = {name: i for i, name in enumerate(FAMILY.keypoint_names)}
PI = {name: i for i, name in enumerate(POSE_NAMES)}


def _identity(seed: int) -> PuppetIdentity:
    return FAMILY.sample_identity(np.random.default_rng([11, seed]))


def _motion(seed: int, action: str | None = None) -> PuppetMotion:
    return FAMILY.sample_motion(np.random.default_rng([12, seed]), action)


def _centred_pose(identity: PuppetIdentity, **angles: float) -> np.ndarray:
    """A rest pose with the pelvis at x = 0 and the given joint angles (by pose name)."""
    pose = np.zeros(len(POSE_NAMES))
    pose[PI["root_x"]] = -identity.base_x
    for side in "lr":
        pose[PI[f"{side}_hip"]] = 0.06
        pose[PI[f"{side}_knee"]] = -0.06
    for name, value in angles.items():
        pose[PI[name]] = value
    return pose


def _pixel(frame: RenderedFrame, name: str) -> np.ndarray:
    x, y = np.rint(frame.keypoints[KP[name]]).astype(int)
    return frame.image[y, x]


def _far_near(identity: PuppetIdentity) -> tuple[str, str]:
    return ("r" if identity.near_side == "l" else "l"), identity.near_side


def test_protocol_conformance() -> None:
    assert isinstance(FAMILY, Family)
    assert FAMILY.name == "puppets"
    assert FAMILY.fps == 25.0
    assert len(FAMILY.keypoint_names) >= 13
    assert len(set(FAMILY.keypoint_names)) == len(FAMILY.keypoint_names)
    assert len(FAMILY.action_names) >= 5


def test_determinism() -> None:
    a = FAMILY.sample_identity(np.random.default_rng(7))
    b = FAMILY.sample_identity(np.random.default_rng(7))
    ma = FAMILY.sample_motion(np.random.default_rng(8))
    mb = FAMILY.sample_motion(np.random.default_rng(8))
    assert a == b and ma == mb
    assert a != FAMILY.sample_identity(np.random.default_rng(9))
    for t in (0.0, 0.52, 1.7):
        fa = FAMILY.render(a, FAMILY.pose(ma, t), 64)
        fb = FAMILY.render(b, FAMILY.pose(mb, t), 64)
        np.testing.assert_array_equal(fa.image, fb.image)
        np.testing.assert_array_equal(fa.keypoints, fb.keypoints)
        np.testing.assert_array_equal(fa.visibility, fb.visibility)


def test_frame_shapes_and_types() -> None:
    identity, motion = _identity(0), _motion(0)
    pose = FAMILY.pose(motion, 0.3)
    assert pose.shape == (len(POSE_NAMES),) and pose.dtype == np.float64
    for size in (64, 128, 256):
        frame = FAMILY.render(identity, pose, size)
        assert frame.image.shape == (size, size, 3) and frame.image.dtype == np.float32
        assert frame.image.min() >= 0.0 and frame.image.max() <= 1.0
        assert frame.keypoints.shape == (len(FAMILY.keypoint_names), 2)
        assert frame.keypoints.dtype == np.float32
        assert frame.visibility.shape == (len(FAMILY.keypoint_names),) and frame.visibility.dtype == bool


def test_identity_and_motion_are_json_able() -> None:
    identity, motion = _identity(1), _motion(1)
    text = json.dumps({"identity": dataclasses.asdict(identity), "motion": dataclasses.asdict(motion)})
    restored = PuppetIdentity.from_dict(json.loads(text)["identity"])
    assert restored == identity
    assert hash(restored) == hash(identity)


def test_sample_motion_action() -> None:
    rng = np.random.default_rng(0)
    for action in FAMILY.action_names:
        assert FAMILY.sample_motion(rng, action).action == action
    drawn = {FAMILY.sample_motion(rng).action for _ in range(200)}
    assert drawn == set(FAMILY.action_names)
    with pytest.raises(ValueError):
        FAMILY.sample_motion(rng, "moonwalk")


@pytest.mark.parametrize("size", [64, 128])
def test_keypoints_land_on_drawn_parts(size: int) -> None:
    """In a T-pose, hand / foot / head centre pixels have the solid skin / shoe colour."""
    for seed in range(6):
        identity = _identity(seed)
        pose = _centred_pose(identity, l_shoulder=np.pi / 2, r_shoulder=np.pi / 2)
        frame = FAMILY.render(identity, pose, size)
        expected = {"l_hand": identity.skin, "r_hand": identity.skin, "head": identity.skin,
                    "l_foot": identity.shoe, "r_foot": identity.shoe}
        for name, color in expected.items():
            assert frame.visibility[KP[name]], (seed, name)
            np.testing.assert_allclose(_pixel(frame, name), color, atol=1e-3, err_msg=f"{seed} {name}")
        assert frame.visibility.all(), seed


def _folded_pose(identity: PuppetIdentity, size: int) -> np.ndarray:
    """Both arms folded across the body, at the joint angles that bring the hands nearest the torso centre."""
    best, best_offset = None, np.inf
    for shoulder in np.linspace(-0.2, 1.0, 13):
        for elbow in np.linspace(-0.3, -2.8, 26):
            angles = {"shoulder": shoulder, "elbow": elbow}
            pose = _centred_pose(identity, **{f"{s}_{j}": v for s in "lr" for j, v in angles.items()})
            keypoints = FAMILY.keypoints(identity, pose, size)
            centre = 0.5 * (keypoints[KP["pelvis"]] + keypoints[KP["neck"]])
            offset = np.abs(keypoints[KP["l_hand"]] - centre).sum()
            if offset < best_offset:
                best, best_offset = pose, offset
    assert best is not None
    return best


def test_visibility_follows_depth_order() -> None:
    """Folding both arms across the body hides the far hand behind the torso, not the near one."""
    for seed in range(6):
        identity = _identity(seed)
        far, near = _far_near(identity)
        frame = FAMILY.render(identity, _folded_pose(identity, 128), 128)
        pelvis, neck = frame.keypoints[KP["pelvis"]], frame.keypoints[KP["neck"]]
        far_hand, near_hand = frame.keypoints[KP[f"{far}_hand"]], frame.keypoints[KP[f"{near}_hand"]]
        # the far hand lies over the torso: between pelvis and neck, within 3 px of the body axis
        assert min(pelvis[1], neck[1]) < far_hand[1] < max(pelvis[1], neck[1])
        assert abs(far_hand[0] - pelvis[0]) < 3.0
        assert not frame.visibility[KP[f"{far}_hand"]], seed
        assert frame.visibility[KP[f"{near}_hand"]], seed
        np.testing.assert_allclose(_pixel(frame, f"{near}_hand"), identity.skin, atol=1e-3)
        assert np.abs(near_hand - far_hand).max() < 3.0  # hands overlap: the near one is drawn on top
        assert frame.visibility[KP["head"]] and frame.visibility[KP[f"{near}_shoulder"]]


def test_off_image_keypoints_are_invisible() -> None:
    identity = _identity(2)
    gone = FAMILY.render(identity, _centred_pose(identity, root_x=3.0), 64)
    assert not gone.visibility.any()
    assert (gone.keypoints[:, 0] > 63).all()
    # half out on the right: keypoints with x beyond the last pixel are invisible, the others may be visible
    half = FAMILY.render(identity, _centred_pose(identity, root_x=1.0, l_shoulder=1.5, r_shoulder=1.5), 64)
    outside = half.keypoints[:, 0] > 63.5
    assert outside.any() and (~outside).any()
    assert not half.visibility[outside].any()
    assert half.visibility[~outside].any()


def test_motion_is_smooth() -> None:
    """At 64 px and 25 fps no keypoint moves more than 3 px between consecutive frames."""
    for a, action in enumerate(FAMILY.action_names):
        for seed in range(3):
            identity = dataclasses.replace(_identity(seed), scale=1.5)  # the largest figures move fastest
            motion = _motion(100 * a + seed, action)
            track = np.stack([FAMILY.keypoints(identity, FAMILY.pose(motion, t / FAMILY.fps), 64)
                              for t in range(75)])
            steps = np.linalg.norm(np.diff(track, axis=0), axis=-1)
            assert steps.max() < 3.0, (action, seed, steps.max())
            accel = np.linalg.norm(np.diff(track, 2, axis=0), axis=-1)
            assert accel.max() < 1.0, (action, seed, accel.max())


def _trajectory_features(identity: PuppetIdentity, motion: PuppetMotion) -> np.ndarray:
    """Side-invariant statistics of 2 s of keypoint trajectories, normalised by torso length."""
    track = np.stack([FAMILY.keypoints(identity, FAMILY.pose(motion, t / 12.5), 64) for t in range(25)])
    pelvis = track[:, KP["pelvis"]].mean(axis=0)
    unit = np.linalg.norm(track[:, KP["neck"]] - track[:, KP["pelvis"]], axis=-1).mean()
    rel = (track - pelvis) / unit
    stats = np.concatenate([rel.mean(axis=0), rel.std(axis=0)], axis=-1)  # (K, 4): mean x, y, std x, y
    features = [stats[KP[name]] for name in ("head", "neck", "pelvis")]
    for joint in ("shoulder", "elbow", "hand", "hip", "knee", "foot"):
        left, right = stats[KP[f"l_{joint}"]].copy(), stats[KP[f"r_{joint}"]].copy()
        right[0] = -right[0]  # mirror so that x is "outwards" on both sides
        features += [np.minimum(left, right), np.maximum(left, right)]
    return np.concatenate(features)


def test_actions_are_distinguishable() -> None:
    """Nearest-centroid on 2 s of keypoint trajectories classifies held-out videos of every action."""
    actions = FAMILY.action_names
    train, test = 8, 4

    def features(a: int, i: int) -> np.ndarray:
        return _trajectory_features(_identity(1000 + 37 * a + i), _motion(2000 + 37 * a + i, actions[a]))

    centroids = np.stack([np.mean([features(a, i) for i in range(train)], axis=0)
                          for a in range(len(actions))])
    for a, action in enumerate(actions):
        for i in range(train, train + test):
            distances = np.linalg.norm(centroids - features(a, i), axis=-1)
            assert actions[int(distances.argmin())] == action, (action, i, distances.round(2))
    gaps = np.linalg.norm(centroids[:, None] - centroids[None], axis=-1)
    assert gaps[~np.eye(len(actions), dtype=bool)].min() > 0.3


def test_keypoints_consistent_across_sizes() -> None:
    identity, motion = _identity(3), _motion(3)
    for t in (0.0, 0.8):
        pose = FAMILY.pose(motion, t)
        k64 = FAMILY.render(identity, pose, 64).keypoints
        k128 = FAMILY.render(identity, pose, 128).keypoints
        k256 = FAMILY.render(identity, pose, 256).keypoints
        np.testing.assert_allclose(k128 / 127, k64 / 63, atol=1e-5)
        np.testing.assert_allclose(k256 / 255, k64 / 63, atol=1e-5)
        np.testing.assert_allclose(FAMILY.keypoints(identity, pose, 64), k64, atol=1e-5)


def test_relative_pose_identity_and_self_transfer() -> None:
    p, q = FAMILY.pose(_motion(4), 0.0), FAMILY.pose(_motion(5), 1.3)
    np.testing.assert_allclose(FAMILY.relative_pose(p, p, q), q, atol=1e-12)
    identity, motion = _identity(4), _motion(6)
    first = FAMILY.pose(motion, 0.0)
    for frame_index in (0, 7, 31):
        now = FAMILY.pose(motion, frame_index / FAMILY.fps)
        own = FAMILY.render(identity, now, 64)
        transferred = FAMILY.render(identity, FAMILY.relative_pose(first, first, now), 64)
        assert np.allclose(own.image, transferred.image, atol=1e-5)
        assert np.allclose(own.keypoints, transferred.keypoints, atol=1e-5)


def test_relative_transfer_scales_multiplicatively() -> None:
    source, driving = np.zeros(len(POSE_NAMES)), np.zeros(len(POSE_NAMES))
    source[PI["log_scale"]], driving[PI["log_scale"]] = np.log(0.9), np.log(1.2)
    now = driving.copy()
    now[PI["log_scale"]] = np.log(1.2 * 1.1)
    moved = FAMILY.relative_pose(source, driving, now)
    assert np.exp(moved[PI["log_scale"]]) == pytest.approx(0.9 * 1.1)
