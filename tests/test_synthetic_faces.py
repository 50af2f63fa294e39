"""The cartoon-face family: protocol, determinism, keypoints on the drawn features, expressions, pseudo-yaw,
smooth and distinguishable actions, resolution independence, relative transfer and speed."""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pytest

from motiontransfer.config import to_dict
from motiontransfer.data.synthetic.base import Family
from motiontransfer.data.synthetic.faces import (
    ACTION_NAMES,
    KEYPOINT_NAMES,
    POSE_NAMES,
    FaceFamily,
    FaceIdentity,
)
from motiontransfer.data.synthetic.render import Background, Texture
from synthetic_helpers import nearest_centroid_predictions

FAMILY = FaceFamily()
KP = {name: i for i, name in enumerate(KEYPOINT_NAMES)}
POSE = {name: i for i, name in enumerate(POSE_NAMES)}
BLUE = (0.1, 0.15, 0.85)


def neutral(**values: float) -> np.ndarray:
    """A neutral pose (eyes open, everything else zero) with some entries set."""
    pose = np.zeros(len(POSE_NAMES))
    pose[POSE["eyelid"]] = 1.0
    for name, value in values.items():
        pose[POSE[name]] = value
    return pose


def plain(seed: int, **changes: object) -> FaceIdentity:
    """A random identity on a flat blue background with solid skin and no blush (for colour checks)."""
    identity = FAMILY.sample_identity(np.random.default_rng(seed))
    skin = Texture("solid", identity.skin.color_a)
    flat = Background(BLUE, BLUE, 0.0)
    defaults: dict[str, object] = {"skin": skin, "cheek_opacity": 0.0, "background": flat}
    defaults.update(changes)
    return dataclasses.replace(identity, **defaults)


def pixel(image: np.ndarray, point: np.ndarray) -> np.ndarray:
    return image[round(float(point[1])), round(float(point[0]))]


def trajectory(seed: int, action: str, frames: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (T, K, 2) and visibility (T, K) of a random identity performing a random ``action``."""
    rng = np.random.default_rng(seed)
    identity = FAMILY.sample_identity(rng)
    motion = FAMILY.sample_motion(rng, action)
    out = [FAMILY.keypoints(identity, FAMILY.pose(motion, t / FAMILY.fps), size) for t in range(frames)]
    return np.array([k for k, _ in out], dtype=np.float64), np.array([v for _, v in out])


# ----------------------------------------------------------------------------------------------- protocol
def test_protocol_and_layout() -> None:
    assert isinstance(FAMILY, Family)
    assert FAMILY.name == "faces" and FAMILY.fps == 25.0
    assert len(FAMILY.keypoint_names) >= 10 and len(set(FAMILY.keypoint_names)) == len(FAMILY.keypoint_names)
    assert len(FAMILY.action_names) >= 5 and FAMILY.action_names == ACTION_NAMES
    rng = np.random.default_rng(0)
    identity, motion = FAMILY.sample_identity(rng), FAMILY.sample_motion(rng, "talk")
    assert motion.action == "talk"
    pose = FAMILY.pose(motion, 0.3)
    assert pose.shape == (len(POSE_NAMES),) and pose.dtype == np.float64
    frame = FAMILY.render(identity, pose, 48)
    assert frame.image.shape == (48, 48, 3) and frame.image.dtype == np.float32
    assert frame.image.min() >= 0.0 and frame.image.max() <= 1.0
    assert frame.keypoints.shape == (len(KEYPOINT_NAMES), 2) and frame.keypoints.dtype == np.float32
    assert frame.visibility.shape == (len(KEYPOINT_NAMES),) and frame.visibility.dtype == bool
    with pytest.raises(ValueError, match="action"):
        FAMILY.sample_motion(rng, "dance")
    with pytest.raises(ValueError, match="pose"):
        FAMILY.render(identity, np.zeros(3), 32)


def test_determinism_and_json_sidecars() -> None:
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    ia, ib = FAMILY.sample_identity(a), FAMILY.sample_identity(b)
    ma, mb = FAMILY.sample_motion(a), FAMILY.sample_motion(b)
    assert ia == ib and ma == mb
    assert FAMILY.sample_identity(np.random.default_rng(8)) != ia
    fa, fb = FAMILY.render(ia, FAMILY.pose(ma, 1.3), 64), FAMILY.render(ib, FAMILY.pose(mb, 1.3), 64)
    assert np.array_equal(fa.image, fb.image) and np.array_equal(fa.keypoints, fb.keypoints)
    for value in (ia, ma):
        assert json.loads(json.dumps(dataclasses.asdict(value))) == to_dict(value)
    keypoints, visibility = FAMILY.keypoints(ia, FAMILY.pose(ma, 1.3), 64)
    np.testing.assert_array_equal(keypoints, fa.keypoints)
    np.testing.assert_array_equal(visibility, fa.visibility)


def test_random_identities_render_with_all_keypoints_visible_at_rest() -> None:
    rng = np.random.default_rng(3)
    styles = set()
    for _ in range(16):
        identity = FAMILY.sample_identity(rng)
        styles.add(identity.hair_style)
        frame = FAMILY.render(identity, neutral(), 64)
        assert frame.visibility.all()
        assert np.all((frame.keypoints >= 0) & (frame.keypoints <= 63))
        assert frame.image.std() > 0.05
    assert len(styles) >= 3


# ------------------------------------------------------------------------------------- keypoints on features
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_keypoints_sit_on_the_drawn_features(seed: int) -> None:
    identity = plain(seed, line_color=(0.55, 0.2, 0.6))
    frame = FAMILY.render(identity, neutral(), 256)
    image, kp = frame.image, frame.keypoints
    skin = np.asarray(identity.skin.color_a, dtype=np.float32)

    def near(name: str, color: tuple[float, float, float], tol: float = 0.04) -> None:
        np.testing.assert_allclose(pixel(image, kp[KP[name]]), color, atol=tol, err_msg=name)

    near("nose_tip", identity.nose_color)
    for side in ("left", "right"):
        near(f"{side}_eye", (0.03, 0.03, 0.04))  # the pupil, gaze is centred
        near(f"{side}_pupil", (0.03, 0.03, 0.04))
        near(f"{side}_brow", identity.brow_color)
        near(f"mouth_{side}", identity.lip_color, 0.15)  # the thin mouth corner is anti-aliased
        near(f"{side}_eye_outer", (0.55, 0.2, 0.6), 0.15)  # on the eye outline
    near("upper_lip", identity.lip_color)
    near("lower_lip", identity.lip_color)
    near("chin", skin)
    assert np.abs(pixel(image, kp[KP["chin"]] + (0.0, 25.0)) - skin).max() > 0.05  # below the chin: no skin


def test_keypoint_order_is_left_to_right_and_top_to_bottom() -> None:
    kp = FAMILY.render(plain(5), neutral(), 128).keypoints
    x, y = kp[:, 0], kp[:, 1]
    pairs = (("left_eye", "right_eye"), ("left_eye_outer", "left_eye"), ("right_eye", "right_eye_outer"),
             ("left_brow", "right_brow"), ("mouth_left", "mouth_right"))
    for left, right in pairs:
        assert x[KP[left]] < x[KP[right]]
    order = ("left_brow", "left_eye", "nose_tip", "upper_lip", "chin")
    assert all(y[KP[a]] < y[KP[b]] for a, b in itertools.pairwise(order))


# ------------------------------------------------------------------------------------------------ expressions
def test_blinking_closes_the_eyes_and_hides_the_pupils() -> None:
    identity = plain(2, line_color=(0.55, 0.2, 0.6))
    opened = FAMILY.render(identity, neutral(), 256)
    closed = FAMILY.render(identity, neutral(eyelid=0.0), 256)
    half = FAMILY.render(identity, neutral(eyelid=0.5), 256)
    np.testing.assert_allclose(closed.keypoints, opened.keypoints, atol=1e-5)  # eyelids move no keypoint
    radius = int(np.ceil(identity.eye_width * identity.scale * 127.5)) + 3

    def dark_pixels(image: np.ndarray) -> int:
        total = 0
        for name in ("left_eye", "right_eye"):
            x, y = np.round(opened.keypoints[KP[name]]).astype(int)
            patch = image[y - radius: y + radius + 1, x - radius: x + radius + 1]
            total += int((np.abs(patch - 0.035).max(-1) < 0.05).sum())
        return total

    assert dark_pixels(opened.image) > 10
    assert dark_pixels(half.image) > 0
    assert dark_pixels(closed.image) == 0
    assert np.abs(closed.image - opened.image).max() > 0.5
    pupils = [KP["left_pupil"], KP["right_pupil"]]
    assert opened.visibility[pupils].all() and not closed.visibility[pupils].any()
    assert closed.visibility[[KP["left_eye"], KP["right_eye"]]].all()


def test_opening_the_mouth_moves_the_lips_apart() -> None:
    identity = plain(4)
    gaps = []
    for amount in (0.0, 0.25, 0.5, 1.0, 2.0):
        frame = FAMILY.render(identity, neutral(mouth_open=amount), 128)
        upper, lower = frame.keypoints[KP["upper_lip"]], frame.keypoints[KP["lower_lip"]]
        gaps.append(float(lower[1] - upper[1]))
        assert abs(float(lower[0] - upper[0])) < 1e-3
        if amount >= 0.5:
            inside = pixel(frame.image, (upper + 3 * lower) / 4)  # below the teeth
            assert np.abs(inside - np.asarray(identity.skin.color_a)).max() > 0.2
    assert gaps[0] == pytest.approx(0.0, abs=1e-4)
    assert gaps[1] < gaps[2] < gaps[3] and gaps[3] > 5.0
    assert gaps[4] == pytest.approx(gaps[3])  # mouth opening is clipped to [0, 1] when rendering


def test_smile_lifts_the_corners_and_brows_and_gaze_move() -> None:
    identity = plain(6)

    def corner_lift(smile: float) -> float:
        kp = FAMILY.render(identity, neutral(smile=smile), 128).keypoints
        corners = (kp[KP["mouth_left"], 1] + kp[KP["mouth_right"], 1]) / 2
        return float(kp[KP["upper_lip"], 1] - corners)

    assert corner_lift(1.0) > corner_lift(0.0) + 2.0 > corner_lift(-1.0) + 4.0
    low = FAMILY.keypoints(identity, neutral(brow=-1.0), 128)[0]
    high = FAMILY.keypoints(identity, neutral(brow=1.0), 128)[0]
    brows = [KP["left_brow"], KP["right_brow"]]
    assert np.all(high[brows, 1] < low[brows, 1] - 2)
    right = FAMILY.keypoints(identity, neutral(gaze_x=1.0), 128)[0]
    centre = FAMILY.keypoints(identity, neutral(), 128)[0]
    shift = right[[KP["left_pupil"], KP["right_pupil"]]] - centre[[KP["left_pupil"], KP["right_pupil"]]]
    assert np.all(shift[:, 0] > 1.0) and np.all(np.abs(shift[:, 1]) < 0.1)


def _extent(row: np.ndarray) -> tuple[int, int]:
    """First and last column of an image row (W, 3) that is not the flat blue background."""
    face = np.flatnonzero(np.abs(row - np.asarray(BLUE)).max(-1) > 0.15)
    return int(face[0]), int(face[-1])


def test_pseudo_yaw_squashes_the_head_and_shifts_the_features() -> None:
    for seed in (1, 8):
        identity = plain(seed, hair_style="none", ears=False)
        front = FAMILY.render(identity, neutral(), 128)
        turned = FAMILY.render(identity, neutral(yaw=0.5), 128)
        row = round((identity.center_y + 1.0) * 63.5)
        (f0, f1), (t0, t1) = _extent(front.image[row]), _extent(turned.image[row])
        assert (t1 - t0) < 0.96 * (f1 - f0)
        middle = (t0 + t1) / 2
        nose = turned.keypoints[KP["nose_tip"]]
        eyes = turned.keypoints[[KP["left_eye"], KP["right_eye"]]].mean(0)
        assert nose[0] > middle + 3 and eyes[0] > middle + 1
        assert nose[0] - front.keypoints[KP["nose_tip"], 0] > eyes[0] - front.keypoints[[0, 1], 0].mean()
        assert turned.visibility.all()


def test_pitch_and_roll_move_the_features() -> None:
    identity = plain(9)
    rest = FAMILY.keypoints(identity, neutral(), 128)[0]
    down = FAMILY.keypoints(identity, neutral(pitch=0.4), 128)[0]
    assert down[KP["nose_tip"], 1] > rest[KP["nose_tip"], 1] + 3
    rolled = FAMILY.keypoints(identity, neutral(roll=0.3), 128)[0]
    eye_line = rolled[KP["right_eye"]] - rolled[KP["left_eye"]]
    assert np.arctan2(eye_line[1], eye_line[0]) == pytest.approx(0.3, abs=1e-3)


def test_visibility_off_image_and_clipping() -> None:
    identity = plain(1)
    gone = FAMILY.render(identity, neutral(tx=5.0), 64)
    assert not gone.visibility.any()
    half = FAMILY.render(identity, neutral(tx=1.0), 64).visibility
    assert half.any() and not half.all()
    wild = FAMILY.render(identity, neutral(eyelid=9.0, mouth_open=7.0, smile=4.0, brow=-3.0, yaw=3.0), 64)
    tame = FAMILY.render(identity, neutral(eyelid=1.25, mouth_open=1.0, smile=1.0, brow=-1.0, yaw=0.7), 64)
    np.testing.assert_array_equal(wild.image, tame.image)


# ----------------------------------------------------------------------------------------------- motions
def test_motion_is_smooth() -> None:
    worst = 0.0
    for a, action in enumerate(ACTION_NAMES):
        for s in range(2):
            kp, vis = trajectory(500 + 10 * a + s, action, 75)
            step = np.linalg.norm(np.diff(kp, axis=0), axis=-1)
            both = vis[1:] & vis[:-1]
            worst = max(worst, float(step[both].max()))
    assert worst < 3.0


def test_blinks_happen_quickly_and_continuously() -> None:
    motion = FAMILY.sample_motion(np.random.default_rng(1), "talk")
    times = np.arange(0.0, 12.0, 0.01)
    eyelid = np.array([FAMILY.pose(motion, t)[POSE["eyelid"]] for t in times])
    assert eyelid.min() < 0.1 and eyelid.max() > 0.9
    assert np.abs(np.diff(eyelid)).max() < 0.15  # continuous: a blink takes about 0.24 s


def _features(kp: np.ndarray) -> np.ndarray:
    """Pose-invariant descriptors of a keypoint trajectory (T, K, 2): spreads of the head roll, nose offset,
    mouth opening and its speed, smile, brows, gaze, translation and scale, in the eye-line frame."""
    left, right = kp[:, KP["left_eye"]], kp[:, KP["right_eye"]]
    eye_line = right - left
    length = np.linalg.norm(eye_line, axis=1)
    angle = np.arctan2(eye_line[:, 1], eye_line[:, 0])
    middle = (left + right) / 2
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    rel = (kp - middle[:, None]) / length[:, None, None]
    q = np.stack([c * rel[..., 0] + s * rel[..., 1], -s * rel[..., 0] + c * rel[..., 1]], axis=-1)

    def at(name: str) -> np.ndarray:
        return q[:, KP[name]]

    opening = at("lower_lip")[:, 1] - at("upper_lip")[:, 1]
    lips = (at("upper_lip")[:, 1] + at("lower_lip")[:, 1]) / 2
    smile = lips - (at("mouth_left")[:, 1] + at("mouth_right")[:, 1]) / 2
    brows = (at("left_brow")[:, 1] + at("right_brow")[:, 1]) / 2
    gaze = np.concatenate([at("left_pupil") - at("left_eye"), at("right_pupil") - at("right_eye")], axis=1)
    spreads = [angle.std(), at("nose_tip")[:, 0].std(), at("nose_tip")[:, 1].std(), opening.std(),
               np.diff(opening).std(), smile.std(), brows.std(), gaze.std(0).mean(),
               (middle / length.mean()).std(0).mean(), np.log(length).std()]
    return np.log(np.asarray(spreads) + 1e-4)


@pytest.mark.slow
def test_actions_are_distinguishable_by_their_keypoint_trajectories() -> None:
    def dataset(seeds: range) -> tuple[np.ndarray, np.ndarray]:
        features, labels = [], []
        for a, action in enumerate(ACTION_NAMES):
            for seed in seeds:
                features.append(_features(trajectory(1000 * a + seed, action, 100)[0]))
                labels.append(a)
        return np.array(features), np.array(labels)

    train_x, train_y = dataset(range(8))
    test_x, test_y = dataset(range(100, 105))
    predicted = nearest_centroid_predictions(train_x, train_y, test_x, len(ACTION_NAMES))
    assert (predicted == test_y).mean() >= 0.85
    for a in range(len(ACTION_NAMES)):
        assert (predicted[test_y == a] == a).mean() >= 0.6, ACTION_NAMES[a]


# ------------------------------------------------------------------------------- resolution and transfer
