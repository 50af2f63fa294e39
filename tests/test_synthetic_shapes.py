"""The moving-shapes family: protocol, determinism, keypoints on the shapes, occlusion, smooth and
distinguishable actions, resolution independence, relative transfer and speed."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from motiontransfer.config import to_dict
from motiontransfer.data.synthetic.base import Family
from motiontransfer.data.synthetic.render import Background, Texture
from motiontransfer.data.synthetic.shapes import (
    ACTION_NAMES,
    KEYPOINT_NAMES,
    MAX_SHAPES,
    POSE_NAMES,
    SHAPE_KINDS,
    ShapeFamily,
    ShapesIdentity,
    ShapeSpec,
)
from synthetic_helpers import nearest_centroid_predictions

FAMILY = ShapeFamily()
GREY = (0.5, 0.5, 0.5)
COLORS = ((0.9, 0.1, 0.1), (0.1, 0.8, 0.2), (0.1, 0.2, 0.9), (0.9, 0.8, 0.1))
CORNERS = ((-0.5, -0.5), (0.5, -0.5), (-0.5, 0.5), (0.5, 0.5))


def solid_scene(kinds: tuple[str, ...] = ("circle", "box", "triangle", "hexagon"), count: int = MAX_SHAPES,
                angle: float = 0.3) -> ShapesIdentity:
    """Solid, well separated shapes (one per image quadrant) on a flat grey background."""
    shapes = tuple(
        ShapeSpec(kind, 0.3, 0.7, Texture("solid", color), x, y, angle)
        for kind, color, (x, y) in zip(kinds, COLORS, CORNERS, strict=True)
    )
    return ShapesIdentity(shapes, count, Background(GREY, GREY, 0.0))


def pixel(image: np.ndarray, point: np.ndarray) -> np.ndarray:
    return image[round(float(point[1])), round(float(point[0]))]


def trajectory(seed: int, action: str, frames: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (T, K, 2) and visibility (T, K) of a random scene performing a random ``action``."""
    rng = np.random.default_rng(seed)
    identity = FAMILY.sample_identity(rng)
    motion = FAMILY.sample_motion(rng, action)
    out = [FAMILY.keypoints(identity, FAMILY.pose(motion, t / FAMILY.fps), size) for t in range(frames)]
    return np.array([k for k, _ in out], dtype=np.float64), np.array([v for _, v in out])


def test_protocol_and_layout() -> None:
    assert isinstance(FAMILY, Family)
    assert FAMILY.name == "shapes" and FAMILY.fps == 25.0
    assert len(KEYPOINT_NAMES) == 2 * MAX_SHAPES and len(set(KEYPOINT_NAMES)) == len(KEYPOINT_NAMES)
    assert len(ACTION_NAMES) >= 3 and FAMILY.action_names == ACTION_NAMES
    rng = np.random.default_rng(0)
    identity, motion = FAMILY.sample_identity(rng), FAMILY.sample_motion(rng, "spin")
    assert motion.action == "spin" and 2 <= identity.count <= MAX_SHAPES
    pose = FAMILY.pose(motion, 0.5)
    assert pose.shape == (len(POSE_NAMES),) and pose.dtype == np.float64
    frame = FAMILY.render(identity, pose, 40)
    assert frame.image.shape == (40, 40, 3) and frame.image.dtype == np.float32
    assert frame.keypoints.shape == (2 * MAX_SHAPES, 2) and frame.visibility.dtype == bool
    assert not frame.visibility[2 * identity.count:].any()  # absent slots are hidden
    with pytest.raises(ValueError, match="action"):
        FAMILY.sample_motion(rng, "jump")
    with pytest.raises(ValueError, match="pose"):
        FAMILY.render(identity, np.zeros(5), 32)


def test_determinism_and_json_sidecars() -> None:
    a, b = np.random.default_rng(4), np.random.default_rng(4)
    ia, ib = FAMILY.sample_identity(a), FAMILY.sample_identity(b)
    ma, mb = FAMILY.sample_motion(a), FAMILY.sample_motion(b)
    assert ia == ib and ma == mb
    fa, fb = FAMILY.render(ia, FAMILY.pose(ma, 0.9), 64), FAMILY.render(ib, FAMILY.pose(mb, 0.9), 64)
    assert np.array_equal(fa.image, fb.image) and np.array_equal(fa.keypoints, fb.keypoints)
    for value in (ia, ma):
        assert json.loads(json.dumps(dataclasses.asdict(value))) == to_dict(value)
    keypoints, visibility = FAMILY.keypoints(ia, FAMILY.pose(ma, 0.9), 64)
    np.testing.assert_array_equal(keypoints, fa.keypoints)
    np.testing.assert_array_equal(visibility, fa.visibility)
    scenes = [FAMILY.sample_identity(np.random.default_rng(i)) for i in range(20)]
    kinds = {shape.kind for scene in scenes for shape in scene.shapes}
    assert kinds == set(SHAPE_KINDS)


@pytest.mark.parametrize("kinds", [("circle", "box", "triangle", "hexagon"),
                                   ("pentagon", "circle", "box", "box")])
def test_keypoints_sit_on_the_shapes(kinds: tuple[str, ...]) -> None:
    identity = solid_scene(kinds)
    frame = FAMILY.render(identity, np.zeros(len(POSE_NAMES)), 128)
    assert frame.visibility.all()
    for i, color in enumerate(COLORS):
        center, edge = frame.keypoints[2 * i], frame.keypoints[2 * i + 1]
        np.testing.assert_allclose(pixel(frame.image, center), color, atol=1e-4)
        direction = (edge - center) / np.linalg.norm(edge - center)
        np.testing.assert_allclose(pixel(frame.image, edge - 2.5 * direction), color, atol=1e-4)
        np.testing.assert_allclose(pixel(frame.image, edge + 2.5 * direction), GREY, atol=1e-4)
        assert np.arctan2(direction[1], direction[0]) == pytest.approx(0.3, abs=1e-4)


def test_rotation_and_scale_move_the_edge_keypoint() -> None:
    identity = solid_scene()
    rest = FAMILY.keypoints(identity, np.zeros(len(POSE_NAMES)), 64)[0]
    pose = np.zeros(len(POSE_NAMES))
    pose[2], pose[3] = 0.5, np.log(1.5)  # slot 0: turn by 0.5 rad and grow by 1.5
    pose[4:6] = (0.1, -0.2)  # slot 1: move
    moved = FAMILY.keypoints(identity, pose, 64)[0]
    before, after = rest[1] - rest[0], moved[1] - moved[0]
    np.testing.assert_allclose(moved[0], rest[0], atol=1e-5)
    assert np.linalg.norm(after) == pytest.approx(1.5 * np.linalg.norm(before), rel=1e-4)
    turn = np.arctan2(after[1], after[0]) - np.arctan2(before[1], before[0])
    assert turn == pytest.approx(0.5, abs=1e-4)
    shift = [[3.15, -6.3], [3.15, -6.3]]  # 31.5 px per world unit at 64 px
    np.testing.assert_allclose(moved[2:4] - rest[2:4], shift, atol=1e-4)


def test_front_shapes_hide_keypoints_behind_them_and_absent_shapes_are_hidden() -> None:
    identity = solid_scene(count=3)
    shapes = list(identity.shapes)
    shapes[1] = dataclasses.replace(shapes[1], x=shapes[0].x, y=shapes[0].y, radius=0.45)
    stacked = dataclasses.replace(identity, shapes=tuple(shapes))
    covered = FAMILY.render(stacked, np.zeros(len(POSE_NAMES)), 64)
    assert not covered.visibility[0] and not covered.visibility[1]
    assert covered.visibility[2:6].all() and not covered.visibility[6:].any()
    gone = np.zeros(len(POSE_NAMES))
    gone[0] = 3.0
    assert not FAMILY.render(identity, gone, 64).visibility[:2].any()


def test_motion_is_smooth() -> None:
    for a, action in enumerate(ACTION_NAMES):
        for s in range(3):
            kp, _ = trajectory(300 + 10 * a + s, action, 75)
            assert np.linalg.norm(np.diff(kp, axis=0), axis=-1).max() < 3.0, action


def _features(kp: np.ndarray) -> np.ndarray:
    """Descriptors of a keypoint trajectory (T, 2 * MAX_SHAPES, 2), averaged over slots: travel, roundness
    and verticality of the centre path, skew of its height, rotation speed and size change."""
    centers, edges = kp[:, 0::2], kp[:, 1::2]
    radius = edges - centers
    angle = np.unwrap(np.arctan2(radius[..., 1], radius[..., 0]), axis=0)
    rows = []
    for i in range(MAX_SHAPES):
        path = centers[:, i] - centers[:, i].mean(0)
        spread = np.linalg.eigvalsh(np.cov(path.T)) + 1e-9
        skew = np.mean(path[:, 1] ** 3) / (path[:, 1].std() ** 3 + 1e-9)
        rows.append([np.log(spread.sum()), spread[0] / spread[1], path[:, 1].var() / spread.sum(), skew,
                     np.log(np.abs(np.diff(angle[:, i])).mean() + 1e-4),
                     np.log(np.log(np.linalg.norm(radius[:, i], axis=1)).std() + 1e-4)])
    return np.mean(rows, axis=0)


@pytest.mark.slow
def test_actions_are_distinguishable_by_their_keypoint_trajectories() -> None:
    def dataset(seeds: range) -> tuple[np.ndarray, np.ndarray]:
        features, labels = [], []
        for a, action in enumerate(ACTION_NAMES):
            for seed in seeds:
                features.append(_features(trajectory(1000 * a + seed, action, 100)[0]))
                labels.append(a)
        return np.array(features), np.array(labels)

    train_x, train_y = dataset(range(10))
    test_x, test_y = dataset(range(100, 106))
    predicted = nearest_centroid_predictions(train_x, train_y, test_x, len(ACTION_NAMES))
    assert (predicted == test_y).mean() >= 0.85
    for a in range(len(ACTION_NAMES)):
        assert (predicted[test_y == a] == a).mean() >= 0.6, ACTION_NAMES[a]
