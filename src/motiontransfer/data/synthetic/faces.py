"""Cartoon faces: a procedural talking-head family with ground-truth facial keypoints.

Geometry. A head lives in *head units* (the cranium is an ellipsoid of semi-height 1) and is the smooth union
of two ellipsoids, a cranium and a narrower jaw. Facial features (eyes, brows, nose, mouth, cheeks) are
placed on the front surface of that union at face-plane coordinates ``(u, v)`` (x right, y down). The head is
turned by a pseudo-3D yaw (about the vertical axis) and pitch (about the horizontal axis), projected
orthographically, then rolled, scaled and translated in the image plane. Each feature is drawn in a local
frame given by the projection's Jacobian at its anchor point, so a feature turned away is foreshortened, the
head outline (the exact silhouette of the ellipsoids) squashes horizontally under yaw, and features shift
towards the turned side, the nose (which sticks out) more than the eyes. Keypoints are computed with the same
local frames as the shapes that are drawn, so they sit exactly on the features.

Pose vector (float64, see :data:`POSE_NAMES`)::

    [tx, ty, log_scale, roll, yaw, pitch, gaze_x, gaze_y, eyelid, brow, mouth_open, smile]

``tx, ty`` translate (world units, added to the identity's position), ``log_scale`` multiplies the identity's
scale by ``exp(log_scale)``, ``roll`` turns the head clockwise on screen (radians), ``yaw`` turns it towards
image right and ``pitch`` nods it down (radians, clipped to +-0.7 and +-0.5 when rendering). ``gaze_*`` move
the irises within the eyes (-1..1, the vector is clipped to unit length), ``eyelid`` is eye openness (1 is the
identity's normal opening, 0 closed, clipped to [0, 1.25]), ``brow`` raises (+) or lowers (-) the eyebrows
(clipped to [-1, 1]), ``mouth_open`` opens the mouth ([0, 1]) and ``smile`` turns the mouth corners up (+)
or down (-) ([-1, 1]). Relative transfer is additive (:func:`additive_relative_pose`); clipping happens only
here.

Keypoints (:data:`KEYPOINT_NAMES`): "left"/"right" mean image left/right in the neutral pose (the subject's
right/left). Eye centres, pupils (they follow the gaze), outer eye corners (on the middle of the eye outline),
brow centres, nose tip, mouth corners, upper/lower lip (the inner lip edges on the mouth's centre line; they
coincide when the mouth is closed) and chin. Visibility rule: a keypoint is hidden when it lies outside the
world square [-1, 1]^2 (the image from first to last pixel centre), or when the yaw turns its surface normal
away from the camera (a safeguard: within the +-0.7 rad yaw clip every feature faces the camera). Pupils are
additionally hidden when the eyelids cover them, i.e. when the pupil centre is less than a pupil radius inside
the open eye.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from motiontransfer.data.synthetic.base import RenderedFrame, additive_relative_pose
from motiontransfer.data.synthetic.render import (
    Background,
    Canvas,
    Texture,
    cached_background,
    cached_world_grid,
    random_background,
    sdf_box,
    sdf_capsule,
    sdf_circle,
    sdf_ellipse,
)
from motiontransfer.ops.coordinates import normalized_to_pixels

Array = np.ndarray
Color = tuple[float, float, float]

POSE_NAMES: tuple[str, ...] = (
    "tx", "ty", "log_scale", "roll", "yaw", "pitch",
    "gaze_x", "gaze_y", "eyelid", "brow", "mouth_open", "smile",
)
KEYPOINT_NAMES: tuple[str, ...] = (
    "left_eye", "right_eye", "left_pupil", "right_pupil", "left_eye_outer", "right_eye_outer",
    "left_brow", "right_brow", "nose_tip", "mouth_left", "mouth_right", "upper_lip", "lower_lip", "chin",
)
ACTION_NAMES: tuple[str, ...] = ("talk", "smile", "blink_look", "nod", "shake", "tilt", "surprise", "sway")
HAIR_STYLES: tuple[str, ...] = ("none", "short", "bangs", "long", "bun")
NOSE_STYLES: tuple[str, ...] = ("button", "wedge", "round")

_P = {name: i for i, name in enumerate(POSE_NAMES)}
_SKIN_TONES: tuple[Color, ...] = (
    (0.98, 0.86, 0.74), (0.95, 0.78, 0.62), (0.87, 0.67, 0.50), (0.76, 0.56, 0.40), (0.60, 0.42, 0.30),
    (0.45, 0.30, 0.22), (0.99, 0.90, 0.82),
)
_FANTASY_SKIN: tuple[Color, ...] = ((0.62, 0.85, 0.55), (0.60, 0.75, 0.95), (0.85, 0.70, 0.95))
_HAIR_COLORS: tuple[Color, ...] = (
    (0.08, 0.06, 0.05), (0.30, 0.18, 0.09), (0.55, 0.35, 0.15), (0.92, 0.80, 0.45), (0.75, 0.30, 0.10),
    (0.70, 0.70, 0.72), (0.20, 0.25, 0.60), (0.75, 0.25, 0.55),
)
_IRIS_COLORS: tuple[Color, ...] = (
    (0.25, 0.45, 0.80), (0.30, 0.60, 0.35), (0.45, 0.28, 0.12), (0.55, 0.45, 0.25), (0.40, 0.55, 0.60),
)
_PUPIL: Color = (0.03, 0.03, 0.04)
_WHITE: Color = (0.97, 0.97, 0.95)
_MOUTH_INSIDE: Color = (0.32, 0.06, 0.08)
_TONGUE: Color = (0.85, 0.40, 0.42)

# Expression geometry (head units).
_EYE_LINE = 0.035  # half-thickness of the eye outline (the closed-eye line is twice this)
_SMILE_LIFT = 0.14  # mouth-corner lift at smile = 1
_BROW_LIFT = 0.09  # brow shift at brow = +-1
_TEETH = 0.06  # height of the upper teeth band


# ---------------------------------------------------------------------------------------------- dataclasses
@dataclass(frozen=True)
class FaceIdentity:
    """Who is in a face video: head shape, colours, feature sizes/positions, background, framing.

    All lengths are in head units (cranium semi-height 1) except ``scale`` (world units per head unit) and
    ``center_x``/``center_y`` (world coordinates of the cranium centre in the neutral pose). Colours are RGB
    in [0, 1]. ``skin`` is a texture evaluated in head coordinates (``solid`` or freckle-like ``noise``).
    """

    head_width: float
    head_depth: float
    jaw_width: float
    jaw_height: float
    jaw_drop: float
    skin: Texture
    hair_style: str
    hair_color: Color
    hairline: float
    hair_wave: float
    hair_wave_freq: float
    hair_volume: float
    ears: bool
    ear_size: float
    eye_spacing: float
    eye_height: float
    eye_width: float
    eye_open: float
    iris_radius: float
    pupil_fraction: float
    iris_color: Color
    line_color: Color
    brow_gap: float
    brow_length: float
    brow_thickness: float
    brow_tilt: float
    brow_arch: float
    brow_color: Color
    nose_style: str
    nose_y: float
    nose_length: float
    nose_size: float
    nose_color: Color
    mouth_y: float
    mouth_width: float
    mouth_open_max: float
    lip_thickness: float
    lip_color: Color
    cheek_opacity: float
    cheek_color: Color
    shirt_color: Color
    background: Background
    scale: float
    center_x: float
    center_y: float


@dataclass(frozen=True)
class FaceMotion:
    """How a face moves: an action class with per-video speed (Hz of the main cycle), amplitude (0.5..1),
    phases (radians), a blink train (period and offset in seconds), idle-motion phases and amount (0.5..1) and a
    resting expression (``rest_*``, added to the neutral pose). ``motion=large`` multiplies the amount by
    :data:`_LARGE_IDLE` and the amplitude by the action's :data:`_LARGE_AMPLITUDE` factor."""

    action: str
    speed: float
    amplitude: float
    phase: float
    phase2: float
    blink_period: float
    blink_offset: float
    idle_phases: tuple[float, ...]
    idle_amount: float
    rest_smile: float
    rest_brow: float
    rest_gaze_x: float
    rest_gaze_y: float


# ----------------------------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class _Local:
    """An affine frame: ``world = center + matrix @ local``; ``sigma`` converts local lengths to world ones
    (geometric mean of the singular values) and ``reach`` bounds them (largest singular value)."""

    center: Array
    matrix: Array
    inverse: Array
    sigma: float
    reach: float
    facing: bool

    def to_world(self, local: Array) -> Array:
        """Map local points (..., 2) to world points (..., 2)."""
        return self.center + np.asarray(local, dtype=np.float32) @ self.matrix.T

    def of(self, points: Array) -> Array:
        """Local coordinates (..., 2) of world points (..., 2)."""
        return (points - self.center) @ self.inverse.T


@dataclass(frozen=True)
class _Head:
    """A head in a given pose: ellipsoids, the 3D rotation and the image-plane similarity."""

    identity: FaceIdentity
    origin: Array  # (2,) world position of the cranium centre
    linear: Array  # (2, 2) scale * in-plane rotation
    scale: float
    roll: float
    rot3: Array  # (3, 3) pitch @ yaw
    yaw_rot: Array  # (3, 3) yaw only (for the facing rule)

    def ellipsoids(self) -> tuple[tuple[Array, Array], tuple[Array, Array]]:
        """(centre, semi-axes) of the cranium and the jaw, in head units."""
        ident = self.identity
        cranium = (np.zeros(3), np.array([ident.head_width, 1.0, ident.head_depth]))
        jaw = (np.array([0.0, ident.jaw_drop, 0.0]),
               np.array([ident.jaw_width, ident.jaw_height, ident.head_depth * 0.85]))
        return cranium, jaw

    def surface(self, u: float, v: float) -> tuple[float, float, float]:
        """Front-surface depth ``z`` and its gradient ``(dz/du, dz/dv)`` at face-plane point ``(u, v)``."""
        best = (-1.0, 0.0, 0.0)
        for center, axes in self.ellipsoids():
            du, dv = (u - center[0]) / axes[0], (v - center[1]) / axes[1]
            root = float(np.sqrt(max(1.0 - du * du - dv * dv, 0.0)))
            z = axes[2] * root
            if z > best[0]:
                safe = max(root, 0.25)
                best = (z, -axes[2] * du / (axes[0] * safe), -axes[2] * dv / (axes[1] * safe))
        return best

    def project(self, point3: Array) -> Array:
        """World position (2,) of a head-space 3D point."""
        return self.origin + self.linear @ (self.rot3 @ point3)[:2]

    def place(self, u: float, v: float, lift: float = 0.0) -> _Local:
        """The local frame of a feature anchored on the surface at ``(u, v)``, raised by ``lift``."""
        z, zu, zv = self.surface(u, v)
        tangent = np.array([[1.0, 0.0], [0.0, 1.0], [zu, zv]])
        jac = self.linear @ (self.rot3 @ tangent)[:2]
        center = self.project(np.array([u, v, z + lift]))
        singular = np.linalg.svd(jac, compute_uv=False)
        normal = self.yaw_rot @ np.array([-zu, -zv, 1.0])
        inverse = np.linalg.inv(jac).astype(np.float32)
        return _Local(center.astype(np.float32), jac.astype(np.float32), inverse,
                      float(np.sqrt(singular[0] * singular[1])), float(singular[0]), bool(normal[2] > 0.0))

    def silhouette(self, center3: Array, axes3: Array) -> tuple[Array, tuple[float, float], float]:
        """Exact outline of an ellipsoid under the head transform: world centre, semi-axes and angle."""
        cov3 = self.rot3 @ np.diag(np.square(axes3)) @ self.rot3.T
        cov = self.linear @ cov3[:2, :2] @ self.linear.T
        values, vectors = np.linalg.eigh(cov)
        major = vectors[:, 1]
        center = self.project(center3)
        axes = (float(np.sqrt(values[1])), float(np.sqrt(values[0])))
        return center, axes, float(np.arctan2(major[1], major[0]))


@dataclass(frozen=True)
class _Expression:
    """Pose values after clipping to their valid ranges."""

    gaze: Array
    eyelid: float
    brow: float
    mouth_open: float
    smile: float


def _rotation3(yaw: float, pitch: float) -> tuple[Array, Array]:
    """(pitch @ yaw, yaw) rotation matrices; +yaw turns the face towards +x, +pitch towards +y (down)."""
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    yaw_m = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    pitch_m = np.array([[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]])
    return pitch_m @ yaw_m, yaw_m


def _head(identity: FaceIdentity, pose: Array) -> _Head:
    """The posed head of ``identity`` (pose values clipped as documented in the module)."""
    scale = identity.scale * float(np.exp(np.clip(pose[_P["log_scale"]], -1.5, 1.5)))
    roll = float(pose[_P["roll"]])
    c, s = np.cos(roll), np.sin(roll)
    linear = scale * np.array([[c, -s], [s, c]])
    origin = np.array([identity.center_x + pose[_P["tx"]], identity.center_y + pose[_P["ty"]]])
    rot3, yaw_rot = _rotation3(float(np.clip(pose[_P["yaw"]], -0.7, 0.7)),
                               float(np.clip(pose[_P["pitch"]], -0.5, 0.5)))
    return _Head(identity, origin, linear, scale, roll, rot3, yaw_rot)


def _expression(pose: Array) -> _Expression:
    gaze = np.array([pose[_P["gaze_x"]], pose[_P["gaze_y"]]], dtype=np.float64)
    norm = float(np.linalg.norm(gaze))
    if norm > 1.0:
        gaze = gaze / norm
    return _Expression(
        gaze=gaze,
        eyelid=float(np.clip(pose[_P["eyelid"]], 0.0, 1.25)),
        brow=float(np.clip(pose[_P["brow"]], -1.0, 1.0)),
        mouth_open=float(np.clip(pose[_P["mouth_open"]], 0.0, 1.0)),
        smile=float(np.clip(pose[_P["smile"]], -1.0, 1.0)),
    )


@dataclass(frozen=True)
class _EyeShape:
    width: float
    height: float  # open half-height
    iris: Array  # (2,) iris centre offset
    iris_radius: float
    pupil_radius: float


def _eye_shape(identity: FaceIdentity, expr: _Expression) -> _EyeShape:
    rx, ry = identity.eye_width, identity.eye_open
    ir = identity.iris_radius
    reach = np.array([max(rx - ir, 0.2 * rx) * 0.9, max(ry - ir, 0.15 * ry) * 0.8])
    return _EyeShape(rx, max(ry * expr.eyelid, 1e-3), expr.gaze * reach, ir, ir * identity.pupil_fraction)


@dataclass(frozen=True)
class _MouthShape:
    half_width: float
    corner_v: float  # v of the corners (negative = up)
    upper: float  # inner upper-lip height at the centre line (negative = up)
    lower: float  # inner lower-lip height at the centre line


def _mouth_shape(identity: FaceIdentity, expr: _Expression) -> _MouthShape:
    opening = expr.mouth_open * identity.mouth_open_max
    return _MouthShape(
        half_width=identity.mouth_width * (1.0 + 0.15 * max(expr.smile, 0.0) - 0.1 * expr.mouth_open),
        corner_v=-_SMILE_LIFT * expr.smile,
        upper=-0.25 * opening,
        lower=0.75 * opening,
    )


def _brow_anchor(identity: FaceIdentity, expr: _Expression, side: float) -> tuple[float, float]:
    v = identity.eye_height - identity.eye_open - identity.brow_gap - _BROW_LIFT * expr.brow
    return side * identity.eye_spacing, v


def _chin_anchor(identity: FaceIdentity) -> tuple[float, float]:
    return 0.0, identity.jaw_drop + 0.93 * identity.jaw_height


@dataclass(frozen=True)
class _Layout:
    """Everything a frame needs: the head, clipped expression, feature frames and world keypoints."""

    head: _Head
    expr: _Expression
    eyes: tuple[_Local, _Local]
    brows: tuple[_Local, _Local]
    nose: _Local
    mouth: _Local
    chin: _Local
    eye_shape: _EyeShape
    mouth_shape: _MouthShape
    keypoints: Array  # (K, 2) world
    visibility: Array  # (K,) bool


def _layout(identity: FaceIdentity, pose: Array) -> _Layout:
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape != (len(POSE_NAMES),):
        raise ValueError(f"face pose must have shape ({len(POSE_NAMES)},), got {pose.shape}")
    head = _head(identity, pose)
    expr = _expression(pose)
    eye_shape = _eye_shape(identity, expr)
    mouth_shape = _mouth_shape(identity, expr)
    eyes = tuple(head.place(side * identity.eye_spacing, identity.eye_height) for side in (-1.0, 1.0))
    brows = tuple(head.place(*_brow_anchor(identity, expr, side)) for side in (-1.0, 1.0))
    nose = head.place(0.0, identity.nose_y, identity.nose_length)
    mouth = head.place(0.0, identity.mouth_y)
    chin = head.place(*_chin_anchor(identity))
    ms = mouth_shape
    corner = eye_shape.width + 0.5 * _EYE_LINE  # the outer eye corner, on the middle of the eye outline
    points = [
        eyes[0].center, eyes[1].center,
        eyes[0].to_world(eye_shape.iris), eyes[1].to_world(eye_shape.iris),
        eyes[0].to_world((-corner, 0.0)), eyes[1].to_world((corner, 0.0)),
        brows[0].to_world((0.0, -identity.brow_arch)), brows[1].to_world((0.0, -identity.brow_arch)),
        nose.center,
        mouth.to_world((-ms.half_width, ms.corner_v)), mouth.to_world((ms.half_width, ms.corner_v)),
        mouth.to_world((0.0, ms.upper)), mouth.to_world((0.0, ms.lower)),
        chin.center,
    ]
    keypoints = np.stack([np.asarray(p, dtype=np.float32) for p in points])
    facing = [eyes[0].facing, eyes[1].facing, eyes[0].facing, eyes[1].facing, eyes[0].facing, eyes[1].facing,
              brows[0].facing, brows[1].facing, nose.facing, mouth.facing, mouth.facing, mouth.facing,
              mouth.facing, chin.facing]
    visibility = np.all(np.abs(keypoints) <= 1.0, axis=1) & np.array(facing)
    gx, gy = eye_shape.iris
    room = eye_shape.height - eye_shape.pupil_radius
    pupil_open = room > 0 and (gx / eye_shape.width) ** 2 + (gy / room) ** 2 < 1.0
    visibility[2:4] &= pupil_open
    return _Layout(head, expr, eyes, brows, nose, mouth, chin, eye_shape, mouth_shape, keypoints, visibility)


# ------------------------------------------------------------------------------------------------ drawing
def _ellipse(q: Array, ax: float, ay: float) -> Array:
    """Approximate signed distance (local units) from local points q (..., 2) to an axis-aligned ellipse
    centred at the origin."""
    kx, ky = q[..., 0] / ax, q[..., 1] / ay
    k0 = np.sqrt(kx * kx + ky * ky)
    k1 = np.sqrt((kx / ax) ** 2 + (ky / ay) ** 2)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-6)


def _smooth_min(a: Array, b: Array, k: float) -> Array:
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def _shade(color: Color, factor: float) -> Color:
    return tuple(float(np.clip(c * factor, 0.0, 1.0)) for c in color)  # type: ignore[return-value]


def _feature_window(canvas: Canvas, frame: _Local, extent: float) -> tuple[tuple[slice, slice], Array]:
    window = canvas.region(frame.center, extent * frame.reach)
    return window, frame.of(canvas.points(window))


def _draw_body(canvas: Canvas, layout: _Layout) -> None:
    head = layout.head
    ident = head.identity
    s = head.scale
    bottom = ident.jaw_drop + ident.jaw_height
    shoulders = head.origin + np.array([0.0, s * (bottom + 1.05)])
    window = canvas.region(shoulders, s * 1.7)
    pts = canvas.points(window)
    canvas.paint(sdf_ellipse(pts, shoulders, (s * 1.6, s * 0.75)), ident.shirt_color, window=window)
    neck_center = head.origin + head.linear @ np.array([0.0, bottom + 0.1])
    half = (s * 0.42 * ident.jaw_width, s * 0.55)
    window = canvas.region(neck_center, s * 0.8)
    sdf = sdf_box(canvas.points(window), neck_center, half, angle=head.roll, corner_radius=s * 0.1)
    canvas.paint(sdf, _shade(ident.skin.color_a, 0.8), window=window)


def _draw_back_hair(canvas: Canvas, head: _Head) -> None:
    ident = head.identity
    if ident.hair_style == "long":
        center = head.project(np.array([0.0, 0.45, -0.4 * ident.head_depth]))
        half = (head.scale * ident.head_width * (1.12 + ident.hair_volume), head.scale * 1.25)
        window = canvas.region(center, float(np.hypot(*half)))
        sdf = sdf_box(canvas.points(window), center, half, angle=head.roll, corner_radius=head.scale * 0.6)
        canvas.paint(sdf, _shade(ident.hair_color, 0.85), window=window)
    elif ident.hair_style == "bun":
        center = head.project(np.array([0.0, -1.05 - ident.hair_volume, -0.25 * ident.head_depth]))
        radius = head.scale * (0.33 + ident.hair_volume)
        window = canvas.region(center, radius)
        canvas.paint(sdf_circle(canvas.points(window), center, radius), ident.hair_color, window=window)


def _draw_ears(canvas: Canvas, head: _Head) -> None:
    ident = head.identity
    if not ident.ears:
        return
    for side in (-1.0, 1.0):
        center = head.project(np.array([side * ident.head_width * 0.97, ident.eye_height + 0.15, 0.0]))
        axes = (head.scale * ident.ear_size * 0.6, head.scale * ident.ear_size)
        window = canvas.region(center, axes[1])
        pts = canvas.points(window)
        canvas.paint(sdf_ellipse(pts, center, axes, head.roll), _shade(ident.skin.color_a, 0.92),
                     window=window)
        inner = (axes[0] * 0.5, axes[1] * 0.6)
        canvas.paint(sdf_ellipse(pts, center, inner, head.roll), _shade(ident.skin.color_a, 0.75),
                     window=window)


def _draw_head(canvas: Canvas, head: _Head) -> None:
    (c_center, c_axes), (j_center, j_axes) = head.ellipsoids()
    cranium = head.silhouette(c_center, c_axes)
    jaw = head.silhouette(j_center, j_axes)
    reach = 1.0 + head.identity.jaw_drop + head.identity.jaw_height
    window = canvas.region(head.origin, head.scale * reach)
    pts = canvas.points(window)
    sdf = _smooth_min(sdf_ellipse(pts, *cranium), sdf_ellipse(pts, *jaw), 0.15 * head.scale)
    local = (pts - head.origin) @ np.linalg.inv(head.linear).T.astype(np.float32)
    canvas.paint_textured(sdf, head.identity.skin, local, window=window)


def _draw_cheeks(canvas: Canvas, head: _Head) -> None:
    ident = head.identity
    if ident.cheek_opacity <= 0.0:
        return
    for side in (-1.0, 1.0):
        frame = head.place(side * (ident.eye_spacing + 0.05), ident.eye_height + 0.33)
        window, q = _feature_window(canvas, frame, 0.2)
        sdf = _ellipse(q, 0.14, 0.08) * frame.sigma
        canvas.paint(sdf, ident.cheek_color, ident.cheek_opacity, window=window)


def _hairline(head: _Head) -> tuple[Array, Array]:
    """The hairline as a curve in the head's image plane (roll, scale and translation undone): sorted x
    (n,) and y (n,) of the projected 3D hairline samples whose surface faces the camera."""
    ident = head.identity
    u = np.linspace(-1.0, 1.0, 97) * ident.head_width
    v = ident.hairline + ident.hair_wave * np.abs(np.sin(ident.hair_wave_freq * u)) \
        + 0.55 * (u / ident.head_width) ** 4
    inside = np.maximum(1.0 - (u / ident.head_width) ** 2 - v * v, 0.0)
    z = ident.head_depth * np.sqrt(inside)
    projected = np.stack([u, v, z], axis=-1) @ head.rot3.T
    # A point faces the camera when its (rotated) ellipsoid normal has a positive depth component.
    normals = np.stack([u / ident.head_width**2, v, z / ident.head_depth**2], axis=-1) @ head.rot3.T
    keep = normals[:, 2] > 0.0
    xs, ys = projected[keep, 0], projected[keep, 1]
    order = np.argsort(xs)
    return xs[order], ys[order]


def _draw_hair_cap(canvas: Canvas, head: _Head) -> None:
    ident = head.identity
    if ident.hair_style == "none":
        return
    grow = 1.06 + ident.hair_volume
    center, axes, angle = head.silhouette(np.array([0.0, -ident.hair_volume, 0.0]),
                                          np.array([ident.head_width * grow, grow, ident.head_depth * grow]))
    window = canvas.region(center, axes[0])
    pts = canvas.points(window)
    plane = (pts - head.origin) @ np.linalg.inv(head.linear).T.astype(np.float32)
    xs, ys = _hairline(head)
    if xs.size == 0:  # cannot happen within the clipped yaw/pitch ranges; keep the cap uncut
        xs, ys = np.zeros(1), np.full(1, 2.0)
    cut = (plane[..., 1] - np.interp(plane[..., 0], xs, ys).astype(np.float32)) * head.scale
    canvas.paint(np.maximum(sdf_ellipse(pts, center, axes, angle), cut), ident.hair_color, window=window)


def _draw_brows(canvas: Canvas, layout: _Layout) -> None:
    ident = layout.head.identity
    length, arch = ident.brow_length, ident.brow_arch
    tilt = ident.brow_tilt - 0.3 * layout.expr.brow
    for side, frame in zip((-1.0, 1.0), layout.brows, strict=True):
        inner = np.array([-side * length, length * np.sin(tilt)], dtype=np.float32)
        outer = np.array([side * length, -length * np.sin(tilt) * 0.5], dtype=np.float32)
        mid = np.array([0.0, -arch], dtype=np.float32)
        window, q = _feature_window(canvas, frame, length * 1.3 + ident.brow_thickness)
        t = ident.brow_thickness
        sdf = np.minimum(sdf_capsule(q, inner, mid, t, t * 0.95),
                         sdf_capsule(q, mid, outer, t * 0.95, t * 0.6))
        canvas.paint(sdf * frame.sigma, ident.brow_color, window=window)


def _draw_eyes(canvas: Canvas, layout: _Layout) -> None:
    ident = layout.head.identity
    shape = layout.eye_shape
    highlight = shape.iris + np.array([-0.35, -0.35], dtype=np.float32) * shape.iris_radius
    for frame in layout.eyes:
        window, q = _feature_window(canvas, frame, shape.width + 2 * _EYE_LINE)
        sigma = frame.sigma
        canvas.paint(_ellipse(q, shape.width + _EYE_LINE, shape.height + _EYE_LINE) * sigma, ident.line_color,
                     window=window)
        white = _ellipse(q, shape.width, shape.height)
        canvas.paint(white * sigma, _WHITE, window=window)
        iris = np.maximum(sdf_circle(q, shape.iris, shape.iris_radius), white)
        canvas.paint(iris * sigma, ident.iris_color, window=window)
        pupil = np.maximum(sdf_circle(q, shape.iris, shape.pupil_radius), white)
        canvas.paint(pupil * sigma, _PUPIL, window=window)
        glint = np.maximum(sdf_circle(q, highlight, shape.iris_radius * 0.22), white)
        canvas.paint(glint * sigma, _WHITE, 0.9, window=window)


def _draw_nose(canvas: Canvas, layout: _Layout) -> None:
    ident = layout.head.identity
    frame = layout.nose
    size = ident.nose_size
    window, q = _feature_window(canvas, frame, 0.3 + size)
    if ident.nose_style == "wedge":
        sdf = _smooth_min(sdf_capsule(q, (0.0, -0.25), (0.0, 0.0), 0.015, size * 0.55),
                          _ellipse(q, size * 1.1, size * 0.55), 0.04)
    elif ident.nose_style == "round":
        sdf = sdf_circle(q, (0.0, 0.0), size * 1.2)
    else:
        sdf = _ellipse(q, size, size * 0.75)
    canvas.paint(sdf * frame.sigma, ident.nose_color, window=window)


def _mouth_sdf(q: Array, shape: _MouthShape, pad: float) -> tuple[Array, Array]:
    """(mouth region grown by ``pad``, inner opening) signed distances in local units."""
    u, v = q[..., 0], q[..., 1]
    w = shape.half_width
    r = np.clip(u / w, -1.0, 1.0)
    bulge = 1.0 - r * r
    center = shape.corner_v * r * r
    upper = center + shape.upper * bulge
    lower = center + shape.lower * bulge
    slope_c = 2.0 * shape.corner_v * r / w
    d_upper = (upper - v) / np.sqrt(1.0 + (slope_c - 2.0 * shape.upper * r / w) ** 2)
    d_lower = (v - lower) / np.sqrt(1.0 + (slope_c - 2.0 * shape.lower * r / w) ** 2)
    inner = np.maximum(np.maximum(d_upper, d_lower), np.abs(u) - w)
    lips = np.maximum(np.maximum(d_upper, d_lower) - pad, np.abs(u) - w - pad)
    return lips, inner


def _draw_mouth(canvas: Canvas, layout: _Layout) -> None:
    ident = layout.head.identity
    frame, shape = layout.mouth, layout.mouth_shape
    extent = shape.half_width + ident.lip_thickness + abs(shape.corner_v) + shape.lower
    window, q = _feature_window(canvas, frame, extent)
    sigma = frame.sigma
    lips, inner = _mouth_sdf(q, shape, ident.lip_thickness)
    canvas.paint(lips * sigma, ident.lip_color, window=window)
    if shape.lower - shape.upper <= 1e-4:
        return
    canvas.paint(inner * sigma, _MOUTH_INSIDE, window=window)
    tongue = np.maximum(_ellipse(q - np.array([0.0, shape.lower], dtype=np.float32), 0.6 * shape.half_width,
                                 0.12), inner)
    canvas.paint(tongue * sigma, _TONGUE, window=window)
    u = np.clip(q[..., 0] / shape.half_width, -1.0, 1.0)
    teeth_edge = shape.corner_v * u * u + shape.upper * (1.0 - u * u) + _TEETH
    teeth = np.maximum(q[..., 1] - teeth_edge, inner)
    canvas.paint(teeth * sigma, _WHITE, window=window)


def _draw_face(canvas: Canvas, layout: _Layout) -> None:
    head = layout.head
    _draw_body(canvas, layout)
    _draw_back_hair(canvas, head)
    _draw_ears(canvas, head)
    _draw_head(canvas, head)
    _draw_cheeks(canvas, head)
    _draw_hair_cap(canvas, head)
    _draw_brows(canvas, layout)
    _draw_eyes(canvas, layout)
    _draw_nose(canvas, layout)
    _draw_mouth(canvas, layout)


# ------------------------------------------------------------------------------------------------- motion
def _blink(t: float, period: float, offset: float, duration: float = 0.24) -> float:
    """Eyelid closure in [0, 1] of a periodic blink train: a raised-cosine dip of ``duration`` seconds."""
    phase = (t - offset) % period
    if phase >= duration:
        return 0.0
    return float(0.5 - 0.5 * np.cos(2.0 * np.pi * phase / duration))


def _wave(t: float, freq: float, phase: float) -> float:
    return float(np.sin(2.0 * np.pi * freq * t + phase))


def _rise(t: float, freq: float, phase: float) -> float:
    """A smooth 0..1..0 envelope with frequency ``freq``."""
    return float(0.5 - 0.5 * np.cos(2.0 * np.pi * freq * t + phase))


_IDLE: tuple[tuple[str, float, float], ...] = (  # (pose entry, amplitude, frequency Hz)
    ("tx", 0.02, 0.23), ("ty", 0.015, 0.17), ("roll", 0.04, 0.19), ("yaw", 0.06, 0.27), ("pitch", 0.04, 0.21),
    ("gaze_x", 0.15, 0.33), ("gaze_y", 0.1, 0.29), ("brow", 0.08, 0.37), ("log_scale", 0.015, 0.13),
)


def _action(motion: FaceMotion, t: float, pose: Array) -> None:
    """Add the action-specific trajectory of ``motion`` at time ``t`` to ``pose`` in place."""
    a, f, ph, ph2 = motion.amplitude, motion.speed, motion.phase, motion.phase2
    act = motion.action
    if act == "talk":
        syllables = 0.55 + 0.45 * _rise(t, 0.31, ph2)
        pose[_P["mouth_open"]] += 0.85 * a * _rise(t, f, ph) * syllables
        pose[_P["brow"]] += 0.15 * a * _wave(t, 0.45, ph2)
        pose[_P["pitch"]] += 0.04 * _wave(t, f * 0.5, ph)
    elif act == "smile":
        e = a * _rise(t, f, ph)
        pose[_P["smile"]] += e
        pose[_P["mouth_open"]] += 0.2 * e
        pose[_P["eyelid"]] -= 0.25 * e
        pose[_P["brow"]] += 0.15 * e
    elif act == "blink_look":
        pose[_P["gaze_x"]] += a * _wave(t, f, ph)
        pose[_P["gaze_y"]] += 0.7 * a * _wave(t, 0.63 * f, ph2)
        pose[_P["yaw"]] += 0.1 * a * _wave(t, f, ph)
        pose[_P["eyelid"]] -= _blink(t, motion.blink_period * 0.55 + 0.3, motion.blink_offset + 0.7)
    elif act == "nod":
        pose[_P["pitch"]] += 0.32 * a * _wave(t, f, ph)
        pose[_P["ty"]] += 0.02 * a * _wave(t, f, ph)
    elif act == "shake":
        pose[_P["yaw"]] += 0.45 * a * _wave(t, f, ph)
    elif act == "tilt":
        pose[_P["roll"]] += 0.35 * a * _wave(t, f, ph)
    elif act == "surprise":
        e = a * _rise(t, f, ph)
        pose[_P["brow"]] += e
        pose[_P["eyelid"]] += 0.25 * e
        pose[_P["mouth_open"]] += 0.6 * e
        pose[_P["log_scale"]] += 0.04 * e
    elif act == "sway":
        pose[_P["tx"]] += 0.2 * a * _wave(t, f, ph)
        pose[_P["ty"]] += 0.06 * a * _wave(t, 2.0 * f, ph2)
        pose[_P["log_scale"]] += 0.12 * a * _wave(t, 0.7 * f, ph2)
    else:
        raise ValueError(f"unknown face action {act!r}")


_SPEEDS: dict[str, tuple[float, float]] = {
    "talk": (1.8, 2.8), "smile": (0.3, 0.6), "blink_look": (0.3, 0.6), "nod": (0.6, 1.1),
    "shake": (0.4, 0.8), "tilt": (0.3, 0.6), "surprise": (0.3, 0.5), "sway": (0.3, 0.6),
}

# motion=large: the same draws, scaled. The idle head motion (translation, roll, scale, yaw, pitch, and with them
# gaze and brows) is multiplied by _LARGE_IDLE for every action, and each action's amplitude by its factor here.
# Yaw and pitch stay within the renderer's clip (+-0.7, +-0.5 rad): the largest yaw is shake's
# 0.45 * 1.0 + 0.06 * _LARGE_IDLE = 0.69, the largest pitch nod's 0.32 * 1.0 + 0.04 * _LARGE_IDLE = 0.48, so these
# two actions keep their amplitude and move more through the idle translation, roll and scale; tilt (roll) and
# sway (translation and scale) have no clip and double. Expressions (talk, smile, surprise, blink_look) are near
# their clips already and keep their amplitude.
_LARGE_IDLE = 4.0
_LARGE_AMPLITUDE: dict[str, float] = {
    "talk": 1.0, "smile": 1.0, "blink_look": 1.0, "nod": 1.0, "shake": 1.0, "tilt": 2.0, "surprise": 1.0,
    "sway": 2.0,
}


def _enlarge(motion: FaceMotion) -> FaceMotion:
    """``motion`` with the ``large`` setting's wider head motion (see :data:`_LARGE_AMPLITUDE`)."""
    return dataclasses.replace(motion, amplitude=motion.amplitude * _LARGE_AMPLITUDE[motion.action],
                               idle_amount=motion.idle_amount * _LARGE_IDLE)


# ------------------------------------------------------------------------------------------------- family
def _pick(rng: np.random.Generator, options: tuple[Color, ...]) -> Color:
    return options[int(rng.integers(len(options)))]


def _jitter(rng: np.random.Generator, color: Color, amount: float = 0.05) -> Color:
    return tuple(float(v) for v in np.clip(np.asarray(color) + rng.uniform(-amount, amount, 3), 0.0, 1.0))  # type: ignore[return-value]


def _far_from(rng: np.random.Generator, options: tuple[Color, ...], avoid: Color, distance: float) -> Color:
    """A jittered colour from ``options`` at least ``distance`` (Euclidean RGB) from ``avoid`` if possible."""
    far = [c for c in options if np.linalg.norm(np.subtract(c, avoid)) >= distance] or list(options)
    return _jitter(rng, far[int(rng.integers(len(far)))])


class FaceFamily:
    """Cartoon faces that talk, smile, blink, look around, nod, shake, tilt and sway (see the module
    docstring for the pose layout, keypoints and visibility rule)."""

    name = "faces"
    keypoint_names = KEYPOINT_NAMES
    action_names = ACTION_NAMES
    pose_names = POSE_NAMES
    fps = 25.0

    def sample_identity(self, rng: np.random.Generator) -> FaceIdentity:
        """Draw a face identity (head shape, colours, features, background, framing) from ``rng``."""
        fantasy = rng.random() < 0.12
        skin_color = _jitter(rng, _pick(rng, _FANTASY_SKIN if fantasy else _SKIN_TONES), 0.04)
        skin = Texture(kind="noise" if rng.random() < 0.35 else "solid", color_a=skin_color,
                       color_b=_shade(skin_color, float(rng.uniform(0.8, 0.9))),
                       frequency=float(rng.uniform(5.0, 10.0)), seed=int(rng.integers(0, 2**31 - 1)))
        hair = _far_from(rng, _HAIR_COLORS, skin_color, 0.35)
        head_width = float(rng.uniform(0.72, 0.92))
        eye_width = float(rng.uniform(0.13, 0.19))
        eye_open = float(rng.uniform(0.09, 0.14))
        iris = float(rng.uniform(0.6, 0.85)) * min(eye_open * 1.15, eye_width * 0.75)
        line = _shade(hair, 0.5) if sum(hair) < 1.2 else (0.2, 0.14, 0.1)
        return FaceIdentity(
            head_width=head_width,
            head_depth=head_width * float(rng.uniform(0.72, 0.88)),
            jaw_width=head_width * float(rng.uniform(0.62, 0.9)),
            jaw_height=float(rng.uniform(0.45, 0.6)),
            jaw_drop=float(rng.uniform(0.42, 0.58)),
            skin=skin,
            hair_style=str(rng.choice(HAIR_STYLES)),
            hair_color=hair,
            hairline=float(rng.uniform(-0.72, -0.58)),
            hair_wave=float(rng.uniform(0.0, 0.18)),
            hair_wave_freq=float(rng.uniform(4.0, 12.0)),
            hair_volume=float(rng.uniform(0.0, 0.1)),
            ears=bool(rng.random() < 0.7),
            ear_size=float(rng.uniform(0.16, 0.24)),
            eye_spacing=float(rng.uniform(0.28, 0.38)),
            eye_height=float(rng.uniform(-0.12, 0.02)),
            eye_width=eye_width,
            eye_open=eye_open,
            iris_radius=iris,
            pupil_fraction=float(rng.uniform(0.5, 0.7)),
            iris_color=_jitter(rng, _pick(rng, _IRIS_COLORS)),
            line_color=line,
            brow_gap=float(rng.uniform(0.07, 0.13)),
            brow_length=float(rng.uniform(0.1, 0.15)),
            brow_thickness=float(rng.uniform(0.028, 0.045)),
            brow_tilt=float(rng.uniform(-0.25, 0.25)),
            brow_arch=float(rng.uniform(0.0, 0.05)),
            brow_color=_shade(hair, 0.7),
            nose_style=str(rng.choice(NOSE_STYLES)),
            nose_y=float(rng.uniform(0.2, 0.3)),
            nose_length=float(rng.uniform(0.08, 0.22)),
            nose_size=float(rng.uniform(0.06, 0.09)),
            nose_color=_shade(skin_color, float(rng.uniform(0.7, 0.82))),
            mouth_y=float(rng.uniform(0.52, 0.62)),
            mouth_width=float(rng.uniform(0.2, 0.3)),
            mouth_open_max=float(rng.uniform(0.22, 0.3)),
            lip_thickness=float(rng.uniform(0.025, 0.04)),
            lip_color=_jitter(rng, (0.62, 0.2, 0.22), 0.08),
            cheek_opacity=float(rng.choice([0.0, rng.uniform(0.25, 0.45)])),
            cheek_color=(0.95, 0.45, 0.45),
            shirt_color=tuple(float(v) for v in rng.uniform(0.1, 0.9, 3)),  # type: ignore[arg-type]
            background=random_background(rng, max_clutter=4),
            scale=float(rng.uniform(0.5, 0.6)),
            center_x=float(rng.uniform(-0.1, 0.1)),
            center_y=float(rng.uniform(-0.2, -0.08)),
        )

    def sample_motion(self, rng: np.random.Generator, action: str | None = None,
                      motion: str = "default") -> FaceMotion:
        """Draw a motion of class ``action`` (uniform over :data:`ACTION_NAMES` if None). ``motion="large"``
        makes the same draws and widens the head motion: the idle translation, roll, scale change, yaw and pitch
        (with gaze and brows) times :data:`_LARGE_IDLE`, the action's amplitude times its
        :data:`_LARGE_AMPLITUDE` factor (larger tilts and sways)."""
        if motion not in ("default", "large"):
            raise ValueError(f"unknown motion setting {motion!r}; choose default or large")
        if action is None:
            action = str(rng.choice(ACTION_NAMES))
        if action not in ACTION_NAMES:
            raise ValueError(f"unknown face action {action!r}; choose one of {', '.join(ACTION_NAMES)}")
        low, high = _SPEEDS[action]
        blink_period = float(rng.uniform(2.0, 5.0))
        drawn = FaceMotion(
            action=action,
            speed=float(rng.uniform(low, high)),
            amplitude=float(rng.uniform(0.5, 1.0)),
            phase=float(rng.uniform(0.0, 2.0 * np.pi)),
            phase2=float(rng.uniform(0.0, 2.0 * np.pi)),
            blink_period=blink_period,
            blink_offset=float(rng.uniform(0.0, blink_period)),
            idle_phases=tuple(float(v) for v in rng.uniform(0.0, 2.0 * np.pi, len(_IDLE))),
            idle_amount=float(rng.uniform(0.5, 1.0)),
            rest_smile=float(rng.uniform(-0.15, 0.3)),
            rest_brow=float(rng.uniform(-0.2, 0.2)),
            rest_gaze_x=float(rng.uniform(-0.2, 0.2)),
            rest_gaze_y=float(rng.uniform(-0.15, 0.15)),
        )
        return _enlarge(drawn) if motion == "large" else drawn

    def pose(self, motion: FaceMotion, time: float) -> Array:
        """Pose (12,) float64 of ``motion`` at ``time`` seconds: resting expression + idle motion + blinks +
        the action's trajectory (layout in :data:`POSE_NAMES`)."""
        t = float(time)
        pose = np.zeros(len(POSE_NAMES), dtype=np.float64)
        pose[_P["eyelid"]] = 1.0
        pose[_P["smile"]] = motion.rest_smile
        pose[_P["brow"]] = motion.rest_brow
        pose[_P["gaze_x"]] = motion.rest_gaze_x
        pose[_P["gaze_y"]] = motion.rest_gaze_y
        for (entry, amplitude, freq), phase in zip(_IDLE, motion.idle_phases, strict=True):
            pose[_P[entry]] += motion.idle_amount * amplitude * _wave(t, freq, phase)
        pose[_P["eyelid"]] -= _blink(t, motion.blink_period, motion.blink_offset)
        _action(motion, t, pose)
        return pose

    def relative_pose(self, source_first: Array, driving_first: Array, driving_now: Array) -> Array:
        """Additive transfer (log-scale makes scale multiplicative); bounded entries are clipped in render."""
        return additive_relative_pose(source_first, driving_first, driving_now)

    def keypoints(self, identity: FaceIdentity, pose: Array, size: int) -> tuple[Array, Array]:
        """Ground truth without rendering: keypoints (K, 2) float32 in pixels and visibility (K,) bool."""
        layout = _layout(identity, pose)
        return normalized_to_pixels(layout.keypoints, size), layout.visibility

    def render(self, identity: FaceIdentity, pose: Array, size: int) -> RenderedFrame:
        """Render ``identity`` in ``pose`` as a (size, size, 3) float32 image with keypoints (K, 2) and
        visibility (K,)."""
        layout = _layout(identity, pose)
        canvas = Canvas(size, cached_background(identity.background, size), grid=cached_world_grid(size))
        _draw_face(canvas, layout)
        keypoints = normalized_to_pixels(layout.keypoints, size)
        return RenderedFrame(canvas.result(), keypoints, layout.visibility.copy())
