"""Keypoint-space motion transfer (FOMM Sec. 3.4, Eqs. 14-15): hand-computed numbers, absolute and relative modes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fomm_helpers import small_animator, small_experiment
from motiontransfer.errors import UserError
from motiontransfer.families.fomm.animator import FOMMAnimator, KeypointMotion
from motiontransfer.ops.keypoints import (
    convex_hull_area,
    convex_hull_scale,
    normalize_pose,
    pose_distance,
    relative_jacobians,
    relative_keypoints,
)

SOURCE = torch.tensor([[[0.0, 0.0], [0.4, 0.0], [0.0, 0.4]]])  # right triangle, area 0.08
DRIVING_INITIAL = torch.tensor([[[0.1, 0.1], [0.3, 0.1], [0.1, 0.3]]])  # area 0.02
DELTA = torch.tensor([[[0.1, 0.0], [0.0, -0.2], [0.05, 0.05]]])


def test_convex_hull_area_is_the_2d_volume_not_the_perimeter() -> None:
    assert convex_hull_area(SOURCE[0]) == pytest.approx(0.08)
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5]])  # interior point ignored
    assert convex_hull_area(square) == pytest.approx(1.0)
    assert convex_hull_area(np.array([[0, 0], [1, 1], [2, 2]])) == 0.0  # collinear
    assert convex_hull_area(np.array([[0, 0], [1, 1]])) == 0.0


def test_convex_hull_area_matches_scipy_qhull_on_random_point_sets() -> None:
    from scipy.spatial import ConvexHull

    rng = np.random.default_rng(0)
    for trial in range(200):
        count = int(rng.integers(3, 25))
        points = rng.uniform(-1, 1, (count, 2)) * rng.uniform(0.01, 1)
        if trial % 4 == 0:
            points[: count // 2] = points[0]  # repeated points
        assert convex_hull_area(points) == pytest.approx(ConvexHull(points).volume, rel=1e-12)
    assert convex_hull_area(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.5, 0.2]])) == pytest.approx(0.5)


def test_convex_hull_scale_uses_batch_element_0() -> None:
    # sqrt(0.08) / sqrt(0.02) = 2
    assert convex_hull_scale(SOURCE, DRIVING_INITIAL) == pytest.approx(2.0)
    batch = torch.cat([DRIVING_INITIAL, 5 * DRIVING_INITIAL])
    assert convex_hull_scale(SOURCE, batch) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="no area"):
        convex_hull_scale(SOURCE, torch.tensor([[0.0, 0.0], [0.1, 0.1], [0.2, 0.2]]))


def test_relative_keypoints_hand_computed() -> None:
    driving = DRIVING_INITIAL + DELTA
    expected = torch.tensor([[[0.2, 0.0], [0.4, -0.4], [0.1, 0.5]]])  # source + 2 * delta
    assert torch.allclose(relative_keypoints(SOURCE, driving, DRIVING_INITIAL, scale=2.0), expected, atol=1e-6)
    expected_unscaled = torch.tensor([[[0.1, 0.0], [0.4, -0.2], [0.05, 0.45]]])
    assert torch.allclose(relative_keypoints(SOURCE, driving, DRIVING_INITIAL), expected_unscaled, atol=1e-6)


def test_relative_jacobians_hand_computed_and_broadcast() -> None:
    initial = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    driving = torch.tensor([[2.0, 1.0], [0.0, 1.0]])
    source = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    # (J_D J_D1^-1) J_S = [[1, 1], [0, 1]] @ [[1, 0], [0, 3]] = [[1, 3], [0, 3]]
    result = relative_jacobians(source.view(1, 1, 2, 2), driving.expand(4, 2, 2, 2), initial.view(1, 1, 2, 2))
    assert result.shape == (4, 2, 2, 2)
    assert torch.allclose(result, torch.tensor([[1.0, 3.0], [0.0, 3.0]]).expand(4, 2, 2, 2), atol=1e-6)


def motion(value: torch.Tensor, jacobian: torch.Tensor | None = None) -> KeypointMotion:
    return KeypointMotion(value, jacobian)


@pytest.fixture(scope="module")
def animator() -> FOMMAnimator:
    return small_animator()


def jacobians(batch: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.eye(2) + 0.3 * torch.randn(batch, 3, 2, 2, generator=generator)


def test_absolute_passes_the_driving_motion_through(animator: FOMMAnimator) -> None:
    driving = motion(DRIVING_INITIAL + DELTA, jacobians(1, 0))
    out = animator.transfer(motion(SOURCE, jacobians(1, 1)), driving, None, "absolute", adapt_scale=True)
    assert out is driving


def test_relative_transfer_matches_eqs_14_15(animator: FOMMAnimator) -> None:
    source = motion(SOURCE, jacobians(1, 1))
    initial = motion(DRIVING_INITIAL, jacobians(1, 2))
    driving = motion(torch.cat([DRIVING_INITIAL + DELTA, DRIVING_INITIAL - DELTA]), jacobians(2, 3))
    out = animator.transfer(source, driving, initial, "relative", adapt_scale=True)
    assert torch.allclose(out.value, torch.cat([SOURCE + 2 * DELTA, SOURCE - 2 * DELTA]), atol=1e-6)
    expected = driving.jacobian @ torch.linalg.inv(initial.jacobian) @ source.jacobian
    assert out.jacobian is not None and torch.allclose(out.jacobian, expected, atol=1e-5)
    unscaled = animator.transfer(source, driving, initial, "relative", adapt_scale=False)
    assert torch.allclose(unscaled.value, torch.cat([SOURCE + DELTA, SOURCE - DELTA]), atol=1e-6)


def test_relative_with_driving_equal_to_initial_gives_the_source_motion(animator: FOMMAnimator) -> None:
    source = motion(SOURCE, jacobians(1, 1))
    initial = motion(DRIVING_INITIAL, jacobians(1, 2))
    for adapt_scale in (False, True):
        out = animator.transfer(source, initial, initial, "relative", adapt_scale=adapt_scale)
        assert torch.equal(out.value, source.value)  # (d - d) * s + kp_S is exact
        assert out.jacobian is not None
        assert torch.allclose(out.jacobian, source.jacobian, atol=1e-6)  # J J^-1 J_S up to rounding


def test_relative_without_relative_jacobian_keeps_the_driving_jacobians() -> None:
    experiment = small_experiment()
    experiment.animate_params.normalization_params.use_relative_jacobian = False
    animator = FOMMAnimator(experiment)
    driving = motion(DRIVING_INITIAL + DELTA, jacobians(1, 3))
    out = animator.transfer(motion(SOURCE, jacobians(1, 1)), driving, motion(DRIVING_INITIAL, jacobians(1, 2)))
    assert out.jacobian is driving.jacobian
    assert torch.allclose(out.value, SOURCE + DELTA, atol=1e-6)


def test_relative_without_jacobians(animator: FOMMAnimator) -> None:
    out = animator.transfer(motion(SOURCE), motion(DRIVING_INITIAL + DELTA), motion(DRIVING_INITIAL))
    assert out.jacobian is None and torch.allclose(out.value, SOURCE + DELTA, atol=1e-6)


def test_bad_modes(animator: FOMMAnimator) -> None:
    with pytest.raises(UserError, match="unknown transfer mode 'sideways'"):
        animator.transfer(motion(SOURCE), motion(SOURCE), motion(SOURCE), "sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="initial driving frame"):
        animator.transfer(motion(SOURCE), motion(SOURCE), None, "relative")


def test_pose_normalisation_ignores_position_and_size() -> None:
    points = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0], [1.0, 1.5]])
    moved = 3.5 * points + np.array([10.0, -4.0])
    assert np.allclose(normalize_pose(points), normalize_pose(moved))
    # centred, and the hull of the result has unit area
    assert np.allclose(normalize_pose(points).mean(0), 0.0)
    assert convex_hull_area(normalize_pose(points)) == pytest.approx(1.0)
    assert pose_distance(normalize_pose(points), normalize_pose(moved)) == pytest.approx(0.0, abs=1e-12)
    degenerate = normalize_pose(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]))
    assert math.isinf(pose_distance(normalize_pose(points), degenerate))
