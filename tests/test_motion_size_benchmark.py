"""benchmarks/motion_size.py: keypoint displacement, spread and off-image tests on hand-made keypoints, and one
tiny measurement."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from motion_size import displacements, markdown, measure, off_image, spread


def test_displacements_count_keypoints_visible_in_frame_zero_and_the_frame() -> None:
    keypoints = np.array([
        [[0.0, 0.0], [10.0, 10.0], [5.0, 5.0]],  # frame 0 (keypoint 2 hidden: never counted)
        [[3.0, 4.0], [10.0, 10.0], [5.0, 6.0]],  # keypoint 0 moved 5 px; keypoint 1 hidden here
        [[0.0, 0.0], [16.0, 18.0], [99.0, 99.0]],  # keypoint 0 back; keypoint 1 moved (6, 8): 10 px
    ])
    visibility = np.array([[True, True, False], [True, False, True], [True, True, True]])
    moved = displacements(keypoints, visibility)
    np.testing.assert_allclose(moved, [0.0, 0.0, 5.0, 0.0, 10.0])
    assert moved.mean() == pytest.approx(3.0)
    assert np.percentile(moved, 90) == pytest.approx(8.0)  # sorted 0 0 0 5 10: 5 + 0.6 * (10 - 5)


def test_spread_and_off_image() -> None:
    assert spread(np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])) == pytest.approx(np.sqrt(2.0))
    points = np.array([[-0.6, 1.0], [3.5, 3.5], [3.6, 0.0], [0.0, -0.5]])
    np.testing.assert_array_equal(off_image(points, 4), [True, False, True, False])


def test_measure_on_a_tiny_set() -> None:
    row = measure("puppets", "large", videos=2, frames=4, size=32, seed=0)
    assert (row["family"], row["motion"], row["videos"], row["frames"]) == ("puppets", "large", 2, 4)
    assert 0.0 < row["mean_displacement_px"] <= row["max_displacement_px"]
    assert row["keypoint_spread_px"] > 1.0 and 0.0 < row["copy_l1"] < 1.0
    assert 0.5 < row["visible_fraction"] <= 1.0 and 0.0 <= row["off_image_fraction"] < 0.5
    table = markdown([row], 32)
    assert "| puppets | large |" in table and "32-px" in table
