"""Temporal smoothing of the driving motion (motiontransfer.inference.smoothing, ``animate --smooth``): motions of
any family flattened and restored, the streaming smoothers equal to the offline filters, and the pipeline rendering
the smoothed motion whatever its batch size."""

from __future__ import annotations

import pytest
import torch

from fomm_helpers import small_animator
from motiontransfer.errors import UserError
from motiontransfer.families.fomm.animator import KeypointMotion
from motiontransfer.inference import pipeline
from motiontransfer.inference.smoothing import (
    CentredMotionSmoother,
    OneEuroMotionSmoother,
    as_motion_smoother,
    flatten_motion,
    unflatten_motion,
)
from motiontransfer.ops import temporal

torch.set_num_threads(1)


def keypoint_motion(frames: int, seed: int = 0) -> KeypointMotion:
    generator = torch.Generator().manual_seed(seed)
    return KeypointMotion(torch.rand(frames, 5, 2, generator=generator),
                          torch.rand(frames, 5, 2, 2, generator=generator))


def test_flatten_and_unflatten_motion() -> None:
    motion = keypoint_motion(4)
    flat = flatten_motion(motion)
    assert flat.shape == (4, 5 * 2 + 5 * 4)
    back = unflatten_motion(flat[1:3], motion)
    assert torch.equal(back.value, motion.value[1:3]) and torch.equal(back.jacobian, motion.jacobian[1:3])
    assert unflatten_motion(flatten_motion(KeypointMotion(motion.value)), KeypointMotion(motion.value)).jacobian is None


def test_every_family_motion_round_trips() -> None:
    from motiontransfer.families.lia.animator import LatentMotion
    from motiontransfer.families.monkeynet.animator import GaussianKeypoints

    for motion in (LatentMotion(torch.rand(3, 20)), GaussianKeypoints(torch.rand(3, 4, 2), torch.rand(3, 4, 2, 2)),
                   GaussianKeypoints(torch.rand(3, 4, 2), None)):
        back = unflatten_motion(flatten_motion(motion), motion)
        assert type(back) is type(motion)
        for name, value in vars(motion).items():
            assert (value is None and getattr(back, name) is None) or torch.equal(value, getattr(back, name))
    with pytest.raises(UserError, match="dataclass motion"):
        flatten_motion({"value": torch.zeros(1, 2)})


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_centred_motion_smoother_equals_offline_smoothing(batch: int) -> None:
    motion, frames = keypoint_motion(11), torch.rand(11, 3, 4, 4)
    stream = ((frames[i: i + batch], motion.select(slice(i, i + batch))) for i in range(0, 11, batch))
    out = list(CentredMotionSmoother(sigma=1.0)(stream))
    assert [len(f) for f, _ in out][:-1] == [batch] * (len(out) - 1)
    assert torch.equal(torch.cat([f for f, _ in out]), frames)
    values = torch.cat([m.value for _, m in out])
    expected = torch.stack(temporal.gaussian_smooth(list(motion.value), 1.0))
    assert torch.allclose(values, expected, atol=1e-6)
    assert torch.equal(values[0], motion.value[0]), "the first frame keeps its own motion"
    assert torch.allclose(torch.cat([m.jacobian for _, m in out]),
                          torch.stack(temporal.gaussian_smooth(list(motion.jacobian), 1.0)), atol=1e-6)


def test_one_euro_motion_smoother_and_choices() -> None:
    motion, frames = keypoint_motion(6), torch.rand(6, 3, 4, 4)
    out = list(OneEuroMotionSmoother(rate=25, min_cutoff=2.0)(iter([(frames, motion)])))
    expected = torch.stack(temporal.one_euro_smooth(list(flatten_motion(motion)), rate=25, min_cutoff=2.0))
    assert torch.allclose(flatten_motion(out[0][1]), expected)
    assert isinstance(as_motion_smoother(True), CentredMotionSmoother)
    assert as_motion_smoother(False) is None and as_motion_smoother(None) is None
    with pytest.raises(UserError, match="smooth must be"):
        as_motion_smoother("yes")  # type: ignore[arg-type]


def test_pipeline_renders_the_smoothed_motion_for_any_batch_size() -> None:
    model = small_animator()
    generator = torch.Generator().manual_seed(1)
    source, frames = torch.rand(3, 64, 64, generator=generator), list(torch.rand(7, 3, 64, 64, generator=generator))
    raw = list(pipeline.animate(model, source, frames, batch_size=4))
    runs = [list(pipeline.animate(model, source, frames, batch_size=size, smooth=CentredMotionSmoother(1.0)))
            for size in (1, 3, 8)]
    expected = torch.stack(temporal.gaussian_smooth([item["driving_keypoints"] for item in raw], 1.0))
    for items in runs:
        assert [item["index"] for item in items] == list(range(7))
        assert torch.allclose(torch.stack([item["driving_keypoints"] for item in items]), expected, atol=1e-5)
        assert all(torch.equal(item["driving"], frame) for item, frame in zip(items, frames, strict=True))
        assert torch.allclose(items[0]["prediction"], raw[0]["prediction"], atol=1e-5), "frame 0 unchanged"
        assert torch.allclose(items[3]["prediction"], runs[0][3]["prediction"], atol=1e-5)
    assert not torch.allclose(runs[0][3]["prediction"], raw[3]["prediction"], atol=1e-4)
