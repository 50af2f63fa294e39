"""Learned metrics (LPIPS, FID, FVD) from user-supplied weight files, exercised with small fake files.

The fake files carry random tensors under the real files' key names and shapes (written out here by hand where it
is practical, so that a wrong name in the library is caught); they test the loaders and the arithmetic, not the
metric values of the real networks.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from motiontransfer.errors import InputFileError, UserError
from motiontransfer.evaluation.learned import (
    ALEXNET_FILES,
    FID_INCEPTION_FILE,
    I3D_FILE,
    LPIPS,
    LPIPS_LINEAR_FILE,
    LPIPS_SCALE,
    LPIPS_SHIFT,
    FeatureStatistics,
    FIDInception,
    I3DFeatures,
    fid_from_statistics,
    fvd,
    learned_metric_status,
)
from motiontransfer.evaluation.metrics import MetricInputError, frechet_distance
from motiontransfer.pretrained import metrics_weights_dir

# torchvision AlexNet ``features`` convolutions: index -> (out, in, kernel).
ALEXNET_CONVS = {0: (64, 3, 11), 3: (192, 64, 5), 6: (384, 192, 3), 8: (256, 384, 3), 10: (256, 256, 3)}
LPIPS_WIDTHS = (64, 192, 384, 256, 256)


def _alexnet_state(generator: torch.Generator) -> dict[str, torch.Tensor]:
    state = {}
    for index, (out_channels, in_channels, kernel) in ALEXNET_CONVS.items():
        fan_in = in_channels * kernel * kernel
        state[f"features.{index}.weight"] = torch.randn(out_channels, in_channels, kernel, kernel,
                                                        generator=generator) * math.sqrt(2 / fan_in)
        state[f"features.{index}.bias"] = torch.randn(out_channels, generator=generator) * 0.1
    state["classifier.6.bias"] = torch.zeros(1000)  # the classifier is in the real file and must be ignored
    return state


def _lpips_linear_state(generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=generator) for i, c in enumerate(LPIPS_WIDTHS)}


@pytest.fixture
def lpips_dir(tmp_path: Path) -> Path:
    generator = torch.Generator().manual_seed(0)
    torch.save(_alexnet_state(generator), tmp_path / ALEXNET_FILES[0])
    torch.save(_lpips_linear_state(generator), tmp_path / LPIPS_LINEAR_FILE)
    return tmp_path


def _images(seed: int, batch: int = 2, size: int = 64) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------- folder and status


def test_weights_dir_explicit_then_environment_then_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MOTIONTRANSFER_METRICS_DIR", raising=False)
    assert metrics_weights_dir() == tmp_path / "home" / ".cache" / "motiontransfer" / "metrics"
    monkeypatch.setenv("MOTIONTRANSFER_METRICS_DIR", str(tmp_path / "env"))
    assert metrics_weights_dir() == tmp_path / "env"
    assert metrics_weights_dir(tmp_path / "explicit") == tmp_path / "explicit"


def test_status_names_missing_files_and_is_empty_when_present(tmp_path: Path) -> None:
    status = learned_metric_status(["psnr", "lpips", "fid", "fvd"], weights_dir=tmp_path)
    assert set(status) == {"lpips", "fid", "fvd"}
    assert "alexnet-owt-7be5be79.pth" in status["lpips"] and "lpips-alex-v0.1.pth" in status["lpips"]
    assert "pt_inception-2015-12-05-6726825d.pth" in status["fid"]
    assert "i3d_torchscript.pt" in status["fvd"]
    assert all(str(tmp_path) in reason and "MOTIONTRANSFER_METRICS_DIR" in reason for reason in status.values())

    (tmp_path / ALEXNET_FILES[0]).touch()
    assert "alexnet" not in learned_metric_status(["lpips"], tmp_path)["lpips"]  # only the missing file is named
    for name in (LPIPS_LINEAR_FILE, FID_INCEPTION_FILE, I3D_FILE):
        (tmp_path / name).touch()
    assert learned_metric_status(["lpips", "fid", "fvd", "ssim"], weights_dir=tmp_path) == {}


def test_status_follows_the_environment_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MOTIONTRANSFER_METRICS_DIR", str(tmp_path))
    (tmp_path / I3D_FILE).touch()
    assert learned_metric_status(["fvd", "fid"]) == {"fid": learned_metric_status(["fid"], tmp_path)["fid"]}


def test_missing_files_raise_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=re.escape("lpips-alex-v0.1.pth")):
        LPIPS.from_files(tmp_path)
    with pytest.raises(UserError, match=re.escape("pt_inception-2015-12-05-6726825d.pth")):
        FIDInception.from_file(tmp_path)
    with pytest.raises(UserError, match=re.escape("i3d_torchscript.pt")):
        I3DFeatures.from_file(tmp_path)


def test_random_networks_refuse_to_compute() -> None:
    with pytest.raises(RuntimeError, match="random weights"):
        LPIPS()(_images(0), _images(1))
    with pytest.raises(RuntimeError, match="random weights"):
        FIDInception()(_images(0))


# ------------------------------------------------------------------------------------------------------- LPIPS


def _reference_lpips(prediction: torch.Tensor, target: torch.Tensor, folder: Path) -> torch.Tensor:
    """LPIPS written out with functional calls on the raw tensors of the two files."""
    alex = torch.load(folder / ALEXNET_FILES[0], weights_only=True)
    lins = torch.load(folder / LPIPS_LINEAR_FILE, weights_only=True)
    shift = torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1)
    scale = torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1)

    def relus(images: torch.Tensor) -> list[torch.Tensor]:
        x = ((images * 2 - 1) - shift) / scale
        r1 = F.relu(F.conv2d(x, alex["features.0.weight"], alex["features.0.bias"], stride=4, padding=2))
        r2 = F.relu(F.conv2d(F.max_pool2d(r1, 3, 2), alex["features.3.weight"], alex["features.3.bias"], padding=2))
        r3 = F.relu(F.conv2d(F.max_pool2d(r2, 3, 2), alex["features.6.weight"], alex["features.6.bias"], padding=1))
        r4 = F.relu(F.conv2d(r3, alex["features.8.weight"], alex["features.8.bias"], padding=1))
        r5 = F.relu(F.conv2d(r4, alex["features.10.weight"], alex["features.10.bias"], padding=1))
        return [r1, r2, r3, r4, r5]

    total = torch.zeros(prediction.shape[0])
    for layer, (a, b) in enumerate(zip(relus(prediction), relus(target), strict=True)):
        a = a / (a.norm(dim=1, keepdim=True) + 1e-10)
        b = b / (b.norm(dim=1, keepdim=True) + 1e-10)
        weight = lins[f"lin{layer}.model.1.weight"].view(1, -1, 1, 1)
        total += ((a - b) ** 2 * weight).sum(dim=1).mean(dim=(1, 2))
    return total


def test_lpips_is_zero_for_identical_and_positive_for_different_images(lpips_dir: Path) -> None:
    lpips = LPIPS.from_files(lpips_dir)
    images = _images(0)
    same = lpips(images, images.clone())
    assert same.shape == (2,) and torch.equal(same, torch.zeros(2))
    different = lpips(images, _images(1))
    assert different.shape == (2,) and bool((different > 0).all())


def test_lpips_equals_the_formula_on_the_loaded_tensors(lpips_dir: Path) -> None:
    lpips = LPIPS.from_files(lpips_dir)
    prediction, target = _images(2, size=72), _images(3, size=72)
    expected = _reference_lpips(prediction, target, lpips_dir)
    torch.testing.assert_close(lpips(prediction, target), expected, rtol=1e-5, atol=1e-7)
    # dtype and device follow the inputs
    doubled = lpips(prediction.double(), target.double())
    assert doubled.dtype == torch.float64
    torch.testing.assert_close(doubled.float(), expected, rtol=1e-5, atol=1e-7)


def test_lpips_single_layer_by_hand(lpips_dir: Path) -> None:
    """The first layer term, with the normalisation, weighting and mean written as explicit loops."""
    lpips = LPIPS.from_files(lpips_dir)
    prediction, target = _images(4, batch=1, size=31), _images(5, batch=1, size=31)
    first = lpips.layer_distances(prediction, target)[0]
    alex = torch.load(lpips_dir / ALEXNET_FILES[0], weights_only=True)
    weight = torch.load(lpips_dir / LPIPS_LINEAR_FILE, weights_only=True)["lin0.model.1.weight"].flatten()
    shift, scale = torch.tensor(LPIPS_SHIFT).view(3, 1, 1), torch.tensor(LPIPS_SCALE).view(3, 1, 1)

    def relu1(image: torch.Tensor) -> np.ndarray:
        x = (2 * image[0] - 1 - shift) / scale
        out = F.relu(F.conv2d(x[None], alex["features.0.weight"], alex["features.0.bias"], stride=4, padding=2))
        return out[0].double().numpy()

    a, b = relu1(prediction), relu1(target)
    channels, height, width = a.shape
    total = 0.0
    for i in range(height):
        for j in range(width):
            norm_a = math.sqrt(sum(a[c, i, j] ** 2 for c in range(channels))) + 1e-10
            norm_b = math.sqrt(sum(b[c, i, j] ** 2 for c in range(channels))) + 1e-10
            total += sum(float(weight[c]) * (a[c, i, j] / norm_a - b[c, i, j] / norm_b) ** 2 for c in range(channels))
    assert first.item() == pytest.approx(total / (height * width), rel=1e-5)


def test_lpips_rejects_bad_files_naming_the_key(lpips_dir: Path) -> None:
    alex_path = lpips_dir / ALEXNET_FILES[0]
    state = torch.load(alex_path, weights_only=True)
    state["features.3.weights"] = state.pop("features.3.weight")
    torch.save(state, alex_path)
    with pytest.raises(InputFileError, match=r"missing features\.3\.weight\b.*unexpected features\.3\.weights") as info:
        LPIPS.from_files(lpips_dir)
    assert ALEXNET_FILES[0] in str(info.value)

    torch.save(_alexnet_state(torch.Generator().manual_seed(1)), alex_path)
    linear_path = lpips_dir / LPIPS_LINEAR_FILE
    linear = torch.load(linear_path, weights_only=True)
    linear["lin2.model.1.weight"] = torch.rand(1, 383, 1, 1)
    torch.save(linear, linear_path)
    with pytest.raises(InputFileError, match=r"lpips-alex-v0\.1\.pth.*lin2\.model\.1\.weight \(1, 383, 1, 1\)"):
        LPIPS.from_files(lpips_dir)

    linear_path.write_bytes(b"not a torch file")
    with pytest.raises(InputFileError, match=re.escape("lpips-alex-v0.1.pth")):
        LPIPS.from_files(lpips_dir)


def test_lpips_accepts_the_older_alexnet_file_name(lpips_dir: Path) -> None:
    (lpips_dir / ALEXNET_FILES[0]).rename(lpips_dir / "alexnet-owt-4df8aa71.pth")
    assert learned_metric_status(["lpips"], lpips_dir) == {}
    assert LPIPS.from_files(lpips_dir)(_images(0), _images(1)).shape == (2,)


def test_lpips_input_checks(lpips_dir: Path) -> None:
    lpips = LPIPS.from_files(lpips_dir)
    with pytest.raises(MetricInputError, match=r"\[0, 1\]"):
        lpips(_images(0) * 255, _images(1) * 255)
    with pytest.raises(MetricInputError, match="differ in shape"):
        lpips(_images(0), _images(1, batch=1))
    with pytest.raises(MetricInputError, match="31 px"):
        lpips(_images(0, size=24), _images(1, size=24))


# --------------------------------------------------------------------------------------------------------- FID

# A few keys of pt_inception-2015-12-05-6726825d.pth with their shapes (torchvision Inception3 names).
FID_KEY_SAMPLES = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_4a_3x3.bn.running_var": (192,),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_5d.branch5x5_2.conv.weight": (64, 48, 5, 5),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
    "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
    "Mixed_7b.branch3x3_2b.conv.weight": (384, 384, 3, 1),
    "Mixed_7c.branch3x3dbl_3a.bn.weight": (384,),
    "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
}


@pytest.fixture(scope="module")
def fid_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fid")
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, value in FIDInception().state_dict().items():
        if key.endswith("conv.weight"):
            state[key] = torch.randn(value.shape, generator=generator) * math.sqrt(2 / value[0].numel())
        elif key.endswith(("running_var", "bn.weight")):
            state[key] = torch.rand(value.shape, generator=generator) + 0.5
        elif key.endswith("num_batches_tracked"):
            continue  # older files lack the counters
        else:
            state[key] = torch.randn(value.shape, generator=generator) * 0.1
    state["fc.weight"] = torch.zeros(1008, 2048)  # in the real file; not used for the pool features
    state["fc.bias"] = torch.zeros(1008)
    torch.save(state, folder / FID_INCEPTION_FILE)
    return folder


def test_fid_inception_layout_matches_the_file() -> None:
    own = FIDInception().state_dict()
    for key, shape in FID_KEY_SAMPLES.items():
        assert tuple(own[key].shape) == shape, key
    assert not any(key.startswith(("fc.", "AuxLogits.")) for key in own)
    # torchvision's inception_v3 has 27,161,264 parameters; without AuxLogits (3,326,696) and fc (2,049,000):
    assert sum(p.numel() for p in FIDInception().parameters()) == 27_161_264 - 3_326_696 - 2_049_000


def test_fid_inception_features_from_64px_images(fid_dir: Path) -> None:
    model = FIDInception.from_file(fid_dir)
    seen: list[torch.Tensor] = []
    model.Conv2d_1a_3x3.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    images = _images(6, batch=2, size=64)
    features = model(images)
    assert features.shape == (2, 2048) and bool(torch.isfinite(features).all())
    assert features.std() > 0 and not torch.allclose(features[0], features[1])
    expected_input = 2 * F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False) - 1
    torch.testing.assert_close(seen[0], expected_input)
    model.train()
    assert not model.training  # BatchNorm statistics stay frozen


def test_fid_inception_rejects_bad_files_naming_the_key(tmp_path: Path) -> None:
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(32, 3, 5, 5), "AuxLogits.fc.weight": torch.zeros(1)},
               tmp_path / FID_INCEPTION_FILE)
    with pytest.raises(InputFileError) as info:
        FIDInception.from_file(tmp_path)
    message = str(info.value)
    assert FID_INCEPTION_FILE in message
    assert "missing Conv2d_1a_3x3.bn.weight" in message
    assert "unexpected AuxLogits.fc.weight" in message
    assert "Conv2d_1a_3x3.conv.weight (32, 3, 5, 5) (expected (32, 3, 3, 3))" in message


# ------------------------------------------------------------------------------------------ statistics and FD


def test_streaming_statistics_equal_numpy() -> None:
    rng = np.random.default_rng(0)
    chunks = [rng.normal(3.0, 2.0, size=(n, 6)) @ rng.normal(size=(6, 6)) for n in (1, 7, 0, 40, 2, 100)]
    stats = FeatureStatistics()
    for index, chunk in enumerate(chunks):
        stats.update(torch.from_numpy(chunk) if index % 2 else chunk)
    everything = np.concatenate(chunks)
    assert stats.count == everything.shape[0]
    np.testing.assert_allclose(stats.mean, everything.mean(axis=0), rtol=0, atol=1e-8)
    np.testing.assert_allclose(stats.cov, np.cov(everything, rowvar=False, ddof=1), rtol=0, atol=1e-8)


def test_fid_from_statistics() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(300, 8)), rng.normal(0.5, 1.5, size=(250, 8))
    stats_a, stats_b = FeatureStatistics(), FeatureStatistics(8)
    for start in range(0, 300, 64):
        stats_a.update(a[start:start + 64])
    stats_b.update(b)
    assert abs(fid_from_statistics(stats_a, stats_a)) < 1e-8
    assert fid_from_statistics(stats_a, stats_b) == pytest.approx(frechet_distance(a, b), rel=1e-9)
    assert fvd(a, b) == pytest.approx(frechet_distance(a, b), rel=1e-12)
    with pytest.raises(MetricInputError):
        stats_b.update(rng.normal(size=(4, 7)))
    single = FeatureStatistics()
    single.update(a[:1])
    with pytest.raises(MetricInputError, match="at least 2"):
        fid_from_statistics(single, stats_a)


# --------------------------------------------------------------------------------------------------------- FVD


class _FakeI3D(nn.Module):
    """Same call signature as the real detector; returns what it was given, to check the wrapper."""

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        batch = x.shape[0]
        flat = x.reshape(batch, -1)
        meta = [float(x.shape[1]), float(x.shape[2]), float(x.shape[3]), float(x.shape[4]),
                1.0 if rescale else 0.0, 1.0 if resize else 0.0, 1.0 if return_features else 0.0]
        header = torch.tensor(meta, dtype=x.dtype, device=x.device).expand(batch, len(meta))
        corner = x[:, :, :, 0, 0].reshape(batch, -1)  # (B, 3 * T) in channel-major order
        return torch.cat([header, flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values, corner],
                         dim=1)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_i3d_wrapper_feeds_the_detector_layout_and_range(tmp_path: Path) -> None:
    torch.jit.script(_FakeI3D()).save(str(tmp_path / I3D_FILE))
    detector = I3DFeatures.from_file(tmp_path)
    batch, frames = 3, 5
    channel = torch.arange(3).view(1, 1, 3, 1, 1)
    frame = torch.arange(frames).view(1, frames, 1, 1, 1)
    videos = ((channel * frames + frame) / (3 * frames - 1) * torch.ones(batch, frames, 3, 48, 64)).float()
    videos[1] = 1 - videos[1]
    features = detector(videos, batch_size=2)
    assert isinstance(features, np.ndarray) and features.shape == (batch, 9 + 3 * frames)
    np.testing.assert_array_equal(features[:, :7], np.tile([3, frames, 224, 224, 0, 0, 1], (batch, 1)))
    assert features[:, 7].min() >= -1 and features[:, 8].max() <= 1
    assert features[0, 7] == pytest.approx(-1) and features[0, 8] == pytest.approx(1)
    # the frames are constant, so resizing keeps their values: (B, 3, T) layout, [0, 1] -> [-1, 1]
    expected = (2 * videos[:, :, :, 0, 0].permute(0, 2, 1).reshape(batch, -1) - 1).double().numpy()
    np.testing.assert_allclose(features[:, 9:], expected, atol=1e-6)
    np.testing.assert_allclose(detector(videos, batch_size=1), features)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_i3d_wrapper_errors(tmp_path: Path) -> None:
    (tmp_path / I3D_FILE).write_bytes(b"not torchscript")
    with pytest.raises(InputFileError, match=re.escape("i3d_torchscript.pt")):
        I3DFeatures.from_file(tmp_path)

    class Flat(nn.Module):
        def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                    return_features: bool = False) -> torch.Tensor:
            return x.mean()

    torch.jit.script(Flat()).save(str(tmp_path / I3D_FILE))
    detector = I3DFeatures.from_file(tmp_path)
    videos = torch.rand(2, 4, 3, 16, 16)
    with pytest.raises(UserError, match=r"expected \(B, D\) features"):
        detector(videos)
    with pytest.raises(MetricInputError, match=r"\(B, T, 3, H, W\)"):
        detector(videos.permute(0, 2, 1, 3, 4))
    with pytest.raises(MetricInputError, match=r"\[0, 1\]"):
        detector(videos * 255)


# ------------------------------------------------------------------------------------------ in the evaluate runner


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_evaluate_adds_lpips_and_fvd_when_their_files_exist_and_skips_fid(lpips_dir: Path) -> None:
    from fomm_helpers import small_animator
    from motiontransfer.evaluation.runner import evaluate

    torch.jit.script(_ClipStatisticsI3D()).save(str(lpips_dir / I3D_FILE))
    model = small_animator()
    report = evaluate(model, f"procedural:shapes:videos=3,frames=16,size={model.size}", "reconstruction",
                      ["l1", "lpips", "fid", "fvd"], batch_size=8, metrics_dir=lpips_dir)
    assert set(report.skipped) == {"fid"} and FID_INCEPTION_FILE in report.skipped["fid"]
    assert report.summary["frames"] == 48
    # LPIPS per frame for the model and the copied source; 0 exactly where the source is the target (frame 0)
    first = [r for r in report.records if r["index"] == 0]
    assert all(r["copy_lpips"] == 0.0 for r in first)
    assert all(r["lpips"] > 0 for r in report.records)
    # FVD over the three 16-frame clips: the fake detector's features are each clip's mean and spread, so FVD is
    # the Fréchet distance of those: positive for the still source image against the moving target
    assert report.summary["fvd"] >= 0 and report.summary["copy_fvd"] > 0
    assert report.summary["fvd"] != report.summary["copy_fvd"]


class _ClipStatisticsI3D(nn.Module):
    """Same call signature as the real detector; (B, 2) features: each clip's mean and standard deviation."""

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        return torch.stack([flat.mean(dim=1), flat.std(dim=1)], dim=1)
