"""Tests for motiontransfer.data.datasets: FOMM-layout datasets and paired augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from motiontransfer.data.datasets import (
    AugmentationConfig,
    FramesDataset,
    JitterConfig,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    augment_pair,
    hsv_to_rgb,
    open_training_data,
    resize_and_crop,
    rgb_to_hsv,
    split_videos,
    video_id,
)
from motiontransfer.errors import ConfigError, InputFileError
from motiontransfer.video.io import write_video

SIZE = 16
# name -> (constant colour, number of frames); one video of each kind, names with '#' for id sampling
TRAIN_VIDEOS = {
    "alice#1": ((230, 30, 30), 4),  # frame folder
    "alice#2.mp4": ((30, 230, 30), 6),
    "bob#1.gif": ((30, 30, 230), 5),
    "carol.mkv": ((230, 230, 30), 3),  # container without a frame count
}
TEST_VIDEOS = {"dave": ((128, 128, 128), 3), "erin.mp4": ((30, 230, 230), 4)}


def _write_constant(path: Path, colour: tuple[int, int, int], count: int) -> None:
    write_video(path, [np.full((SIZE, SIZE, 3), colour, dtype=np.uint8)] * count, fps=10)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("dataset")
    for split, videos in (("train", TRAIN_VIDEOS), ("test", TEST_VIDEOS)):
        for name, (colour, count) in videos.items():
            _write_constant(base / split / name, colour, count)
    (base / "train" / "README.txt").write_text("ignored")
    return base


def _colour_of(frame: torch.Tensor) -> tuple[int, int, int]:
    """Mean colour of a frame in 0..255."""
    mean = frame.mean(dim=(1, 2)) * 255
    return tuple(round(float(v)) for v in mean)  # type: ignore[return-value]


def _close(colour: tuple[int, int, int], expected: tuple[int, int, int], tolerance: int = 6) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, expected, strict=True))


def test_lengths_with_repeats_and_id_sampling(root: Path) -> None:
    assert len(FramesDataset(root, frame_size=SIZE)) == 4
    assert len(FramesDataset(root, frame_size=SIZE, num_repeats=3)) == 12
    by_id = FramesDataset(root, frame_size=SIZE, id_sampling=True, num_repeats=2)
    assert by_id.ids == ["alice", "bob", "carol.mkv"]
    assert len(by_id) == 6
    test = FramesDataset(root, split="test", num_repeats=5, id_sampling=True)
    assert len(test) == 2


def test_video_id() -> None:
    assert video_id("id10001#abc#3.mp4") == "id10001"
    assert video_id("plain.mp4") == "plain.mp4"


def test_items_come_from_one_video(root: Path) -> None:
    dataset = FramesDataset(root, frame_size=SIZE, num_repeats=2)
    for index in range(len(dataset)):
        item = dataset[index]
        assert set(item) == {"source", "driving", "name", "index"}
        assert item["index"] == index
        assert item["source"].shape == item["driving"].shape == (3, SIZE, SIZE)
        assert item["source"].dtype == torch.float32
        expected = TRAIN_VIDEOS[item["name"]][0]
        assert _close(_colour_of(item["source"]), expected), item["name"]
        assert _close(_colour_of(item["driving"]), expected), item["name"]


def test_id_sampling_picks_videos_of_the_id(root: Path) -> None:
    dataset = FramesDataset(root, frame_size=SIZE, id_sampling=True, num_repeats=8)
    names = {dataset.ids[i % 3]: set() for i in range(3)}
    for index in range(len(dataset)):
        item = dataset[index]
        names[video_id(item["name"])].add(item["name"])
    assert names == {"alice": {"alice#1", "alice#2.mp4"}, "bob": {"bob#1.gif"}, "carol.mkv": {"carol.mkv"}}


def test_frame_counts_and_paths(root: Path) -> None:
    dataset = FramesDataset(root, frame_size=SIZE)
    counts = {dataset.video_name(i): dataset.num_frames(i) for i in range(dataset.num_videos)}
    assert counts == {name: count for name, (_, count) in TRAIN_VIDEOS.items()}
    assert dataset.video_path(0) == root / "train" / dataset.video_name(0)


def test_determinism_and_epochs(root: Path) -> None:
    augmentation = AugmentationConfig()
    first = FramesDataset(root, frame_size=SIZE, augmentation=augmentation, seed=7, num_repeats=3)
    second = FramesDataset(root, frame_size=SIZE, augmentation=augmentation, seed=7, num_repeats=3)
    for index in (0, 5, 11):
        a, b = first[index], second[index]
        assert torch.equal(a["source"], b["source"]) and torch.equal(a["driving"], b["driving"])
        assert torch.equal(a["source"], first[index]["source"])
    epoch0 = [first[i]["source"] for i in range(len(first))]
    first.set_epoch(1)
    epoch1 = [first[i]["source"] for i in range(len(first))]
    assert any(not torch.equal(x, y) for x, y in zip(epoch0, epoch1, strict=True))
    first.set_epoch(0)
    assert all(torch.equal(x, first[i]["source"]) for i, x in enumerate(epoch0))
    other_seed = FramesDataset(root, frame_size=SIZE, augmentation=augmentation, seed=8, num_repeats=3)
    assert any(not torch.equal(x, other_seed[i]["source"]) for i, x in enumerate(epoch0))


def test_dataloader_batches(root: Path) -> None:
    loader = DataLoader(FramesDataset(root, frame_size=SIZE), batch_size=2)
    batch = next(iter(loader))
    assert batch["source"].shape == (2, 3, SIZE, SIZE)
    assert len(batch["name"]) == 2
    test_batch = next(iter(DataLoader(FramesDataset(root, split="test"), batch_size=2)))
    assert test_batch["name"] == ["dave", "erin.mp4"]


def test_test_split_items(root: Path) -> None:
    dataset = FramesDataset(root, split="test")
    assert [dataset[i] for i in range(len(dataset))] == [
        {"name": "dave", "path": str(root / "test" / "dave")},
        {"name": "erin.mp4", "path": str(root / "test" / "erin.mp4")},
    ]
    assert dataset.video_path(1) == root / "test" / "erin.mp4"
    with pytest.raises(IndexError):
        dataset[2]


# ----------------------------------------------------------------------------------------------------------
# Augmentation
# ----------------------------------------------------------------------------------------------------------


class _AlwaysBelowHalf:
    """Stand-in generator whose coin flips always say 'flip' (random() -> 0)."""

    def random(self) -> float:
        return 0.0


def _pattern() -> torch.Tensor:
    """A 2x3 frame with a distinct value in every pixel and channel."""
    return torch.arange(18, dtype=torch.float32).reshape(3, 2, 3) / 17


def test_horizontal_flip_is_a_mirror() -> None:
    frame = _pattern()
    config = AugmentationConfig(flip_horizontal=True, flip_time=False, jitter=None)
    source, driving = augment_pair(frame, frame * 0.5, config, _AlwaysBelowHalf())  # type: ignore[arg-type]
    expected = torch.stack([frame[:, :, 2], frame[:, :, 1], frame[:, :, 0]], dim=-1)
    assert torch.equal(source, expected)
    assert torch.equal(driving, expected * 0.5)


def test_time_flip_swaps_source_and_driving() -> None:
    a, b = torch.zeros(3, 2, 2), torch.ones(3, 2, 2)
    config = AugmentationConfig(flip_horizontal=False, flip_time=True, jitter=None)
    source, driving = augment_pair(a, b, config, _AlwaysBelowHalf())  # type: ignore[arg-type]
    assert source is b and driving is a


def test_flips_happen_in_the_dataset(tmp_path: Path) -> None:
    # one frame folder video whose frames get brighter; left half red, right half blue
    frames = []
    for k in range(8):
        frame = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
        frame[:, : SIZE // 2, 0] = 100 + 20 * k
        frame[:, SIZE // 2 :, 2] = 100 + 20 * k
        frames.append(frame)
    write_video(tmp_path / "train" / "ramp", frames)
    write_video(tmp_path / "test" / "ramp", frames[:1])
    config = AugmentationConfig(flip_horizontal=True, flip_time=True, jitter=None)
    dataset = FramesDataset(tmp_path, frame_size=SIZE, augmentation=config, num_repeats=40)
    plain = FramesDataset(tmp_path, frame_size=SIZE, num_repeats=40)
    mirrored = swapped = 0
    for index in range(len(dataset)):
        item, reference = dataset[index], plain[index]
        assert reference["source"].sum() <= reference["driving"].sum()  # sorted frame indices
        is_mirrored = bool(item["source"][0, 0, 0] == 0)  # red moved to the right
        mirrored += is_mirrored
        pair = {item["source"].sum().item(), item["driving"].sum().item()}
        assert pair == {reference["source"].sum().item(), reference["driving"].sum().item()}
        swapped += bool(item["source"].sum() > item["driving"].sum())
        if is_mirrored:
            assert torch.equal(item["source"].flip(-1).sum(0), item["source"].sum(0).flip(-1))
    assert 5 < mirrored < 35 and swapped > 3


def test_zero_jitter_is_identity(root: Path) -> None:
    zero = AugmentationConfig(flip_horizontal=False, flip_time=False, jitter=JitterConfig(0, 0, 0, 0))
    jittered = FramesDataset(root, frame_size=SIZE, augmentation=zero, num_repeats=2)
    plain = FramesDataset(root, frame_size=SIZE, num_repeats=2)
    for index in range(len(plain)):
        assert torch.equal(jittered[index]["source"], plain[index]["source"])
        assert torch.equal(jittered[index]["driving"], plain[index]["driving"])


def test_jitter_uses_the_same_parameters_for_both_frames(root: Path) -> None:
    config = AugmentationConfig(
        flip_horizontal=False, flip_time=False, jitter=JitterConfig(0.5, 0.5, 0.5, 0.2)
    )
    frame = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    source, driving = augment_pair(frame, frame.clone(), config, np.random.default_rng(3))
    assert torch.equal(source, driving)
    assert not torch.allclose(source, frame)


def test_hue_zero_leaves_pixels_and_rotation_is_correct() -> None:
    image = torch.rand(3, 5, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(adjust_hue(image, 0.0), image)
    red = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
    assert torch.allclose(adjust_hue(red, 1 / 3), torch.tensor([0.0, 1.0, 0.0])[:, None, None], atol=1e-6)
    assert torch.allclose(adjust_hue(red, -1 / 3), torch.tensor([0.0, 0.0, 1.0])[:, None, None], atol=1e-6)
    assert torch.allclose(hsv_to_rgb(rgb_to_hsv(image)), image, atol=1e-6)
    assert torch.allclose(adjust_hue(adjust_hue(image, 0.25), -0.25), image, atol=1e-5)


def test_colour_adjustments() -> None:
    image = torch.tensor([[[0.2, 0.8]], [[0.4, 0.4]], [[0.6, 0.0]]])
    assert torch.allclose(adjust_brightness(image, 0.5), image * 0.5)
    assert torch.equal(adjust_brightness(image, 1.0), image)
    assert torch.equal(adjust_contrast(image, 1.0), image)
    flat = adjust_contrast(image, 0.0)
    assert torch.allclose(flat, flat.flatten()[0].expand_as(flat))
    gray = adjust_saturation(image, 0.0)
    assert torch.allclose(gray[0], gray[1]) and torch.allclose(gray[1], gray[2])
    assert torch.allclose(adjust_saturation(image, 1.0), image)


@pytest.mark.parametrize(
    "kwargs",
    [{"brightness": -0.1}, {"contrast": float("nan")}, {"saturation": -1.0}, {"hue": 0.6}, {"hue": -0.1}],
)
def test_jitter_config_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        JitterConfig(**kwargs)


def test_augmentation_config_accepts_dict_and_validates() -> None:
    config = AugmentationConfig(jitter={"brightness": 0.2, "contrast": 0.0, "saturation": 0.0, "hue": 0.0})
    assert config.jitter == JitterConfig(0.2, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        AugmentationConfig(jitter="strong")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------
# Errors and splitting
# ----------------------------------------------------------------------------------------------------------


def test_missing_root_and_split(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="nowhere"):
        FramesDataset(tmp_path / "nowhere")
    _write_constant(tmp_path / "only_train" / "train" / "v", (1, 2, 3), 2)
    with pytest.raises(InputFileError, match="test"):
        FramesDataset(tmp_path / "only_train", split="test")


def test_empty_split(tmp_path: Path) -> None:
    _write_constant(tmp_path / "train" / "v", (1, 2, 3), 2)
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "notes.txt").write_text("no videos here")
    with pytest.raises(InputFileError, match="no videos"):
        FramesDataset(tmp_path, split="test")


def test_all_broken_videos_listed_at_once(tmp_path: Path) -> None:
    _write_constant(tmp_path / "train" / "good", (1, 2, 3), 2)
    (tmp_path / "train" / "empty.mp4").write_bytes(b"")
    (tmp_path / "train" / "noise.mp4").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "train" / "no_frames").mkdir()
    with pytest.raises(InputFileError) as caught:
        FramesDataset(tmp_path)
    message = str(caught.value)
    assert "3 unreadable" in message
    for name in ("empty.mp4", "noise.mp4", "no_frames"):
        assert name in message
    assert "good" not in message


def test_root_without_splits_is_split_80_20_deterministically(tmp_path: Path) -> None:
    names = [f"clip{k:02d}" for k in range(10)]
    for k, name in enumerate(names):
        _write_constant(tmp_path / name, (k * 20, 0, 0), 1)
    train = FramesDataset(tmp_path, frame_size=SIZE, seed=1)
    test = FramesDataset(tmp_path, split="test", seed=99)  # the training seed does not move videos
    train_names = {train.video_name(i) for i in range(train.num_videos)}
    test_names = {test.video_name(i) for i in range(test.num_videos)}
    assert len(train_names) == 8 and len(test_names) == 2
    assert train_names | test_names == set(names) and not train_names & test_names
    again = FramesDataset(tmp_path, split="test")
    assert {again.video_name(i) for i in range(again.num_videos)} == test_names
    _, expected_test = split_videos([tmp_path / n for n in names])
    assert {p.name for p in expected_test} == test_names
    # same draw as sklearn's train_test_split(test_size=0.2, random_state=0): permutation of RandomState(0)
    permutation = np.random.RandomState(0).permutation(10)
    assert test_names == {names[k] for k in permutation[:2]}
    assert len(split_videos([tmp_path / n for n in names[:7]])[1]) == 2  # ceil(7 * 0.2)


def test_invalid_arguments(root: Path) -> None:
    with pytest.raises(ValueError):
        FramesDataset(root, split="val")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FramesDataset(root, num_repeats=0)
    with pytest.raises(ValueError):
        FramesDataset(root, frame_size=0)


# ----------------------------------------------------------------------------------------------------------
# Procedural training data
# ----------------------------------------------------------------------------------------------------------


def test_procedural_pairs_match_the_source_and_are_deterministic() -> None:
    from motiontransfer.data.datasets import ProceduralPairsDataset, open_training_data
    from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec

    dataset = open_training_data("procedural:shapes:videos=3,frames=8", frame_size=32, num_repeats=2, seed=4)
    assert isinstance(dataset, ProceduralPairsDataset) and len(dataset) == 6
    item = dataset[4]
    assert item["source"].shape == (3, 32, 32) and item["driving"].dtype == torch.float32
    again = open_training_data("procedural:shapes:videos=3,frames=8", frame_size=32, num_repeats=2, seed=4)[4]
    assert torch.equal(item["source"], again["source"]) and torch.equal(item["driving"], again["driving"])
    # The pair is two frames of video 4 % 3 == 1 of the train split, as rendered by the source itself.
    source = ProceduralSource(ProceduralSpec("shapes", size=32, videos=3, frames=8))
    candidates = [torch.from_numpy(f.image).permute(2, 0, 1) for f in source.frames(1)]
    assert any(torch.allclose(item["source"], c) for c in candidates)
    assert any(torch.allclose(item["driving"], c) for c in candidates)
    assert item["name"] == source.video(1).name
    dataset.set_epoch(1)
    draws = {(tuple(dataset[i]["source"].flatten()[:5].tolist())) for i in range(6)}
    assert len(draws) > 1


def test_procedural_spec_size_wins_over_frame_size() -> None:
    from motiontransfer.data.datasets import open_training_data

    dataset = open_training_data("procedural:faces:size=48,videos=1,frames=2", frame_size=32)
    assert dataset[0]["source"].shape == (3, 48, 48)


# ----------------------------------------------------------------------------------------------------------
# Random resize + crop back to size (FOMM resize_param / crop_param) and the config mapping
# ----------------------------------------------------------------------------------------------------------


def test_resize_and_crop_keeps_the_size() -> None:
    frames = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(resize_and_crop(frames, 1.0, 0, 0), frames)
    # x2 nearest-like check on a constant-per-block image: the crop at (4, 4) shows the centre of the upsampled image
    blocks = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4).repeat_interleave(2, -1).repeat_interleave(
        2, -2) / 16
    zoomed = resize_and_crop(blocks, 2.0, 4, 4)
    assert zoomed.shape == blocks.shape
    assert torch.allclose(zoomed[0, 0, 2:6, 2:6], blocks[0, 0, 3:5, 3:5].repeat_interleave(2, -1).repeat_interleave(
        2, -2), atol=0.15)
    shrunk = resize_and_crop(torch.ones(1, 3, 8, 8) * 0.5, 0.5, 3, 3)
    assert shrunk.shape == (1, 3, 8, 8) and torch.allclose(shrunk, torch.full_like(shrunk, 0.5))  # edge padding
    corner = resize_and_crop(frames, 1.5, 99, 99)  # the corner is clamped to the valid range
    assert corner.shape == frames.shape


def test_random_resize_is_shared_by_both_frames_and_deterministic() -> None:
    config = AugmentationConfig(flip_horizontal=False, flip_time=False, jitter=None, resize_ratio=(0.8, 1.25))
    frame = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1))
    source, driving = augment_pair(frame, frame.clone(), config, np.random.default_rng(5))
    assert source.shape == frame.shape and torch.equal(source, driving)
    again, _ = augment_pair(frame, frame.clone(), config, np.random.default_rng(5))
    assert torch.equal(again, source)
    outcomes = [augment_pair(frame, frame, config, np.random.default_rng(seed))[0] for seed in range(8)]
    assert sum(not torch.allclose(out, frame) for out in outcomes) >= 6


def test_resize_ratio_validation() -> None:
    assert AugmentationConfig(resize_ratio=[0.9, 1.1]).resize_ratio == (0.9, 1.1)  # type: ignore[arg-type]
    for bad in [(1.1, 0.9), (0.0, 1.0), (1.0,), (1.0, float("inf"))]:
        with pytest.raises(ValueError, match="resize_ratio"):
            AugmentationConfig(resize_ratio=bad)  # type: ignore[arg-type]


def test_procedural_pairs_with_resize_are_deterministic() -> None:
    config = AugmentationConfig(flip_horizontal=True, flip_time=True, jitter=None, resize_ratio=(0.9, 1.1))
    first = open_training_data("procedural:shapes:videos=4,frames=6", 32, augmentation=config, seed=3)
    second = open_training_data("procedural:shapes:videos=4,frames=6", 32, augmentation=config, seed=3)
    for index in range(4):
        a, b = first[index], second[index]
        assert a["source"].shape == (3, 32, 32)
        assert torch.equal(a["source"], b["source"]) and torch.equal(a["driving"], b["driving"])


def test_augmentation_params_map_onto_the_dataset_augmentation() -> None:
    from motiontransfer.config import from_dict
    from motiontransfer.experiment import load_experiment
    from motiontransfer.params import DatasetParams, augmentation_config

    mgif = augmentation_config(load_experiment("mgif-256").dataset_params)
    assert mgif == AugmentationConfig(flip_horizontal=True, flip_time=True, jitter=JitterConfig(0, 0, 0, 0.5),
                                      resize_ratio=(0.9, 1.1))
    vox = augmentation_config(load_experiment("vox-256").dataset_params)
    assert vox.jitter == JitterConfig(0.1, 0.1, 0.1, 0.1) and vox.resize_ratio is None

    def params(augmentation: dict) -> DatasetParams:
        return from_dict(DatasetParams, {"frame_shape": [64, 64, 3], "augmentation_params": augmentation})

    plain = augmentation_config(params({"jitter_param": {"hue": 0.0}}))
    assert plain == AugmentationConfig(flip_horizontal=False, flip_time=False, jitter=None, resize_ratio=None)
    with pytest.raises(ConfigError, match="rotation_param: random rotation is not supported yet"):
        augmentation_config(params({"rotation_param": {"degrees": 10}}))
    with pytest.raises(ConfigError, match=r"crop_param\.size"):
        augmentation_config(params({"crop_param": {"size": [48, 48]}}))
    with pytest.raises(ConfigError, match="resize_ratio"):
        augmentation_config(params({"resize_param": {"ratio": [1.2, 0.8]}}))
