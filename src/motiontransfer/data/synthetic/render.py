"""Resolution-independent 2D rendering with analytic anti-aliasing, for the procedural datasets.

Shapes are signed distance fields (SDFs) over *world coordinates* in [-1, 1] x [-1, 1], with x to the right and
y downwards. World coordinates follow FOMM's ``make_coordinate_grid`` convention: -1 is the centre of the first
pixel and +1 the centre of the last, so a world point ``u`` is pixel ``(u + 1) / 2 * (size - 1)`` at any size.
A scene drawn at 64, 128 or 256 px is the same picture, and keypoints given in world coordinates convert exactly
to pixels at every size.

Anti-aliasing: a pixel's coverage by a shape is ``clip(0.5 - sdf / pixel_size, 0, 1)``, the area fraction of a
half-plane edge crossing the pixel. Shapes are composited back to front ("painter's algorithm"), so the order
of :meth:`Canvas.paint` calls is the depth order.

All arrays are numpy float32; images are (H, W, 3) in [0, 1]; point arrays have shape (..., 2) as (x, y).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from motiontransfer.ops.coordinates import normalized_to_pixels

Array = np.ndarray
Region = tuple[slice, slice]


# --------------------------------------------------------------------------------------------------- coordinates
def world_grid(size: int) -> Array:
    """Pixel centres in world coordinates.

    Args:
        size: image side in pixels (square images).

    Returns:
        (size, size, 2) float32 array; ``grid[i, j] = (x_j, y_i)`` with ``x_j = 2 j / (size - 1) - 1``.
    """
    axis = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    xs, ys = np.meshgrid(axis, axis)
    return np.stack([xs, ys], axis=-1)


@functools.lru_cache(maxsize=8)
def cached_world_grid(size: int) -> Array:
    """Read-only :func:`world_grid` shared between renders of the same size."""
    grid = world_grid(size)
    grid.flags.writeable = False
    return grid


def rotation(angle: float) -> Array:
    """2x2 rotation matrix (float32) for ``angle`` radians (counter-clockwise in a y-up frame)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]], dtype=np.float32)


def to_local(points: Array, origin: Array, angle: float = 0.0, scale: Array | float = 1.0) -> Array:
    """Express world points (..., 2) in a part's local frame.

    The local frame has its origin at ``origin``, is rotated by ``angle`` and scaled by ``scale`` (a scalar or
    (sx, sy)); ``local = R(-angle) (p - origin) / scale``. Textures evaluated in local coordinates move with the
    part.
    """
    rel = points - np.asarray(origin, dtype=np.float32)
    c, s = float(np.cos(angle)), float(np.sin(angle))
    x = c * rel[..., 0] + s * rel[..., 1]
    y = -s * rel[..., 0] + c * rel[..., 1]
    local = np.stack([x, y], axis=-1)
    return local / np.asarray(scale, dtype=np.float32)


# -------------------------------------------------------------------------------------------------------- SDFs
def sdf_circle(points: Array, center: Array, radius: float) -> Array:
    """Signed distance (...,) from ``points`` (..., 2) to a disc; negative inside."""
    return np.linalg.norm(points - np.asarray(center, dtype=np.float32), axis=-1) - radius


def sdf_ellipse(points: Array, center: Array, axes: tuple[float, float], angle: float = 0.0) -> Array:
    """Approximate signed distance to an ellipse with semi-axes ``axes`` rotated by ``angle``.

    Uses the first-order approximation ``(|q / axes| - 1) * |q / axes| / |grad|``, exact on the axes and
    accurate within a pixel near the boundary, which is all anti-aliasing needs.
    """
    q = to_local(points, center, angle)
    a = np.asarray(axes, dtype=np.float32)
    k0 = np.linalg.norm(q / a, axis=-1)
    k1 = np.linalg.norm(q / (a * a), axis=-1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-8)


def sdf_capsule(points: Array, a: Array, b: Array, radius_a: float, radius_b: float | None = None) -> Array:
    """Signed distance to a (possibly tapered) capsule: the segment a-b swept by a disc.

    The radius is interpolated linearly from ``radius_a`` at ``a`` to ``radius_b`` at ``b`` (equal if omitted).
    The taper is approximated by interpolating along the segment, which is accurate for mild tapers.
    """
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    radius_b = radius_a if radius_b is None else radius_b
    pa = points - a
    ba = b - a
    h = np.clip((pa @ ba) / max(float(ba @ ba), 1e-12), 0.0, 1.0)
    dist = np.linalg.norm(pa - h[..., None] * ba, axis=-1)
    return dist - (radius_a + (radius_b - radius_a) * h)


def sdf_box(points: Array, center: Array, half_size: tuple[float, float], angle: float = 0.0,
            corner_radius: float = 0.0) -> Array:
    """Signed distance to a rotated rectangle with rounded corners (``corner_radius`` <= half sizes)."""
    q = np.abs(to_local(points, center, angle))
    d = q - (np.asarray(half_size, dtype=np.float32) - corner_radius)
    outside = np.linalg.norm(np.maximum(d, 0.0), axis=-1)
    inside = np.minimum(np.maximum(d[..., 0], d[..., 1]), 0.0)
    return outside + inside - corner_radius


def sdf_regular_polygon(points: Array, center: Array, radius: float, sides: int, angle: float = 0.0) -> Array:
    """Signed distance to a regular polygon with circumradius ``radius`` (exact inside, approximate outside)."""
    q = to_local(points, center, angle)
    sector = 2.0 * np.pi / sides
    theta = np.arctan2(q[..., 1], q[..., 0])
    theta = np.mod(theta + sector / 2.0, sector) - sector / 2.0
    r = np.linalg.norm(q, axis=-1)
    apothem = radius * np.cos(np.pi / sides)
    return r * np.cos(theta) - apothem


def coverage(sdf: Array, pixel_size: float) -> Array:
    """Anti-aliased coverage in [0, 1] from a signed distance field (world units) and the pixel size."""
    return np.clip(0.5 - sdf / pixel_size, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------------- textures
@dataclass(frozen=True)
class Texture:
    """A colour pattern evaluated in a part's local coordinates.

    kind: ``solid`` (``color_a``), ``stripes`` (bands of ``color_a``/``color_b`` with ``frequency`` cycles per
    local unit along direction ``angle``), ``dots`` (``color_b`` dots of radius ``0.25 / frequency`` on a
    ``color_a`` ground) or ``noise`` (smooth value noise mixing the two colours; ``seed`` fixes the pattern).
    """

    kind: str = "solid"
    color_a: tuple[float, float, float] = (0.5, 0.5, 0.5)
    color_b: tuple[float, float, float] = (0.2, 0.2, 0.2)
    frequency: float = 4.0
    angle: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("solid", "stripes", "dots", "noise"):
            raise ValueError(f"unknown texture kind {self.kind!r}")

    def evaluate(self, local: Array) -> Array:
        """Colours (..., 3) float32 at local coordinates (..., 2)."""
        a = np.asarray(self.color_a, dtype=np.float32)
        if self.kind == "solid":
            return np.broadcast_to(a, (*local.shape[:-1], 3))
        b = np.asarray(self.color_b, dtype=np.float32)
        weight = self._weight(local)
        return a + (b - a) * weight[..., None]

    def _weight(self, local: Array) -> Array:
        if self.kind == "stripes":
            u = local[..., 0] * float(np.cos(self.angle)) + local[..., 1] * float(np.sin(self.angle))
            return 0.5 + 0.5 * np.tanh(4.0 * np.sin(2.0 * np.pi * self.frequency * u))
        if self.kind == "dots":
            cell = local * self.frequency
            offset = cell - np.floor(cell) - 0.5
            dist = np.linalg.norm(offset, axis=-1) / self.frequency
            return np.clip(0.5 - (dist - 0.25 / self.frequency) * self.frequency * 8.0, 0.0, 1.0)
        return value_noise(local * self.frequency, self.seed)


def value_noise(points: Array, seed: int, period: int = 16) -> Array:
    """Smooth periodic value noise in [0, 1] at points (..., 2): bicubic-smoothstep interpolation of a random
    ``period`` x ``period`` lattice that is fixed by ``seed``."""
    lattice = _noise_lattice(seed, period)
    x, y = points[..., 0], points[..., 1]
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    i0, j0 = x0.astype(np.int64) % period, y0.astype(np.int64) % period
    i1, j1 = (i0 + 1) % period, (j0 + 1) % period
    top = lattice[j0, i0] * (1 - fx) + lattice[j0, i1] * fx
    bottom = lattice[j1, i0] * (1 - fx) + lattice[j1, i1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


@functools.lru_cache(maxsize=256)
def _noise_lattice(seed: int, period: int) -> Array:
    return np.random.default_rng(seed).random((period, period), dtype=np.float32)


# ------------------------------------------------------------------------------------------------------ canvas
class Canvas:
    """An (H, W, 3) float32 image being composited back to front.

    Attributes:
        size: image side in pixels.
        grid: (size, size, 2) world coordinates of the pixel centres.
        pixel_size: width of one pixel in world units, ``2 / (size - 1)``.
        image: (size, size, 3) float32 current colours.
    """

    def __init__(self, size: int, background: Array | None = None, grid: Array | None = None) -> None:
        if size < 2:
            raise ValueError("size must be at least 2 pixels")
        self.size = size
        self.grid = world_grid(size) if grid is None else grid
        self.pixel_size = 2.0 / (size - 1)
        if background is None:
            self.image = np.zeros((size, size, 3), dtype=np.float32)
        else:
            self.image = np.array(background, dtype=np.float32, copy=True)

    def region(self, center: Array, radius: float) -> Region:
        """The pixel window that can be touched by a shape within ``radius`` (world units) of ``center``.

        Drawing only inside the window is what makes rendering fast: evaluate the SDF on ``grid[window]``
        and pass ``window`` to :meth:`paint`. Returns an empty window for shapes entirely off the canvas.
        """
        cx, cy = normalized_to_pixels(center, self.size)
        r = radius / self.pixel_size + 1.5
        x0, x1 = max(int(np.floor(cx - r)), 0), min(int(np.ceil(cx + r)) + 1, self.size)
        y0, y1 = max(int(np.floor(cy - r)), 0), min(int(np.ceil(cy + r)) + 1, self.size)
        return (slice(y0, max(y0, y1)), slice(x0, max(x0, x1)))

    def points(self, window: Region | None = None) -> Array:
        """World coordinates (h, w, 2) of the pixels in ``window`` (the whole grid if None)."""
        return self.grid if window is None else self.grid[window]

    def paint(self, sdf: Array, color: Array | tuple[float, float, float], opacity: float = 1.0,
              window: Region | None = None) -> Array:
        """Composite a shape given by its SDF with ``color`` ((3,) or (h, w, 3)) over the image.

        ``sdf`` is (H, W), or (h, w) over ``window`` when one is given. Returns the alpha that was used
        (coverage x opacity, same shape as ``sdf``), e.g. to build occlusion masks.
        """
        alpha = coverage(sdf, self.pixel_size)
        if opacity != 1.0:
            alpha = alpha * np.float32(opacity)
        color = np.asarray(color, dtype=np.float32)
        target = self.image if window is None else self.image[window]
        target += (color - target) * alpha[..., None]
        return alpha

    def paint_textured(self, sdf: Array, texture: Texture, local: Array, opacity: float = 1.0,
                       window: Region | None = None) -> Array:
        """Like :meth:`paint` with colours from ``texture`` evaluated at ``local`` coordinates (h, w, 2)."""
        return self.paint(sdf, texture.evaluate(local), opacity, window)

    def result(self) -> Array:
        """The finished image (H, W, 3) float32, clipped to [0, 1]."""
        return np.clip(self.image, 0.0, 1.0)


# ------------------------------------------------------------------------------------------------- backgrounds
@dataclass(frozen=True)
class Background:
    """A static background: a linear gradient plus clutter shapes, all in world coordinates.

    ``clutter`` holds tuples ``(kind, cx, cy, radius, angle, r, g, b)`` with kind in {circle, box, triangle}.
    """

    color_a: tuple[float, float, float]
    color_b: tuple[float, float, float]
    gradient_angle: float
    clutter: tuple[tuple[str, float, float, float, float, float, float, float], ...] = ()
    noise_amount: float = 0.0
    noise_seed: int = 0

    def render(self, size: int, grid: Array | None = None) -> Array:
        """The background as an (size, size, 3) float32 image."""
        grid = world_grid(size) if grid is None else grid
        direction = np.array([np.cos(self.gradient_angle), np.sin(self.gradient_angle)], dtype=np.float32)
        t = np.clip((grid @ direction) * 0.5 + 0.5, 0.0, 1.0)[..., None]
        a = np.asarray(self.color_a, dtype=np.float32)
        b = np.asarray(self.color_b, dtype=np.float32)
        canvas = Canvas(size, a + (b - a) * t, grid=grid)
        if self.noise_amount > 0:
            noise = value_noise(grid * 6.0, self.noise_seed) - 0.5
            canvas.image += self.noise_amount * noise[..., None]
        for kind, cx, cy, radius, angle, r, g, bl in self.clutter:
            center = (cx, cy)
            if kind == "circle":
                sdf = sdf_circle(grid, center, radius)
            elif kind == "box":
                sdf = sdf_box(grid, center, (radius, radius * 0.6), angle)
            else:
                sdf = sdf_regular_polygon(grid, center, radius, 3, angle)
            canvas.paint(sdf, (r, g, bl))
        return canvas.result()


def random_color(rng: np.random.Generator, low: float = 0.05, high: float = 0.95) -> tuple[float, float, float]:
    """A random RGB colour with components in [low, high]."""
    return tuple(float(v) for v in rng.uniform(low, high, size=3))  # type: ignore[return-value]


def random_texture(rng: np.random.Generator, base: tuple[float, float, float] | None = None,
                   kinds: tuple[str, ...] = ("solid", "stripes", "dots", "noise")) -> Texture:
    """A random :class:`Texture` whose first colour is ``base`` (random if None) and second a contrasting one."""
    color_a = random_color(rng) if base is None else base
    contrast = np.clip(np.asarray(color_a) + rng.choice([-1.0, 1.0]) * rng.uniform(0.25, 0.5, 3), 0.0, 1.0)
    return Texture(
        kind=str(rng.choice(kinds)),
        color_a=color_a,
        color_b=tuple(float(v) for v in contrast),  # type: ignore[arg-type]
        frequency=float(rng.uniform(2.0, 6.0)),
        angle=float(rng.uniform(0.0, np.pi)),
        seed=int(rng.integers(0, 2**31 - 1)),
    )


def random_background(rng: np.random.Generator, max_clutter: int = 6) -> Background:
    """A random gradient background with 0..``max_clutter`` clutter shapes and optional noise."""
    clutter = []
    for _ in range(int(rng.integers(0, max_clutter + 1))):
        kind = str(rng.choice(["circle", "box", "triangle"]))
        cx, cy = (float(v) for v in rng.uniform(-1.0, 1.0, 2))
        color = random_color(rng, 0.1, 0.9)
        clutter.append((kind, cx, cy, float(rng.uniform(0.05, 0.3)), float(rng.uniform(0, np.pi)), *color))
    return Background(
        color_a=random_color(rng, 0.1, 0.9),
        color_b=random_color(rng, 0.1, 0.9),
        gradient_angle=float(rng.uniform(0, 2 * np.pi)),
        clutter=tuple(clutter),
        noise_amount=float(rng.choice([0.0, rng.uniform(0.05, 0.2)])),
        noise_seed=int(rng.integers(0, 2**31 - 1)),
    )


@functools.lru_cache(maxsize=32)
def cached_background(background: Background, size: int) -> Array:
    """Read-only rendering of a (static, hashable) :class:`Background` at ``size``, shared between frames."""
    image = background.render(size, cached_world_grid(size))
    image.flags.writeable = False
    return image
