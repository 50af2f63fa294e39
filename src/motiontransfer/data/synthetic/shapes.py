"""Moving shapes: a minimal procedural family for smoke tests.

A scene holds up to :data:`MAX_SHAPES` shapes (circle, box, triangle, pentagon, hexagon) with solid or
textured fills over a background; an identity draws 2..4 of them (the first ``count`` slots, back to front).
Each slot has a base placement in the identity and moves by an offset from the pose:

Pose vector (float64, ``4 * MAX_SHAPES``): for each slot ``i``, ``[dx_i, dy_i, angle_i, log_scale_i]`` (world
units, radians, log of the size factor), added to the slot's base placement. Slots without a shape still have
a pose (motions do not depend on the identity). Relative transfer is additive.

Keypoints: per slot, the centre and the boundary point at local angle 0 (the midpoint of the edge a polygon
or box has there), so rotation and scale are visible; circles carry a small contrasting dot on that radius so
their rotation shows in the image too. Visibility is False for absent slots, for points outside the world
square [-1, 1]^2 and for points covered by a later (front) shape.
"""

from __future__ import annotations

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
    random_texture,
    sdf_box,
    sdf_circle,
    sdf_regular_polygon,
    to_local,
)
from motiontransfer.ops.coordinates import normalized_to_pixels

Array = np.ndarray

MAX_SHAPES = 4
SHAPE_KINDS: tuple[str, ...] = ("circle", "box", "triangle", "pentagon", "hexagon")
ACTION_NAMES: tuple[str, ...] = ("drift", "spin", "bounce", "orbit", "pulse")
POSE_NAMES: tuple[str, ...] = tuple(
    f"{name}_{i}" for i in range(MAX_SHAPES) for name in ("dx", "dy", "angle", "log_scale")
)
KEYPOINT_NAMES: tuple[str, ...] = tuple(
    f"shape{i}_{part}" for i in range(MAX_SHAPES) for part in ("center", "edge")
)
_SIDES = {"triangle": 3, "pentagon": 5, "hexagon": 6}
_SPEEDS: dict[str, tuple[float, float]] = {
    "drift": (0.2, 0.4), "spin": (0.2, 0.45), "bounce": (0.4, 0.8),
    "orbit": (0.25, 0.45), "pulse": (0.3, 0.7),
}


@dataclass(frozen=True)
class ShapeSpec:
    """One shape slot: kind, size (``radius``: circumradius, or half-width for a box whose half-height is
    ``radius * aspect``), fill texture and base placement (world centre ``x, y``, ``angle`` radians)."""

    kind: str
    radius: float
    aspect: float
    texture: Texture
    x: float
    y: float
    angle: float


@dataclass(frozen=True)
class ShapesIdentity:
    """A scene: :data:`MAX_SHAPES` slots of which the first ``count`` are drawn, and a background."""

    shapes: tuple[ShapeSpec, ...]
    count: int
    background: Background


@dataclass(frozen=True)
class ShapesMotion:
    """How the shapes move: action class, speed (Hz), amplitude (0.5..1), and per-slot phases, directions
    (radians; the spin direction is the sign of ``cos``) and idle-wobble phases."""

    action: str
    speed: float
    amplitude: float
    phases: tuple[float, ...]
    directions: tuple[float, ...]
    wobble: tuple[float, ...]


@dataclass(frozen=True)
class _Placed:
    spec: ShapeSpec
    center: Array  # (2,) world
    angle: float
    scale: float

    @property
    def edge_distance(self) -> float:
        """Distance (world) from the centre to the boundary along local angle 0."""
        spec = self.spec
        if spec.kind in _SIDES:
            return self.scale * spec.radius * float(np.cos(np.pi / _SIDES[spec.kind]))
        return self.scale * spec.radius

    @property
    def reach(self) -> float:
        """Radius (world) of a disc around the centre containing the shape."""
        spec = self.spec
        return self.scale * spec.radius * (float(np.hypot(1.0, spec.aspect)) if spec.kind == "box" else 1.0)

    def sdf(self, points: Array) -> Array:
        """Signed distance (world units) from ``points`` (..., 2) to the shape."""
        spec, r = self.spec, self.scale * self.spec.radius
        if spec.kind == "circle":
            return sdf_circle(points, self.center, r)
        if spec.kind == "box":
            return sdf_box(points, self.center, (r, r * spec.aspect), self.angle, corner_radius=0.15 * r)
        return sdf_regular_polygon(points, self.center, r, _SIDES[spec.kind], self.angle)

    def edge_point(self) -> Array:
        direction = np.array([np.cos(self.angle), np.sin(self.angle)])
        return self.center + self.edge_distance * direction


def _place(identity: ShapesIdentity, pose: Array) -> list[_Placed]:
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape != (len(POSE_NAMES),):
        raise ValueError(f"shapes pose must have shape ({len(POSE_NAMES)},), got {pose.shape}")
    placed = []
    for i, spec in enumerate(identity.shapes):
        dx, dy, angle, log_scale = pose[4 * i: 4 * i + 4]
        placed.append(_Placed(spec, np.array([spec.x + dx, spec.y + dy]), spec.angle + float(angle),
                              float(np.exp(np.clip(log_scale, -2.0, 2.0)))))
    return placed


def _ground_truth(identity: ShapesIdentity, placed: list[_Placed]) -> tuple[Array, Array]:
    """World keypoints (2 * MAX_SHAPES, 2) float32 and their visibility (bool)."""
    points = np.stack([p for shape in placed for p in (shape.center, shape.edge_point())]).astype(np.float32)
    visible = np.all(np.abs(points) <= 1.0, axis=1)
    for k in range(len(points)):
        slot = k // 2
        covered = any(float(placed[j].sdf(points[k].astype(np.float64))) < 0.0
                      for j in range(slot + 1, identity.count))
        visible[k] &= slot < identity.count and not covered
    return points, visible


def _wave(t: float, freq: float, phase: float) -> float:
    return float(np.sin(2.0 * np.pi * freq * t + phase))


def _hop(t: float, freq: float, phase: float, softness: float = 0.15) -> float:
    """Bounce height in [0, 1]: a softened ``|sin|`` (``freq`` hops per second), long at the top and quick
    but smooth at the floor."""
    s = float(np.sin(np.pi * freq * t + phase))
    return (float(np.sqrt(s * s + softness**2)) - softness) / (float(np.sqrt(1.0 + softness**2)) - softness)


class ShapeFamily:
    """2-4 moving, rotating, scaling shapes that drift, spin, bounce, orbit or pulse (see the module
    docstring for the pose layout and keypoints)."""

    name = "shapes"
    keypoint_names = KEYPOINT_NAMES
    action_names = ACTION_NAMES
    pose_names = POSE_NAMES
    fps = 25.0

    def sample_identity(self, rng: np.random.Generator) -> ShapesIdentity:
        """Draw a scene of 2..4 shapes (all :data:`MAX_SHAPES` slots are filled; ``count`` are drawn)."""
        shapes = []
        for _ in range(MAX_SHAPES):
            solid = rng.random() < 0.5
            texture = random_texture(rng, kinds=("solid",) if solid else ("stripes", "dots", "noise"))
            shapes.append(ShapeSpec(
                kind=str(rng.choice(SHAPE_KINDS)),
                radius=float(rng.uniform(0.18, 0.34)),
                aspect=float(rng.uniform(0.5, 1.0)),
                texture=texture,
                x=float(rng.uniform(-0.55, 0.55)),
                y=float(rng.uniform(-0.55, 0.55)),
                angle=float(rng.uniform(0.0, 2.0 * np.pi)),
            ))
        return ShapesIdentity(tuple(shapes), int(rng.integers(2, MAX_SHAPES + 1)),
                              random_background(rng, max_clutter=2))

    def sample_motion(self, rng: np.random.Generator, action: str | None = None,
                      motion: str = "default") -> ShapesMotion:
        """Draw a motion of class ``action`` (uniform over :data:`ACTION_NAMES` if None); shapes have only the
        ``default`` motion setting."""
        if motion != "default":
            raise ValueError(f"shapes have only the default motion setting, got {motion!r}")
        if action is None:
            action = str(rng.choice(ACTION_NAMES))
        if action not in ACTION_NAMES:
            raise ValueError(f"unknown shapes action {action!r}; choose one of {', '.join(ACTION_NAMES)}")
        low, high = _SPEEDS[action]
        return ShapesMotion(
            action=action,
            speed=float(rng.uniform(low, high)),
            amplitude=float(rng.uniform(0.5, 1.0)),
            phases=tuple(float(v) for v in rng.uniform(0.0, 2.0 * np.pi, MAX_SHAPES)),
            directions=tuple(float(v) for v in rng.uniform(0.0, 2.0 * np.pi, MAX_SHAPES)),
            wobble=tuple(float(v) for v in rng.uniform(0.0, 2.0 * np.pi, MAX_SHAPES)),
        )

    def pose(self, motion: ShapesMotion, time: float) -> Array:
        """Pose (4 * MAX_SHAPES,) float64 at ``time`` seconds: a small idle wobble plus the action."""
        t = float(time)
        a, f = motion.amplitude, motion.speed
        pose = np.zeros(len(POSE_NAMES), dtype=np.float64)
        for i in range(MAX_SHAPES):
            ph, direction, wobble = motion.phases[i], motion.directions[i], motion.wobble[i]
            dx = 0.02 * _wave(t, 0.23, wobble)
            dy = 0.02 * _wave(t, 0.19, wobble + 1.0)
            angle = 0.08 * _wave(t, 0.31, wobble + 2.0)
            log_scale = 0.0
            if motion.action == "drift":
                travel = 0.35 * a * _wave(t, f, ph)
                dx += travel * np.cos(direction)
                dy += travel * np.sin(direction)
            elif motion.action == "spin":
                angle += np.sign(np.cos(direction)) * 2.0 * np.pi * f * t
            elif motion.action == "bounce":
                dy -= 0.5 * a * _hop(t, f, ph)
            elif motion.action == "orbit":
                dx += 0.25 * a * float(np.cos(2.0 * np.pi * f * t + ph))
                dy += 0.25 * a * float(np.sin(2.0 * np.pi * f * t + ph))
            else:  # pulse
                log_scale += 0.4 * a * _wave(t, f, ph)
            pose[4 * i: 4 * i + 4] = (dx, dy, angle, log_scale)
        return pose

    def relative_pose(self, source_first: Array, driving_first: Array, driving_now: Array) -> Array:
        """Additive transfer of every slot's offsets (scale is multiplicative through its log)."""
        return additive_relative_pose(source_first, driving_first, driving_now)

    def keypoints(self, identity: ShapesIdentity, pose: Array, size: int) -> tuple[Array, Array]:
        """Ground truth without rendering: keypoints (2 * MAX_SHAPES, 2) float32 pixels, visibility bool."""
        points, visible = _ground_truth(identity, _place(identity, pose))
        return normalized_to_pixels(points, size), visible

    def render(self, identity: ShapesIdentity, pose: Array, size: int) -> RenderedFrame:
        """Render the scene as a (size, size, 3) float32 image with keypoints (2 * MAX_SHAPES, 2)."""
        placed = _place(identity, pose)
        canvas = Canvas(size, cached_background(identity.background, size), grid=cached_world_grid(size))
        for shape in placed[: identity.count]:
            window = canvas.region(shape.center, shape.reach)
            pts = canvas.points(window)
            if pts.size == 0:
                continue
            local = to_local(pts, shape.center, shape.angle, shape.scale)
            canvas.paint_textured(shape.sdf(pts), shape.spec.texture, local, window=window)
            if shape.spec.kind == "circle":
                r = shape.scale * shape.spec.radius
                dot = shape.center + 0.62 * r * np.array([np.cos(shape.angle), np.sin(shape.angle)])
                canvas.paint(sdf_circle(pts, dot, 0.16 * r), shape.spec.texture.color_b, window=window)
        points, visible = _ground_truth(identity, placed)
        return RenderedFrame(canvas.result(), normalized_to_pixels(points, size), visible)
