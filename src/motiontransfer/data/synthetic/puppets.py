"""Articulated 2D puppets: a procedural family of textured stick-figure people performing action classes.

A puppet is a front-facing figure made of SDF parts: torso, neck, head, two two-segment arms with hands
and two two-segment legs with feet. Who it is (:class:`PuppetIdentity`: proportions, colours, textures,
background, placement) is separate from how it moves (:class:`PuppetMotion`: an action class with
per-video frequency, amplitude, phase, idle sway and a slow drift of position and scale). The ``large`` motion
setting (:func:`sample_puppet_motion`) widens the same draws: larger joint excursions, sway and drift, faster drift.

Pose vector (float64, :data:`POSE_NAMES`)::

    0 root_x          horizontal offset of the pelvis from the identity's ``base_x`` (world units)
    1 root_y          vertical offset of the ground line from the identity's ``ground_y`` (world units,
                      negative = up; the lowest foot rests on the ground line, so a jump is root_y < 0)
    2 log_scale       log of the scale factor applied on top of the identity's ``scale``
    3 torso           spine angle about the pelvis (rad; positive tips the head towards -x)
    4 head            neck angle relative to the torso (rad)
    5..8              l_shoulder, l_elbow, r_shoulder, r_elbow (rad)
    9..12             l_hip, l_knee, r_hip, r_knee (rad)
    13..16            l_upper_arm, r_upper_arm, l_thigh, r_thigh log length factors (foreshortening when a
                      segment points towards the camera; 0 = full length)

Joint angles are mirror-symmetric: 0 is a segment hanging straight down (along its parent for elbows and
knees) and positive swings it *outwards*, away from the body's midline, so a symmetric action uses equal
values on both sides. The figure faces the viewer, so its left side (``l_*``) is on the image's right (+x).
Arms hang from the torso, legs from the pelvis, which does not rotate.

Depth order (painter's algorithm, back to front): far leg, far arm, near leg, torso, neck, head, near arm,
where the near side is the identity's ``near_side``. Within a limb: upper segment, lower segment, hand or
foot. A keypoint belongs to the front-most part meeting at it (a hip to the torso, a knee to the shin...) and
is invisible when a part drawn after that one covers it (SDF below minus half a pixel) or when it is off the
image.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from motiontransfer.data.synthetic.base import RenderedFrame, additive_relative_pose
from motiontransfer.data.synthetic.render import (
    Background,
    Canvas,
    Texture,
    cached_background,
    cached_world_grid,
    random_background,
    random_texture,
)
from motiontransfer.ops.coordinates import normalized_to_pixels

Array = np.ndarray
Color = tuple[float, float, float]

POSE_NAMES: tuple[str, ...] = (
    "root_x", "root_y", "log_scale", "torso", "head",
    "l_shoulder", "l_elbow", "r_shoulder", "r_elbow",
    "l_hip", "l_knee", "r_hip", "r_knee",
    "l_upper_arm", "r_upper_arm", "l_thigh", "r_thigh",
)
_P = types.MappingProxyType({name: i for i, name in enumerate(POSE_NAMES)})

KEYPOINT_NAMES: tuple[str, ...] = (
    "head", "neck", "pelvis",
    "l_shoulder", "l_elbow", "l_hand", "r_shoulder", "r_elbow", "r_hand",
    "l_hip", "l_knee", "l_foot", "r_hip", "r_knee", "r_foot",
)

ACTION_NAMES: tuple[str, ...] = (
    "wave", "squat", "jump", "walk", "arm_circles", "clap", "kick", "side_bend", "jumping_jacks",
)

# Main cycle frequency range (Hz) per action; ranges keep hands and feet under ~3 px/frame at 64 px, 25 fps.
_FREQUENCIES = types.MappingProxyType({
    "wave": (1.1, 1.7), "squat": (0.35, 0.6), "jump": (0.5, 0.75), "walk": (0.7, 1.0),
    "arm_circles": (0.7, 1.1), "clap": (0.9, 1.35), "kick": (0.35, 0.55), "side_bend": (0.3, 0.5),
    "jumping_jacks": (0.4, 0.55),
})

_SIDE_SIGN = types.MappingProxyType({"l": 1.0, "r": -1.0})
_TEXTURE_UNIT = 0.25  # body units per texture-local unit: texture frequencies are cycles per quarter body
_HAND_OFFSET = 0.6  # hand centre beyond the wrist, in hand radii


# ------------------------------------------------------------------------------------------------ identity
@dataclass(frozen=True)
class PuppetIdentity:
    """Who is in a puppet video. Lengths are in body units (the figure is about one unit tall) unless noted.

    Attributes:
        base_x: pelvis x in world units at zero pose offset.
        ground_y: world y of the ground line (where the lowest foot rests) at zero pose offset.
        scale: world units per body unit.
        near_side: ``"l"`` or ``"r"``, the side whose arm and leg are in front.
        head_radius, neck_length, neck_radius, torso_length (pelvis to neck base), torso_top_radius,
        torso_bottom_radius, shoulder_width (half, at the neck base), shoulder_drop, hip_width (half),
        upper_arm_length, forearm_length, upper_arm_radius, forearm_radius, hand_radius, thigh_length,
        shin_length, thigh_radius, shin_radius, foot_length, foot_radius: proportions.
        skin: solid RGB of head, neck and hands. shoe: solid RGB of feet.
        torso_texture, upper_arm_texture, forearm_texture, thigh_texture, shin_texture: part textures in the
            part's local frame (so patterns move with the part).
        background: the static background.
    """

    base_x: float
    ground_y: float
    scale: float
    near_side: str
    head_radius: float
    neck_length: float
    neck_radius: float
    torso_length: float
    torso_top_radius: float
    torso_bottom_radius: float
    shoulder_width: float
    shoulder_drop: float
    hip_width: float
    upper_arm_length: float
    forearm_length: float
    upper_arm_radius: float
    forearm_radius: float
    hand_radius: float
    thigh_length: float
    shin_length: float
    thigh_radius: float
    shin_radius: float
    foot_length: float
    foot_radius: float
    skin: Color
    shoe: Color
    torso_texture: Texture
    upper_arm_texture: Texture
    forearm_texture: Texture
    thigh_texture: Texture
    shin_texture: Texture
    background: Background

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PuppetIdentity:
        """Rebuild an identity from its JSON form (``dataclasses.asdict`` or ``config.to_dict`` output)."""
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            value = data[field.name]
            if field.name.endswith("_texture"):
                value = Texture(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
            elif field.name == "background":
                value = Background(**{k: _tuplify(v) for k, v in value.items()})
            elif isinstance(value, list):
                value = tuple(value)
            values[field.name] = value
        return cls(**values)


def _tuplify(value: Any) -> Any:
    return tuple(_tuplify(v) for v in value) if isinstance(value, (list, tuple)) else value


# -------------------------------------------------------------------------------------------------- motion
@dataclass(frozen=True)
class PuppetMotion:
    """How a puppet moves: an action class with per-video variation. Angles in radians, times in seconds.

    Attributes:
        action: one of :data:`ACTION_NAMES`.
        frequency: main cycle frequency (Hz). amplitude: multiplier of the action's joint excursions.
        phase: phase of the main cycle at t = 0.
        side: ``"l"`` or ``"r"``: the active side of one-sided actions (wave, kick), the leading leg of walk.
        rest_shoulder, rest_elbow, rest_hip: resting joint angles the action is added to.
        sway_amplitude, sway_frequency, sway_phase: idle torso/head sway.
        drift_x, drift_y, drift_scale: (amplitude, frequency, phase) of slow sinusoidal drift of root_x,
            root_y (world units) and log_scale.
    """

    action: str
    frequency: float
    amplitude: float
    phase: float
    side: str
    rest_shoulder: float
    rest_elbow: float
    rest_hip: float
    sway_amplitude: float
    sway_frequency: float
    sway_phase: float
    drift_x: tuple[float, float, float]
    drift_y: tuple[float, float, float]
    drift_scale: tuple[float, float, float]


def _bump(angle: float, power: float = 1.0) -> float:
    """Smooth periodic bump in [0, 1]: 0 at angle 0, 1 at pi."""
    return (0.5 - 0.5 * math.cos(angle)) ** power


def _act_wave(j: dict[str, float], th: float, amp: float) -> None:
    j["a_shoulder"] = 2.1 + 0.1 * math.sin(0.5 * th)
    j["a_elbow"] = 1.0 + 0.45 * amp * math.sin(th)
    j["head"] += 0.06 * math.sin(th + 0.5)


def _act_squat(j: dict[str, float], th: float, amp: float) -> None:
    k = amp * _bump(th)
    for s in "ao":
        j[f"{s}_hip"] += 0.55 * k
        j[f"{s}_knee"] = -1.5 * j[f"{s}_hip"]
        j[f"{s}_thigh"] = math.log(1.0 - 0.45 * k)
        j[f"{s}_shoulder"] += 1.2 * k
        j[f"{s}_elbow"] *= 1.0 - k
        j[f"{s}_upper_arm"] = math.log(1.0 - 0.5 * k)


def _act_jump(j: dict[str, float], th: float, amp: float) -> None:
    air = _bump(th, 2.0)
    crouch = _bump(th + math.pi, 3.0)
    j["root_y"] -= 0.16 * amp * air
    for s in "ao":
        j[f"{s}_hip"] += 0.35 * crouch
        j[f"{s}_knee"] = -1.5 * j[f"{s}_hip"]
        j[f"{s}_thigh"] = math.log(1.0 - 0.3 * crouch)
        j[f"{s}_shoulder"] += 1.1 * amp * _bump(th - 0.4)
        j[f"{s}_elbow"] += 0.2 * air


def _act_walk(j: dict[str, float], th: float, amp: float) -> None:
    lifts = {"a": _bump(th, 2.5), "o": _bump(th + math.pi, 2.5)}
    for s, other in (("a", "o"), ("o", "a")):
        lift = lifts[s]
        j[f"{s}_thigh"] = math.log(1.0 - 0.6 * amp * lift)
        j[f"{s}_hip"] += 0.08 * lift
        j[f"{s}_knee"] = -j[f"{s}_hip"]
        j[f"{s}_upper_arm"] = math.log(1.0 - 0.35 * amp * lifts[other])
        j[f"{s}_elbow"] -= 0.6 * amp * lifts[other]
    j["root_y"] += 0.012 * math.cos(2.0 * th)
    j["torso"] += 0.04 * math.sin(th)


def _act_arm_circles(j: dict[str, float], th: float, amp: float) -> None:
    for s in "ao":
        j[f"{s}_shoulder"] = 1.55 + 0.3 * amp * math.cos(th)
        j[f"{s}_elbow"] = 0.35 * amp * math.sin(th)


def _act_clap(j: dict[str, float], th: float, amp: float) -> None:
    open_ = _bump(th)
    for s in "ao":
        j[f"{s}_upper_arm"] = math.log(0.4 + 0.25 * open_)
        j[f"{s}_shoulder"] = 0.55 + 0.35 * amp * open_
        j[f"{s}_elbow"] = -1.75 + 0.9 * amp * open_


def _act_kick(j: dict[str, float], th: float, amp: float) -> None:
    k = _bump(th, 1.5)
    j["a_hip"] += 1.05 * amp * k
    j["a_knee"] = -0.9 * math.sin(0.5 * th) ** 2 * (1.0 - k) - 0.1 * j["a_hip"]
    j["o_hip"] -= 0.05 * k
    for s in "ao":
        j[f"{s}_shoulder"] += 0.9 * k
    j["torso"] += j["a_sign"] * 0.25 * k


def _act_side_bend(j: dict[str, float], th: float, amp: float) -> None:
    j["torso"] += 0.38 * amp * math.sin(th)
    j["head"] += 0.15 * amp * math.sin(th)
    for s in "ao":
        j[f"{s}_shoulder"] = 2.55
        j[f"{s}_elbow"] = 0.35


def _act_jumping_jacks(j: dict[str, float], th: float, amp: float) -> None:
    k = _bump(th)
    j["root_y"] -= 0.05 * amp * math.sin(th) ** 2
    for s in "ao":
        j[f"{s}_shoulder"] += (2.4 - j[f"{s}_shoulder"]) * min(amp, 1.0) * k
        j[f"{s}_elbow"] *= 1.0 - k
        j[f"{s}_hip"] += 0.3 * amp * k
        j[f"{s}_knee"] = -0.5 * j[f"{s}_hip"]


_ACTIONS: Mapping[str, Callable[[dict[str, float], float, float], None]] = types.MappingProxyType({
    "wave": _act_wave, "squat": _act_squat, "jump": _act_jump, "walk": _act_walk,
    "arm_circles": _act_arm_circles, "clap": _act_clap, "kick": _act_kick, "side_bend": _act_side_bend,
    "jumping_jacks": _act_jumping_jacks,
})


def motion_pose(motion: PuppetMotion, time: float) -> Array:
    """Pose vector (len(POSE_NAMES),) float64 of ``motion`` at ``time`` seconds (see the module docstring)."""
    if motion.action not in _ACTIONS:
        raise ValueError(f"unknown puppet action {motion.action!r}")
    t = float(time)
    sway = motion.sway_amplitude * math.sin(2 * math.pi * motion.sway_frequency * t + motion.sway_phase)
    a_sign = _SIDE_SIGN[motion.side]
    joints: dict[str, float] = {
        "root_x": _drift(motion.drift_x, t), "root_y": _drift(motion.drift_y, t),
        "log_scale": _drift(motion.drift_scale, t), "torso": sway, "head": -0.6 * sway, "a_sign": a_sign,
    }
    for s in "ao":
        joints.update({f"{s}_shoulder": motion.rest_shoulder, f"{s}_elbow": motion.rest_elbow,
                       f"{s}_hip": motion.rest_hip, f"{s}_knee": -motion.rest_hip,
                       f"{s}_upper_arm": 0.0, f"{s}_thigh": 0.0})
    _ACTIONS[motion.action](joints, 2 * math.pi * motion.frequency * t + motion.phase, motion.amplitude)
    sides = {"a": motion.side, "o": "r" if motion.side == "l" else "l"}
    pose = np.zeros(len(POSE_NAMES), dtype=np.float64)
    for name in ("root_x", "root_y", "log_scale", "torso", "head"):
        pose[_P[name]] = joints[name]
    for s, side in sides.items():
        for joint in ("shoulder", "elbow", "hip", "knee", "upper_arm", "thigh"):
            pose[_P[f"{side}_{joint}"]] = joints[f"{s}_{joint}"]
    return pose


def _drift(params: tuple[float, float, float], t: float) -> float:
    amplitude, frequency, phase = params
    return amplitude * math.sin(2 * math.pi * frequency * t + phase)


# ---------------------------------------------------------------------------------------------- kinematics
def _down(angle: float) -> tuple[float, float]:
    """Unit vector of a segment at ``angle``: (0, 1) (image down) rotated towards +x by ``angle``."""
    return math.sin(angle), math.cos(angle)


@dataclass(frozen=True)
class _Segment:
    """A drawn part in world units: capsule a-b (radii ra, rb) or, with ``ellipse``, an ellipse centred at
    ``a`` with semi-axes ``ra`` across and ``rb`` along its axis. ``angle`` is the axis direction as in
    :func:`_down` and orients the texture frame (y along the axis, x across it)."""

    name: str
    a: tuple[float, float]
    b: tuple[float, float]
    ra: float
    rb: float
    angle: float
    paint: Texture | Color
    ellipse: bool = False

    def bounds(self) -> tuple[tuple[float, float], float]:
        """Centre and radius (world units) of a disc containing the part."""
        cx, cy = 0.5 * (self.a[0] + self.b[0]), 0.5 * (self.a[1] + self.b[1])
        half = 0.5 * math.hypot(self.b[0] - self.a[0], self.b[1] - self.a[1])
        return (cx, cy), half + max(self.ra, self.rb)

    def sdf(self, points: Array) -> Array:
        """Signed distance (...,) at world points (..., 2)."""
        px = points[..., 0] - self.a[0]
        py = points[..., 1] - self.a[1]
        if self.ellipse:
            c, s = math.cos(self.angle), math.sin(self.angle)
            u = (c * px - s * py) / self.ra  # across the axis
            v = (s * px + c * py) / self.rb  # along the axis
            k0 = np.sqrt(u * u + v * v)
            k1 = np.sqrt(u * u / (self.ra * self.ra) + v * v / (self.rb * self.rb))
            return k0 * (k0 - 1.0) / np.maximum(k1, 1e-8)
        bx, by = self.b[0] - self.a[0], self.b[1] - self.a[1]
        h = np.clip((px * bx + py * by) / max(bx * bx + by * by, 1e-12), 0.0, 1.0)
        dx, dy = px - h * bx, py - h * by
        return np.sqrt(dx * dx + dy * dy) - (self.ra + (self.rb - self.ra) * h)

    def local(self, points: Array, unit: float) -> Array:
        """Texture coordinates (..., 2): the frame at ``a`` with y along the part, in units of ``unit``."""
        px = points[..., 0] - self.a[0]
        py = points[..., 1] - self.a[1]
        c, s = math.cos(self.angle), math.sin(self.angle)
        return np.stack([(c * px - s * py) / unit, (s * px + c * py) / unit], axis=-1)


@dataclass(frozen=True)
class _Figure:
    """Forward kinematics result: drawn parts in depth order, keypoints in world units and their owners."""

    segments: tuple[_Segment, ...]
    keypoints: Array  # (K, 2) float64 world
    owners: tuple[int, ...]  # index into segments of the part each keypoint belongs to
    scale: float


def _forward_kinematics(identity: PuppetIdentity, pose: Array) -> _Figure:
    """Place every part of ``identity`` in ``pose`` in world coordinates, in depth order."""
    q = np.asarray(pose, dtype=np.float64)
    if q.shape != (len(POSE_NAMES),):
        raise ValueError(f"puppet pose must have shape ({len(POSE_NAMES)},), got {q.shape}")
    idn = identity
    tau = float(q[_P["torso"]])
    down = _down(tau)
    perp = (math.cos(tau), -math.sin(tau))
    neck_base = (-idn.torso_length * down[0], -idn.torso_length * down[1])
    pts: dict[str, tuple[float, float]] = {"pelvis": (0.0, 0.0), "neck": neck_base}
    segs: dict[str, _Segment] = {}

    def add(p: tuple[float, float], v: tuple[float, float], k: float) -> tuple[float, float]:
        return p[0] + k * v[0], p[1] + k * v[1]

    bottoms = []
    for side, sign in _SIDE_SIGN.items():
        shoulder = add(add(neck_base, perp, sign * idn.shoulder_width), down, idn.shoulder_drop)
        upper_angle = tau + sign * q[_P[f"{side}_shoulder"]]
        elbow = add(shoulder, _down(upper_angle), idn.upper_arm_length * math.exp(q[_P[f"{side}_upper_arm"]]))
        fore_angle = upper_angle + sign * q[_P[f"{side}_elbow"]]
        wrist = add(elbow, _down(fore_angle), idn.forearm_length)
        hand = add(wrist, _down(fore_angle), _HAND_OFFSET * idn.hand_radius)
        hip = (sign * idn.hip_width, 0.0)
        thigh_angle = sign * q[_P[f"{side}_hip"]]
        knee = add(hip, _down(thigh_angle), idn.thigh_length * math.exp(q[_P[f"{side}_thigh"]]))
        shin_angle = thigh_angle + sign * q[_P[f"{side}_knee"]]
        ankle = add(knee, _down(shin_angle), idn.shin_length)
        toe_dir = (sign * math.cos(shin_angle), -sign * math.sin(shin_angle))
        sole = add(ankle, _down(shin_angle), 0.5 * idn.foot_radius)
        heel = add(sole, toe_dir, -0.2 * idn.foot_length)
        toe = add(sole, toe_dir, 0.8 * idn.foot_length)
        foot = (0.5 * (heel[0] + toe[0]), 0.5 * (heel[1] + toe[1]))
        bottoms.append(max(heel[1], toe[1]) + idn.foot_radius)
        pts.update({f"{side}_shoulder": shoulder, f"{side}_elbow": elbow, f"{side}_hand": hand,
                    f"{side}_hip": hip, f"{side}_knee": knee, f"{side}_foot": foot})
        segs[f"{side}_upper"] = _Segment("upper", shoulder, elbow, idn.upper_arm_radius,
                                         0.9 * idn.upper_arm_radius, upper_angle, idn.upper_arm_texture)
        segs[f"{side}_fore"] = _Segment("fore", elbow, wrist, idn.forearm_radius, 0.85 * idn.forearm_radius,
                                        fore_angle, idn.forearm_texture)
        segs[f"{side}_hand"] = _Segment("hand", hand, hand, idn.hand_radius, idn.hand_radius, 0.0, idn.skin)
        segs[f"{side}_thigh"] = _Segment("thigh", hip, knee, idn.thigh_radius, 0.9 * idn.thigh_radius,
                                         thigh_angle, idn.thigh_texture)
        segs[f"{side}_shin"] = _Segment("shin", knee, ankle, idn.shin_radius, 0.85 * idn.shin_radius,
                                        shin_angle, idn.shin_texture)
        segs[f"{side}_foot"] = _Segment("foot", heel, toe, idn.foot_radius, idn.foot_radius, 0.0, idn.shoe)

    head_angle = tau + float(q[_P["head"]])
    head_up = _down(head_angle + math.pi)
    head = add(neck_base, head_up, idn.neck_length + 0.9 * idn.head_radius)
    pts["head"] = head
    torso_top = add(neck_base, down, 0.75 * idn.torso_top_radius)
    segs["torso"] = _Segment("torso", (0.0, 0.0), torso_top, idn.torso_bottom_radius, idn.torso_top_radius,
                             tau, idn.torso_texture)
    segs["neck"] = _Segment("neck", neck_base, add(neck_base, head_up, idn.neck_length), idn.neck_radius,
                            idn.neck_radius, head_angle, idn.skin)
    segs["head"] = _Segment("head", head, head, 0.86 * idn.head_radius, idn.head_radius, head_angle,
                            idn.skin, ellipse=True)

    near, far = idn.near_side, ("r" if idn.near_side == "l" else "l")
    order = [f"{far}_thigh", f"{far}_shin", f"{far}_foot", f"{far}_upper", f"{far}_fore", f"{far}_hand",
             f"{near}_thigh", f"{near}_shin", f"{near}_foot", "torso", "neck", "head",
             f"{near}_upper", f"{near}_fore", f"{near}_hand"]
    index = {name: i for i, name in enumerate(order)}
    members = _keypoint_parts()
    owners = tuple(max(index[part] for part in members[name]) for name in KEYPOINT_NAMES)

    # world placement: scale about the pelvis, lowest foot on the ground line
    scale = idn.scale * math.exp(q[_P["log_scale"]])
    origin_x = idn.base_x + q[_P["root_x"]]
    origin_y = idn.ground_y + q[_P["root_y"]] - scale * max(bottoms)

    def world(p: tuple[float, float]) -> tuple[float, float]:
        return origin_x + scale * p[0], origin_y + scale * p[1]

    segments = tuple(
        dataclasses.replace(seg, a=world(seg.a), b=world(seg.b), ra=scale * seg.ra, rb=scale * seg.rb)
        for seg in (segs[name] for name in order))
    keypoints = np.array([world(pts[name]) for name in KEYPOINT_NAMES], dtype=np.float64)
    return _Figure(segments, keypoints, owners, scale)


def _keypoint_parts() -> dict[str, tuple[str, ...]]:
    """For each keypoint, the parts that meet at it (it belongs to the front-most of them)."""
    parts: dict[str, tuple[str, ...]] = {"head": ("head",), "neck": ("neck",), "pelvis": ("torso",)}
    for s in "lr":
        parts.update({f"{s}_shoulder": ("torso", f"{s}_upper"), f"{s}_elbow": (f"{s}_upper", f"{s}_fore"),
                      f"{s}_hand": (f"{s}_hand",), f"{s}_hip": ("torso", f"{s}_thigh"),
                      f"{s}_knee": (f"{s}_thigh", f"{s}_shin"), f"{s}_foot": (f"{s}_foot",)})
    return parts


# ---------------------------------------------------------------------------------------------- rendering
def _visibility(figure: _Figure, pixels: Array, size: int) -> Array:
    """(K,) bool: keypoint on the image and not covered by a part drawn after the part it belongs to."""
    half_pixel = 1.0 / (size - 1)  # half of the pixel size 2 / (size - 1)
    inside = np.all((pixels >= -0.5) & (pixels <= size - 0.5), axis=-1)
    sdfs = np.stack([seg.sdf(figure.keypoints) for seg in figure.segments])  # (P, K)
    covered = np.zeros(len(KEYPOINT_NAMES), dtype=bool)
    for k, owner in enumerate(figure.owners):
        covered[k] = bool(np.any(sdfs[owner + 1:, k] < -half_pixel))
    return inside & ~covered


def _random_range(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _color_distance(a: Color, b: Color) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


def _contrasting(rng: np.random.Generator, sample: Callable[[], Color], avoid: list[Color],
                 min_distance: float = 0.4, tries: int = 40) -> Color:
    """Draw colours with ``sample`` until one is at least ``min_distance`` (RGB) from every colour in
    ``avoid``; after ``tries`` draws return the best one seen."""
    best, best_score = sample(), -1.0
    for _ in range(tries):
        color = sample()
        score = min((_color_distance(color, other) for other in avoid), default=1.0)
        if score >= min_distance:
            return color
        if score > best_score:
            best, best_score = color, score
    return best


def _skin_sampler(rng: np.random.Generator) -> Callable[[], Color]:
    light, dark = np.array([0.98, 0.84, 0.7]), np.array([0.36, 0.22, 0.14])

    def sample() -> Color:
        if rng.random() < 0.25:  # puppets may be any colour
            return tuple(float(v) for v in rng.uniform(0.1, 0.95, 3))  # type: ignore[return-value]
        tone = light + (dark - light) * rng.random() + rng.normal(0.0, 0.03, 3)
        return tuple(float(v) for v in np.clip(tone, 0.0, 1.0))  # type: ignore[return-value]

    return sample


def _part_texture(rng: np.random.Generator, avoid: list[Color]) -> Texture:
    """A random texture (frequency suited to body parts) whose main colour contrasts with ``avoid``."""
    base = _contrasting(rng, lambda: tuple(float(v) for v in rng.uniform(0.05, 0.95, 3)), avoid)  # type: ignore
    texture = random_texture(rng, base=base)
    return dataclasses.replace(texture, frequency=float(rng.uniform(0.9, 2.2)))


def _background_colors(background: Background) -> list[Color]:
    a, b = np.asarray(background.color_a), np.asarray(background.color_b)
    mid = tuple(float(v) for v in 0.5 * (a + b))
    return [background.color_a, background.color_b, mid]  # type: ignore[list-item]


def sample_puppet_identity(rng: np.random.Generator) -> PuppetIdentity:
    """Draw a random :class:`PuppetIdentity` (all randomness from ``rng``)."""
    background = random_background(rng)
    avoid = _background_colors(background)
    skin = _contrasting(rng, _skin_sampler(rng), avoid)
    shoe = _contrasting(rng, lambda: tuple(float(v) for v in rng.uniform(0.0, 0.6, 3)), avoid)  # type: ignore
    torso_texture = _part_texture(rng, [*avoid, skin])
    upper_arm = torso_texture if rng.random() < 0.5 else _part_texture(rng, [*avoid, torso_texture.color_a])
    forearm = (Texture("solid", skin) if rng.random() < 0.4 else
               upper_arm if rng.random() < 0.6 else _part_texture(rng, avoid))
    thigh = _part_texture(rng, [*avoid, torso_texture.color_a])
    shin = thigh if rng.random() < 0.6 else (Texture("solid", skin) if rng.random() < 0.4 else
                                              _part_texture(rng, [*avoid, thigh.color_a]))
    u = functools.partial(_random_range, rng)
    torso_top = u(0.1, 0.125)
    torso_bottom = u(0.085, 0.11)
    thigh_radius = u(0.042, 0.055)
    return PuppetIdentity(
        base_x=u(-0.2, 0.2), ground_y=u(0.75, 0.92), scale=u(1.15, 1.5),
        near_side=str(rng.choice(["l", "r"])),
        head_radius=u(0.075, 0.095), neck_length=u(0.035, 0.055), neck_radius=u(0.024, 0.034),
        torso_length=u(0.28, 0.33), torso_top_radius=torso_top, torso_bottom_radius=torso_bottom,
        shoulder_width=torso_top * u(0.8, 0.95), shoulder_drop=u(0.02, 0.035),
        hip_width=torso_bottom * u(0.5, 0.65),
        upper_arm_length=u(0.15, 0.18), forearm_length=u(0.13, 0.16),
        upper_arm_radius=u(0.034, 0.044), forearm_radius=u(0.029, 0.037), hand_radius=u(0.045, 0.055),
        thigh_length=u(0.21, 0.25), shin_length=u(0.2, 0.24),
        thigh_radius=thigh_radius, shin_radius=thigh_radius * u(0.75, 0.9),
        foot_length=u(0.08, 0.1), foot_radius=u(0.026, 0.032),
        skin=skin, shoe=shoe, torso_texture=torso_texture, upper_arm_texture=upper_arm,
        forearm_texture=forearm, thigh_texture=thigh, shin_texture=shin, background=background,
    )


def sample_puppet_motion(rng: np.random.Generator, action: str | None = None,
                         motion: str = "default") -> PuppetMotion:
    """Draw a random :class:`PuppetMotion`; ``action`` forces the class, otherwise it is uniform. ``motion="large"``
    makes the same draws and widens them (:func:`_enlarge`)."""
    if motion not in ("default", "large"):
        raise ValueError(f"unknown motion setting {motion!r}; choose default or large")
    if action is None:
        action = ACTION_NAMES[int(rng.integers(len(ACTION_NAMES)))]
    elif action not in ACTION_NAMES:
        raise ValueError(f"unknown puppet action {action!r}; choose one of {', '.join(ACTION_NAMES)}")
    u = functools.partial(_random_range, rng)
    low, high = _FREQUENCIES[action]

    def drift(amplitude: float) -> tuple[float, float, float]:
        return (u(0.0, amplitude), u(0.04, 0.15), u(0.0, 2 * math.pi))

    drawn = PuppetMotion(
        action=action, frequency=u(low, high), amplitude=u(0.8, 1.1), phase=u(0.0, 2 * math.pi),
        side=str(rng.choice(["l", "r"])), rest_shoulder=u(0.1, 0.3), rest_elbow=u(-0.25, 0.0),
        rest_hip=u(0.03, 0.1), sway_amplitude=u(0.0, 0.05), sway_frequency=u(0.15, 0.4),
        sway_phase=u(0.0, 2 * math.pi), drift_x=drift(0.08), drift_y=drift(0.025), drift_scale=drift(0.06),
    )
    return _enlarge(drawn) if motion == "large" else drawn


# motion=large: each action's amplitude times its factor, bounded where an action's formula needs it (squat and
# walk shorten the thighs by log(1 - c * amplitude), jumping_jacks caps its amplitude at 1 for the arms), the idle
# sway and the drift of horizontal position and scale times their factors, and every drift (vertical too) faster so
# that more of a drift cycle falls within a clip.
_LARGE_AMPLITUDE = types.MappingProxyType({
    "wave": 2.0, "squat": 1.4, "jump": 1.5, "walk": 1.2, "arm_circles": 1.6, "clap": 1.5, "kick": 1.15,
    "side_bend": 1.1, "jumping_jacks": 2.0,
})
_LARGE_SWAY = 2.0
_LARGE_DRIFT = types.MappingProxyType({"x": 3.0, "y": 1.0, "scale": 2.5})
_LARGE_DRIFT_SPEED = 3.0


def _enlarge(motion: PuppetMotion) -> PuppetMotion:
    """``motion`` with the ``large`` setting's wider limb motion and more body translation and scale change."""

    def drift(params: tuple[float, float, float], axis: str) -> tuple[float, float, float]:
        amplitude, frequency, phase = params
        return (amplitude * _LARGE_DRIFT[axis], frequency * _LARGE_DRIFT_SPEED, phase)

    return dataclasses.replace(
        motion, amplitude=motion.amplitude * _LARGE_AMPLITUDE[motion.action],
        sway_amplitude=motion.sway_amplitude * _LARGE_SWAY, drift_x=drift(motion.drift_x, "x"),
        drift_y=drift(motion.drift_y, "y"), drift_scale=drift(motion.drift_scale, "scale"))


class PuppetFamily:
    """Articulated 2D puppets (see the module docstring for the pose layout and depth order)."""

    name = "puppets"
    keypoint_names: tuple[str, ...] = KEYPOINT_NAMES
    action_names: tuple[str, ...] = ACTION_NAMES
    pose_names: tuple[str, ...] = POSE_NAMES
    fps = 25.0

    def sample_identity(self, rng: np.random.Generator) -> PuppetIdentity:
        """Draw a :class:`PuppetIdentity` from ``rng``."""
        return sample_puppet_identity(rng)

    def sample_motion(self, rng: np.random.Generator, action: str | None = None,
                      motion: str = "default") -> PuppetMotion:
        """Draw a :class:`PuppetMotion` from ``rng``; ``action`` forces the action class, ``motion`` is the
        motion setting (``default`` or ``large``)."""
        return sample_puppet_motion(rng, action, motion)

    def pose(self, motion: PuppetMotion, time: float) -> Array:
        """Pose vector (17,) float64 of ``motion`` at ``time`` seconds."""
        return motion_pose(motion, time)

    def relative_pose(self, source_first: Array, driving_first: Array, driving_now: Array) -> Array:
        """Additive transfer; offsets move the root, log-scale differences multiply the scale."""
        return additive_relative_pose(source_first, driving_first, driving_now)

    def keypoints(self, identity: PuppetIdentity, pose: Array, size: int) -> Array:
        """Keypoints (K, 2) float32 in pixels of a ``size`` image, without rendering."""
        return normalized_to_pixels(_forward_kinematics(identity, pose).keypoints, size)

    def render(self, identity: PuppetIdentity, pose: Array, size: int) -> RenderedFrame:
        """Render ``identity`` in ``pose`` at ``size`` x ``size`` px.

        Returns:
            A :class:`RenderedFrame`: image (size, size, 3) float32, keypoints (15, 2) float32 pixels,
            visibility (15,) bool.
        """
        figure = _forward_kinematics(identity, pose)
        canvas = Canvas(size, cached_background(identity.background, size), grid=cached_world_grid(size))
        unit = _TEXTURE_UNIT * figure.scale
        for seg in figure.segments:
            center, radius = seg.bounds()
            window = canvas.region(np.asarray(center), radius)
            if window[0].start >= window[0].stop or window[1].start >= window[1].stop:
                continue
            points = canvas.points(window)
            sdf = seg.sdf(points)
            if isinstance(seg.paint, Texture) and seg.paint.kind != "solid":
                canvas.paint_textured(sdf, seg.paint, seg.local(points, unit), window=window)
            else:
                color = seg.paint.color_a if isinstance(seg.paint, Texture) else seg.paint
                canvas.paint(sdf, color, window=window)
        pixels = normalized_to_pixels(figure.keypoints, size)
        return RenderedFrame(canvas.result(), pixels, _visibility(figure, pixels, size))
