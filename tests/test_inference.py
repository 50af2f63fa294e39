"""The streaming animation pipeline and the Python API: laziness, source caching, batching, best frame,
reconstruction, visualisation grid, input forms."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import motiontransfer as mt
from fomm_helpers import SIZE, model_file, small_animator, video_with_audio
from motiontransfer.api import as_frames, as_image, resolve_device
from motiontransfer.checkpoint import ModelFile
from motiontransfer.errors import UserError
from motiontransfer.families.fomm.animator import FOMMAnimator, KeypointMotion
from motiontransfer.inference import pipeline
from motiontransfer.models.base import AnimationModel, SourceState
from motiontransfer.ops.keypoints import relative_keypoints
from motiontransfer.video.io import write_image
from motiontransfer.visualize import animation_grid

# ------------------------------------------------------------------------------------------------ a stub family

STUB_SIZE, STUB_KP = 16, 4


class StubModel(AnimationModel):
    """Keypoints are written into the first pixels of each frame; the 'rendering' paints the target keypoints
    back, so outputs reveal exactly which motion the pipeline asked for."""

    family = "stub"

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.size = STUB_SIZE
        self.encode_calls = 0

    def extract_motion(self, frames: torch.Tensor) -> KeypointMotion:
        return KeypointMotion(frames[:, 0, 0, : 2 * STUB_KP].reshape(-1, STUB_KP, 2) * 2 - 1)

    def relative_motion(self, source_motion, driving_motion, driving_initial, scale):
        return KeypointMotion(relative_keypoints(source_motion.value, driving_motion.value, driving_initial.value,
                                                 scale))

    def encode_source(self, source: torch.Tensor) -> SourceState:
        self.encode_calls += 1
        return SourceState(source, self.extract_motion(source), None)

    def render(self, source_state, target_motion):
        batch = target_motion.batch_size
        prediction = torch.zeros(batch, 3, STUB_SIZE, STUB_SIZE)
        prediction[:, 0, 0, : 2 * STUB_KP] = (target_motion.value.reshape(batch, -1) + 1) / 2
        return {"prediction": prediction}

    def motion_keypoints(self, motion: KeypointMotion) -> torch.Tensor:
        return motion.value

    @classmethod
    def from_model_file(cls, model_file: ModelFile, device=None) -> StubModel:
        return cls()

    def to_model_file(self) -> ModelFile:
        return ModelFile("stub", {})


def stub_frame(keypoints: np.ndarray) -> torch.Tensor:
    """A frame whose encoded keypoints are ``keypoints`` (K, 2) in [-1, 1]."""
    frame = torch.zeros(3, STUB_SIZE, STUB_SIZE)
    frame[0, 0, : 2 * STUB_KP] = torch.as_tensor((keypoints.reshape(-1) + 1) / 2, dtype=torch.float32)
    return frame


SOURCE_POSE = np.array([[-0.5, -0.4], [0.5, -0.5], [0.4, 0.5], [-0.3, 0.3]])


def planted_frames(count: int = 9, planted: int = 5) -> list[torch.Tensor]:
    """Random poses, except frame ``planted``: the source pose shrunk and moved (same normalised pose)."""
    rng = np.random.default_rng(0)
    poses = [rng.uniform(-0.8, 0.8, size=(STUB_KP, 2)) for _ in range(count)]
    poses[planted] = 0.5 * SOURCE_POSE + np.array([0.2, -0.1])
    return [stub_frame(pose) for pose in poses]


def decoded(item: dict) -> torch.Tensor:
    return item["prediction"][0, 0, : 2 * STUB_KP].reshape(STUB_KP, 2) * 2 - 1


def test_best_frame_picks_the_planted_frame() -> None:
    model, frames = StubModel(), planted_frames()
    assert pipeline.find_best_frame(model, stub_frame(SOURCE_POSE), frames, batch_size=4) == 5
    items = list(pipeline.animate(model, stub_frame(SOURCE_POSE), frames, best_frame="auto", batch_size=4))
    assert [item["initial_index"] for item in items] == [5] * len(frames)
    # the best frame is the initial driving frame, so it reproduces the source pose exactly
    assert torch.allclose(decoded(items[5]), torch.as_tensor(SOURCE_POSE, dtype=torch.float32), atol=1e-6)


def test_best_frame_with_landmark_hook() -> None:
    model, frames = StubModel(), planted_frames(planted=2)
    calls: list[int] = []

    def landmarks(frame: torch.Tensor) -> np.ndarray | None:
        calls.append(1)
        return model.extract_motion(frame[None]).value[0].numpy()

    assert pipeline.find_best_frame(model, stub_frame(SOURCE_POSE), frames, landmarks=landmarks) == 2
    assert len(calls) == len(frames) + 1  # source + every driving frame


def test_best_frame_equals_official_forward_and_backward() -> None:
    """Official: animate frames[k:] and frames[:k+1][::-1] (each from its own first frame), concatenate
    backward[::-1] + forward[1:]."""
    model = small_animator()
    generator = torch.Generator().manual_seed(3)
    source = torch.rand(3, SIZE, SIZE, generator=generator)
    frames = [torch.rand(3, SIZE, SIZE, generator=generator) for _ in range(6)]
    best = 3

    def run(driving: list[torch.Tensor], **kwargs) -> list[torch.Tensor]:
        return [item["prediction"] for item in pipeline.animate(model, source, driving, batch_size=2, **kwargs)]

    forward = run(frames[best:])
    backward = run(frames[: best + 1][::-1])
    official = backward[::-1] + forward[1:]
    ours = run(frames, best_frame=best)
    assert len(ours) == len(official) == len(frames)
    for a, b in zip(ours, official, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(ours[0], run(frames)[0], atol=1e-4), "the initial frame must matter"


def test_best_frame_needs_a_reiterable_driving_source() -> None:
    model = StubModel()
    with pytest.raises(UserError, match="read twice"):
        next(pipeline.animate(model, stub_frame(SOURCE_POSE), iter(planted_frames()), best_frame="auto"))
    with pytest.raises(UserError, match="beyond the end"):
        next(pipeline.animate(model, stub_frame(SOURCE_POSE), planted_frames(), best_frame=20))
    with pytest.raises(UserError, match="best frame must be"):
        next(pipeline.animate(model, stub_frame(SOURCE_POSE), planted_frames(), best_frame=-1))
    with pytest.raises(UserError, match="best frame must be"):
        next(pipeline.animate(model, stub_frame(SOURCE_POSE), planted_frames(), mode="absolute", best_frame="soon"))
    # frame 0 needs no second pass
    assert len(list(pipeline.animate(model, stub_frame(SOURCE_POSE), iter(planted_frames()), best_frame=0))) == 9


def test_absolute_mode_renders_the_driving_keypoints() -> None:
    model, frames = StubModel(), planted_frames()
    items = list(pipeline.animate(model, stub_frame(SOURCE_POSE), frames, mode="absolute", best_frame="auto"))
    for item, frame in zip(items, frames, strict=True):
        assert item["initial_index"] is None
        assert torch.allclose(decoded(item), model.extract_motion(frame[None]).value[0], atol=1e-6)


class CountingFrames:
    """A one-shot frame generator that records how many frames were pulled."""

    def __init__(self, frames: list[torch.Tensor]) -> None:
        self.frames, self.pulled = frames, 0

    def __iter__(self) -> Iterator[torch.Tensor]:
        for frame in self.frames:
            self.pulled += 1
            yield frame


def test_streaming_is_lazy_and_encodes_the_source_once() -> None:
    model = small_animator()
    generator_encodes: list[int] = []
    original = model.generator.encode_source
    model.generator.encode_source = lambda x: (generator_encodes.append(1), original(x))[1]
    source = torch.rand(3, SIZE, SIZE)
    counting = CountingFrames([torch.rand(3, SIZE, SIZE) for _ in range(10)])
    items = pipeline.animate(model, source, iter(counting), batch_size=3)
    first = next(items)
    assert first["index"] == 0 and counting.pulled <= 3
    rest = list(items)
    assert counting.pulled == 10 and len(rest) == 9
    assert len(generator_encodes) == 1, "the source encoder runs once, not per frame"
    stub = StubModel()
    list(pipeline.animate(stub, stub_frame(SOURCE_POSE), planted_frames(), best_frame="auto", batch_size=2))
    assert stub.encode_calls == 1


def test_batch_size_does_not_change_the_output() -> None:
    model = small_animator()
    generator = torch.Generator().manual_seed(1)
    source = torch.rand(3, SIZE, SIZE, generator=generator)
    frames = [torch.rand(3, SIZE, SIZE, generator=generator) for _ in range(5)]
    one = list(pipeline.animate(model, source, frames, batch_size=1, adapt_scale=True))
    four = list(pipeline.animate(model, source, frames, batch_size=4, adapt_scale=True))
    for a, b in zip(one, four, strict=True):
        for key in ("prediction", "keypoints", "occlusion_map", "deformation"):
            assert torch.allclose(a[key], b[key], atol=1e-5), key
        # bilinear sampling of a noise image amplifies the flow's rounding differences
        assert torch.allclose(a["deformed"], b["deformed"], atol=1e-4)
    item = one[0]
    assert item["prediction"].shape == (3, SIZE, SIZE) and item["source_keypoints"].shape == (5, 2)
    assert item["occlusion_map"].shape == (1, SIZE // 2, SIZE // 2)
    assert float(item["prediction"].min()) >= 0.0 and float(item["prediction"].max()) <= 1.0


def test_animation_grid_shape() -> None:
    model = small_animator()
    item = next(pipeline.animate(model, torch.rand(3, SIZE, SIZE), [torch.rand(3, SIZE, SIZE)]))
    item["prediction"].clamp_(0.0, 1.0)  # ordinary tensors: callers may modify them in place
    grid = animation_grid(item)
    assert grid.shape == (SIZE + 4, 4 * SIZE + 10, 3) and grid.dtype == np.uint8
    without_occlusion = {key: value for key, value in item.items() if key != "occlusion_map"}
    assert animation_grid(without_occlusion).shape == grid.shape


def test_reconstruct_drives_the_first_frame_with_each_frame() -> None:
    model = small_animator()
    frames = [torch.rand(3, SIZE, SIZE) for _ in range(4)]
    items = list(pipeline.reconstruct(model, frames, batch_size=3))
    assert [item["index"] for item in items] == [0, 1, 2, 3]
    assert all(torch.equal(item["source"], frames[0]) for item in items)
    with torch.no_grad():
        state = model.encode_source(frames[0][None])
        expected = model.render(state, model.extract_motion(frames[2][None]))["prediction"][0]
    assert torch.allclose(items[2]["prediction"], expected, atol=1e-5)
    assert items[2]["l1"] == pytest.approx(float((expected - frames[2]).abs().mean()), abs=1e-5)
    with pytest.raises(UserError, match="no frames"):
        next(pipeline.reconstruct(model, []))


# ------------------------------------------------------------------------------------------------------- the API


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_file(tmp_path_factory.mktemp("model") / "small.mt")


def test_api_accepts_every_input_form(saved_model: Path, tmp_path: Path) -> None:
    animator = mt.load(saved_model)
    assert isinstance(animator.model, FOMMAnimator) and animator.size == SIZE
    assert animator.device == torch.device("cpu") and not animator.model.training
    rng = np.random.default_rng(0)
    source_hwc = rng.random((SIZE, SIZE, 3)).astype(np.float32)
    driving_thwc = rng.random((3, SIZE, SIZE, 3)).astype(np.float32)
    reference = list(animator.animate(source_hwc, driving_thwc))
    assert len(reference) == 3
    assert all(frame.shape == (SIZE, SIZE, 3) and frame.dtype == np.float32 for frame in reference)
    assert all(frame.min() >= 0.0 and frame.max() <= 1.0 for frame in reference)
    source_chw = torch.from_numpy(source_hwc).permute(2, 0, 1)
    driving_tchw = torch.from_numpy(driving_thwc).permute(0, 3, 1, 2)
    forms = [
        (source_chw, driving_tchw),                       # CHW tensor, T-first tensor
        (source_hwc[None], list(driving_thwc)),           # batch-of-1 HWC, list of HWC frames
        (source_chw, (frame for frame in driving_tchw)),  # generator of CHW frames
    ]
    for source, driving in forms:
        for ours, ref in zip(animator.animate(source, driving), reference, strict=True):
            assert np.allclose(ours, ref, atol=1e-5)
    # uint8 input is scaled to [0, 1]
    as_uint8 = (source_hwc * 255).round().astype(np.uint8)
    assert torch.allclose(as_image(as_uint8), source_chw, atol=1 / 255)
    # paths, with a source that needs centre-cropping and resizing
    write_image(tmp_path / "source.png", torch.rand(3, SIZE + 16, SIZE + 32))
    video = video_with_audio(tmp_path / "driving.mp4", num_frames=4)
    frames = list(animator.animate(tmp_path / "source.png", str(video), best_frame="auto"))
    assert len(frames) == 4 and frames[0].shape == (SIZE, SIZE, 3)
    assert len(list(animator.reconstruct(video))) == 4


def test_api_input_mistakes(saved_model: Path) -> None:
    animator = mt.load(saved_model)
    with pytest.raises(UserError, match=r"values in \[0, 1\]"):
        as_image(np.full((8, 8, 3), 200.0))
    with pytest.raises(UserError, match="shape"):
        as_image(np.zeros((8, 8, 5)))
    with pytest.raises(UserError, match="T-first"):
        as_frames(np.zeros((8, 8, 3)))
    with pytest.raises(UserError, match="read twice"):
        next(animator.animate(np.zeros((SIZE, SIZE, 3)), iter([np.zeros((SIZE, SIZE, 3))]), best_frame=1))


def test_api_save_and_reload(saved_model: Path, tmp_path: Path) -> None:
    animator = mt.load(saved_model, device="cpu")
    copy = mt.load(animator.save(tmp_path / "copy.mt"))
    source, driving = np.full((SIZE, SIZE, 3), 0.5), np.random.default_rng(1).random((2, SIZE, SIZE, 3))
    for a, b in zip(animator.animate(source, driving), copy.animate(source, driving), strict=True):
        assert np.array_equal(a, b)


def test_device_resolution() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(UserError, match="unknown device"):
        resolve_device("toaster")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            resolve_device("cuda")
