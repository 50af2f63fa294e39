"""benchmarks/transfer_error.py: articulated transfer and the fitted linear maps on hand-made keypoints, and the
per-pair errors and oracle renders on the bundled puppets model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from transfer_error import (
    PUPPET_PARENTS,
    articulated,
    linear_map,
    load_pair,
    markdown,
    pair_errors,
    pair_renders,
    per_keypoint_linear_maps,
)

import motiontransfer as mt
from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec
from motiontransfer.data.synthetic.puppets import KEYPOINT_NAMES
from motiontransfer.ops.keypoints import relative_keypoints


def test_articulated_turns_the_source_bones_by_the_driving_angles() -> None:
    # Joint 1 is the root and the parent of joint 0 (a parent listed after its child). The source arm is 2 long,
    # the driving arm 1; the driving arm turns 90 degrees while its root moves by (0.5, 0).
    source = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    driving = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.5, 1.0], [0.5, 0.0]]])
    out = articulated(source, driving, parents=(1, -1))
    torch.testing.assert_close(out, torch.tensor([[[2.0, 0.0], [0.0, 0.0]], [[0.5, 2.0], [0.5, 0.0]]]))
    # Relative transfer adds the driving displacement instead: off the turned source arm.
    torch.testing.assert_close(relative_keypoints(source[None], driving, driving[:1])[1, 0], torch.tensor([1.5, 1.0]))


def test_articulated_starts_at_the_source_and_keeps_its_bone_lengths() -> None:
    torch.manual_seed(0)
    initial = torch.randn(1, 4, 2, dtype=torch.float64)
    driving = torch.cat([initial, initial + 0.3 * torch.randn(3, 4, 2, dtype=torch.float64)])
    source = 1.7 * initial[0] + torch.tensor([0.5, -0.2], dtype=torch.float64)
    out = articulated(source, driving, parents=(-1, 0, 1, 0))
    torch.testing.assert_close(out[0], source)
    lengths = (out[:, 1] - out[:, 0]).norm(dim=-1)
    torch.testing.assert_close(lengths, (source[1] - source[0]).norm().expand(4))


def test_linear_map_recovers_a_known_map() -> None:
    torch.manual_seed(0)
    points = torch.randn(10, 2, dtype=torch.float64)
    known = torch.tensor([[1.5, 0.2], [-0.3, 0.8]], dtype=torch.float64)
    torch.testing.assert_close(linear_map(points, points @ known.T + torch.tensor([3.0, -1.0])), known)


def test_the_skeleton_names_every_joint_once_with_one_root() -> None:
    assert set(PUPPET_PARENTS) == set(KEYPOINT_NAMES)
    assert [name for name, parent in PUPPET_PARENTS.items() if parent is None] == ["pelvis"]
    assert all(parent in PUPPET_PARENTS for parent in PUPPET_PARENTS.values() if parent is not None)


def test_a_video_driving_its_own_subject_is_transferred_exactly() -> None:
    model = mt.load("fomm-puppets").model
    source = ProceduralSource(ProceduralSpec(family="puppets", size=64, videos=2, frames=6, seed=0, split="test"))
    errors = pair_errors(load_pair(model, source, 0, 0), 64)
    # The ground truth is the video itself, so relative transfer is exact; articulated transfer is off only by the
    # puppet's change of size within the video (it turns bones, it does not stretch them).
    assert errors["learned keypoints: relative (FOMM Eq. 14)"] == pytest.approx(0.0, abs=1e-4)
    assert errors["true joints: relative"] == pytest.approx(0.0, abs=1e-9)
    assert 0.0 <= errors["true joints: articulated on the skeleton"] < 0.1
    assert errors["true joints: no motion"] > 0.1
    crossed = pair_errors(load_pair(model, source, 0, 1), 64)
    assert crossed["learned keypoints: absolute"] > crossed["learned keypoints: relative (FOMM Eq. 14)"] > 0.0
    table = markdown([{"family": "puppets", "size": 64, "errors_px": crossed}])
    assert "| puppets | true joints: articulated on the skeleton |" in table


def test_per_keypoint_linear_maps_recover_a_known_map_for_each_keypoint() -> None:
    torch.manual_seed(0)
    displacements = torch.randn(12, 3, 2, dtype=torch.float64)
    known = torch.randn(3, 2, 2, dtype=torch.float64)
    targets = torch.stack([displacements[:, k] @ known[k].T for k in range(3)], dim=1)
    torch.testing.assert_close(per_keypoint_linear_maps(displacements, targets), known)


def test_oracle_renders_of_a_video_driving_its_own_subject() -> None:
    model = mt.load("fomm-puppets").model.eval()
    source = ProceduralSource(ProceduralSpec(family="puppets", size=64, videos=2, frames=6, seed=0, split="test"))
    same = pair_renders(model, load_pair(model, source, 0, 0))
    # Driven by itself, the ground truth is the driving video: every oracle gives the shipped transfer's motion.
    shipped = same["relative keypoints and Jacobians (shipped, Eqs. 14-15)"]
    for name, value in same.items():
        if name not in ("copy source", "no motion (the source's own keypoints and Jacobians)"):
            assert value == pytest.approx(shipped, abs=2e-4), name
    crossed = pair_renders(model, load_pair(model, source, 0, 1))
    # No motion renders the source itself (the blend keeps the warped source where nothing moves): copy-source.
    assert crossed["no motion (the source's own keypoints and Jacobians)"] == pytest.approx(
        crossed["copy source"], rel=0.05)
    assert crossed["ground truth's keypoints and Jacobians"] < crossed["copy source"]
    table = markdown([{"family": "puppets", "size": 64, "errors_px": {"x": 1.0},
                       "l1_reduction_percent": {"ground truth's keypoints and Jacobians": 44.8}}])
    assert "| puppets | ground truth's keypoints and Jacobians | 44.8% |" in table
