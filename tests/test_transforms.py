"""Random TPS / affine transforms used by the equivariance losses (motiontransfer.ops.transforms)."""

from __future__ import annotations

import math

import pytest
import torch

from motiontransfer.ops.grid import make_coordinate_grid
from motiontransfer.ops.transforms import RandomTPS


def _points(batch: int, count: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, count, 2, generator=generator) * 2 - 1).to(dtype)


def _smooth_frame(batch: int, height: int, width: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    grid = make_coordinate_grid(height, width, dtype=dtype)
    x, y = grid[..., 0], grid[..., 1]
    channels = [torch.sin(1.5 * x + 0.5), torch.cos(2.0 * y) * 0.5, x * y]
    return torch.stack(channels)[None].expand(batch, -1, -1, -1).contiguous()


def test_sample_with_zero_sigmas_is_identity() -> None:
    transform = RandomTPS.sample(3, 0.0, 0.0, 5, generator=torch.Generator().manual_seed(1))
    points = _points(3, 7)
    assert torch.equal(transform.warp_coordinates(points), points)
    jacobian = transform.jacobian(points)
    assert jacobian.shape == (3, 7, 2, 2)
    torch.testing.assert_close(jacobian, torch.eye(2).expand(3, 7, 2, 2))


def test_sample_shapes_dtype_and_reproducibility() -> None:
    first = RandomTPS.sample(4, 0.05, 0.005, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    second = RandomTPS.sample(4, 0.05, 0.005, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert first.theta.shape == (4, 2, 3) and first.theta.dtype == torch.float64
    assert first.control_points is not None and first.control_points.shape == (25, 2)
    assert first.control_params is not None and first.control_params.shape == (4, 25)
    assert torch.equal(first.theta, second.theta) and torch.equal(first.control_params, second.control_params)
    # Control points span the normalised frame on a 5x5 grid.
    assert first.control_points.min() == -1 and first.control_points.max() == 1
    # Not the identity any more, but close to it.
    points = _points(4, 6, dtype=torch.float64)
    moved = first.warp_coordinates(points)
    assert 0 < (moved - points).abs().max() < 0.5


def test_affine_only_sample_has_no_tps_part() -> None:
    transform = RandomTPS.sample(2, 0.1)
    assert transform.control_points is None and transform.control_params is None


def test_warp_coordinates_of_affine_transform_matches_hand_computation() -> None:
    theta = torch.tensor([[[1.1, -0.2, 0.05], [0.3, 0.9, -0.1]]])
    transform = RandomTPS(theta)
    points = torch.tensor([[[0.5, -0.25], [0.0, 0.0], [-1.0, 1.0]]])
    expected = torch.tensor([[[1.1 * 0.5 + 0.2 * 0.25 + 0.05, 0.3 * 0.5 - 0.9 * 0.25 - 0.1],
                              [0.05, -0.1],
                              [-1.1 - 0.2 + 0.05, -0.3 + 0.9 - 0.1]]])
    torch.testing.assert_close(transform.warp_coordinates(points), expected)


def test_warp_coordinates_broadcasts_one_set_of_points_over_the_batch() -> None:
    transform = RandomTPS.sample(3, 0.05, 0.005, 5, generator=torch.Generator().manual_seed(2))
    points = _points(1, 5)
    batched = transform.warp_coordinates(points.expand(3, -1, -1))
    torch.testing.assert_close(transform.warp_coordinates(points), batched)


def test_tps_part_matches_hand_computation() -> None:
    # One control point at the origin with weight w: T(z) = z + w * r^2 log(r + 1e-6), r = |z_x| + |z_y|.
    theta = torch.eye(2, 3, dtype=torch.float64)[None]
    weight = 0.3
    transform = RandomTPS(theta, torch.zeros(1, 2, dtype=torch.float64), torch.full((1, 1), weight,
                                                                                    dtype=torch.float64))
    points = torch.tensor([[[0.2, -0.3], [0.0, 0.0]]], dtype=torch.float64)
    radius = 0.5
    shift = weight * radius**2 * math.log(radius + 1e-6)
    expected = torch.tensor([[[0.2 + shift, -0.3 + shift], [0.0, 0.0]]], dtype=torch.float64)
    torch.testing.assert_close(transform.warp_coordinates(points), expected)


def test_jacobian_of_affine_transform_is_its_matrix() -> None:
    theta = torch.tensor([[[1.1, -0.2, 0.05], [0.3, 0.9, -0.1]], [[0.8, 0.1, 0.0], [-0.4, 1.2, 0.3]]])
    transform = RandomTPS(theta)
    jacobian = transform.jacobian(_points(2, 4))
    torch.testing.assert_close(jacobian, theta[:, None, :, :2].expand(2, 4, 2, 2))


def test_jacobian_matches_finite_differences_for_tps() -> None:
    transform = RandomTPS.sample(2, 0.05, 0.05, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    points = _points(2, 6, seed=5, dtype=torch.float64)
    eps = 1e-6
    columns = []
    for j in range(2):
        step = torch.zeros(2, dtype=torch.float64)
        step[j] = eps
        difference = transform.warp_coordinates(points + step) - transform.warp_coordinates(points - step)
        columns.append(difference / (2 * eps))
    torch.testing.assert_close(transform.jacobian(points), torch.stack(columns, dim=-1), atol=1e-7, rtol=1e-6)


def test_jacobian_is_differentiable_with_respect_to_the_points() -> None:
    transform = RandomTPS.sample(2, 0.05, 0.05, 5, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    points = _points(2, 3, dtype=torch.float64).requires_grad_(True)
    transform.jacobian(points).sum().backward()
    assert points.grad is not None and points.grad.abs().sum() > 0


def test_jacobian_works_under_no_grad() -> None:
    theta = torch.tensor([[[1.0, 0.5, 0.0], [0.0, 2.0, 0.0]]])
    with torch.no_grad():
        jacobian = RandomTPS(theta).jacobian(_points(1, 2))
    torch.testing.assert_close(jacobian, theta[:, None, :, :2].expand(1, 2, 2, 2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_identity_transform_frame_reproduces_the_frame_with_align_corners(dtype: torch.dtype) -> None:
    frame = torch.rand(2, 3, 19, 23, generator=torch.Generator().manual_seed(7)).to(dtype)
    transform = RandomTPS.sample(2, 0.0, 0.0, 5, dtype=dtype)
    out = transform.transform_frame(frame, align_corners=True)
    assert out.shape == frame.shape and out.dtype == dtype
    # Exact up to the rounding of the normalised grid (x -> (x + 1) (W - 1) / 2 inside grid_sample).
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out, frame, atol=tolerance, rtol=0)


def test_identity_transform_frame_without_align_corners_is_close_away_from_borders() -> None:
    frame = _smooth_frame(2, 64, 64)
    out = RandomTPS.sample(2, 0.0, 0.0, 5).transform_frame(frame, align_corners=False)
    # The [-1, 1] grid of pixel centres is read as spanning the outer pixel edges: a shift of at most half a pixel.
    torch.testing.assert_close(out[..., 8:-8, 8:-8], frame[..., 8:-8, 8:-8], atol=0.03, rtol=0)


def test_transform_frame_follows_the_warped_coordinates() -> None:
    # A pure translation by 2 pixels (in normalised units 4 / (W - 1)) moves the content accordingly.
    height, width = 16, 21
    frame = torch.rand(1, 2, height, width, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    theta = torch.tensor([[[1.0, 0.0, 4.0 / (width - 1)], [0.0, 1.0, 0.0]]], dtype=torch.float64)
    out = RandomTPS(theta).transform_frame(frame, align_corners=True)
    torch.testing.assert_close(out[..., :-2], frame[..., 2:])


def test_invalid_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="theta"):
        RandomTPS(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="together"):
        RandomTPS(torch.eye(2, 3)[None], torch.zeros(4, 2))
    with pytest.raises(ValueError, match="together"):
        RandomTPS.sample(1, 0.1, 0.01, None)
    with pytest.raises(ValueError, match="batch"):
        RandomTPS.sample(2, 0.0).transform_frame(torch.zeros(3, 1, 4, 4), align_corners=True)
