"""Shared training losses (motiontransfer.losses)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch

from motiontransfer.errors import InputFileError, UserError
from motiontransfer.losses import (
    ImagePyramid,
    PerceptualPyramidLoss,
    Vgg19Features,
    equivariance_jacobian_loss,
    equivariance_value_loss,
    feature_matching_loss,
    keypoint_separation_loss,
    kl_divergence_normal,
    load_vgg19_weights,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    nonsaturating_discriminator_loss,
    nonsaturating_generator_loss,
    r1_penalty,
)
from motiontransfer.ops.transforms import RandomTPS
from motiontransfer.pretrained import find_vgg19_weights

SCALES = (1, 0.5, 0.25, 0.125)
TORCHVISION_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28)


@pytest.fixture
def no_cached_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache, so that weights cached on the machine do not change the results."""
    home = tmp_path / "torch-home"
    home.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def fake_vgg_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random VGG19 weights saved in torchvision's key layout, with the (ignored) later layers and classifier."""
    torch.manual_seed(0)
    state = {key: value.clone() for key, value in Vgg19Features().state_dict().items()}
    # Entries a full torchvision state dict has and the loader must ignore (shapes shrunk to keep the file small).
    state["features.30.weight"] = torch.zeros(4, 4, 3, 3)
    state["features.30.bias"] = torch.zeros(4)
    state["classifier.0.weight"] = torch.zeros(8, 16)
    state["classifier.6.bias"] = torch.zeros(1000)
    path = tmp_path_factory.mktemp("vgg") / "vgg19-dcbb9e9d.pth"
    torch.save(state, path)
    return path


def _expected_pixel_pyramid(difference: float, size: int, weights_sum: float) -> float:
    """Hand computation of the fallback for ``prediction = target + difference`` at scales 1 and 0.5.

    At scale 0.5 the anti-aliasing blur (sigma 0.5, 5 taps, zero padding) of a constant c is c times
    a_i a_j, with a_i the kernel mass that falls inside the image for output pixel i (input pixel 2 i).
    """
    sigma, taps = 0.5, range(-2, 3)
    gaussian = {k: math.exp(-(k**2) / (2 * sigma**2)) for k in taps}
    total = sum(gaussian.values())
    inside = [sum(gaussian[k] for k in taps if 0 <= 2 * i + k < size) / total for i in range(size // 2)]
    mean_inside = sum(inside) / len(inside)
    return weights_sum * difference * (1 + mean_inside**2)


# ------------------------------------------------------------------------------------------------ image pyramid


def test_image_pyramid_of_a_constant_image_is_constant_with_the_right_shapes() -> None:
    pyramid = ImagePyramid(SCALES, num_channels=3)
    image = torch.full((2, 3, 64, 48), 0.7)
    levels = pyramid(image)
    assert list(levels) == ["prediction_1", "prediction_0.5", "prediction_0.25", "prediction_0.125"]
    for scale in SCALES:
        level = levels[f"prediction_{scale}"]
        assert level.shape == (2, 3, int(64 * scale), int(48 * scale))
        # FOMM's zero padding darkens the outer pixels of the blurred levels; the rest is the constant.
        torch.testing.assert_close(level[..., 2:-2, 2:-2], torch.full_like(level[..., 2:-2, 2:-2], 0.7))
    assert torch.equal(levels["prediction_1"], image)
    assert "downs.0-5.weight" in pyramid.state_dict()


# ------------------------------------------------------------------------------------------------ VGG19


def test_vgg19_features_layout_matches_torchvision_keys_and_slices() -> None:
    model = Vgg19Features()
    expected = {f"features.{i}.{name}" for i in TORCHVISION_CONV_INDICES for name in ("weight", "bias")}
    assert set(model.state_dict()) == expected
    assert all(not p.requires_grad for p in model.parameters())
    image = torch.rand(1, 3, 32, 32, requires_grad=True)
    features = model(image)
    assert [tuple(f.shape[1:]) for f in features] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4),
                                                      (512, 2, 2)]
    features[-1].sum().backward()
    assert image.grad is not None
    with pytest.raises(ValueError, match="16 px"):
        model(torch.rand(1, 3, 8, 8))


def test_load_vgg19_weights_reads_torchvision_format(fake_vgg_file: Path) -> None:
    model = load_vgg19_weights(fake_vgg_file)
    saved = torch.load(fake_vgg_file, weights_only=True)
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key
    assert all(not p.requires_grad for p in model.parameters())


def test_load_vgg19_weights_accepts_features_only_and_rejects_other_files(fake_vgg_file: Path,
                                                                          tmp_path: Path) -> None:
    saved = torch.load(fake_vgg_file, weights_only=True)
    features_only = {k: v for k, v in saved.items() if k.startswith("features.")}
    torch.save(features_only, tmp_path / "features.pth")
    model = load_vgg19_weights(tmp_path / "features.pth")
    assert torch.equal(model.features[28].weight, saved["features.28.weight"])

    del features_only["features.5.weight"]
    torch.save(features_only, tmp_path / "broken.pth")
    with pytest.raises(InputFileError, match=r"features\.5\.weight"):
        load_vgg19_weights(tmp_path / "broken.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a torch file")
    with pytest.raises(InputFileError, match="cannot read"):
        load_vgg19_weights(tmp_path / "garbage.pth")


def test_find_vgg19_weights_searches_the_configured_path_then_the_hub_cache(no_cached_weights: Path,
                                                                            tmp_path: Path) -> None:
    assert find_vgg19_weights(None) is None
    assert find_vgg19_weights(tmp_path / "missing.pth") is None
    configured = tmp_path / "mine.pth"
    configured.write_bytes(b"")
    assert find_vgg19_weights(configured) == configured
    cached = no_cached_weights / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    cached.parent.mkdir(parents=True)
    (cached.parent / "vgg19_bn-c79401a0.pth").write_bytes(b"")  # another network: not picked
    assert find_vgg19_weights(None) is None
    cached.write_bytes(b"")
    assert find_vgg19_weights(None) == cached
    assert find_vgg19_weights(tmp_path / "missing.pth") == cached
    assert find_vgg19_weights(str(configured)) == configured


# ------------------------------------------------------------------------------------------------ perceptual loss


def test_perceptual_loss_with_vgg_weights(fake_vgg_file: Path) -> None:
    loss = PerceptualPyramidLoss(vgg_weights=str(fake_vgg_file))
    assert loss.uses_vgg
    assert loss.vgg is not None
    assert torch.equal(loss.vgg.features[0].weight, torch.load(fake_vgg_file, weights_only=True)["features.0.weight"])
    generator = torch.Generator().manual_seed(1)
    target = torch.rand(2, 3, 32, 32, generator=generator)
    assert loss(target, target).item() == 0
    prediction = torch.rand(2, 3, 32, 32, generator=generator).requires_grad_(True)
    value = loss(prediction, target)
    assert value.ndim == 0 and value.item() > 0
    value.backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0

    # At 32 px the 0.25 and 0.125 scales (8 and 4 px) are skipped; the rest is Eq. 9 summed over slices and scales.
    pyramid_pred, pyramid_real = loss.pyramid(prediction.detach()), loss.pyramid(target)
    expected = 0.0
    for key in ("prediction_1", "prediction_0.5"):
        for a, b in zip(loss.vgg(pyramid_pred[key]), loss.vgg(pyramid_real[key]), strict=True):
            expected += 10 * (a - b).abs().mean().item()
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_perceptual_loss_finds_weights_in_the_hub_cache(fake_vgg_file: Path, no_cached_weights: Path) -> None:
    cached = no_cached_weights / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(fake_vgg_file.read_bytes())
    loss = PerceptualPyramidLoss(scales=(1,))
    assert loss.uses_vgg and loss.weights_path == cached


def test_perceptual_loss_too_small_for_vgg_raises(fake_vgg_file: Path) -> None:
    loss = PerceptualPyramidLoss(scales=(1, 0.5), vgg_weights=fake_vgg_file)
    with pytest.raises(ValueError, match="too small"):
        loss(torch.rand(1, 3, 12, 12), torch.rand(1, 3, 12, 12))


def test_missing_weights_warn_once_and_use_the_pixel_pyramid(no_cached_weights: Path) -> None:
    loss = PerceptualPyramidLoss(scales=(1, 0.5))
    assert not loss.uses_vgg
    target = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    prediction = (target + 0.25).requires_grad_(True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = loss(prediction, target)
        second = loss(prediction, target)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1
    assert "fallback" in messages[0] and str(no_cached_weights) in messages[0]
    expected = _expected_pixel_pyramid(0.25, 32, weights_sum=50.0)
    assert first.item() == pytest.approx(expected, rel=1e-5)
    assert second.item() == pytest.approx(expected, rel=1e-5)
    first.backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0
    # A second loss object warns again (the flag lives on the object, not in the module).
    with pytest.warns(UserWarning, match="fallback"):
        PerceptualPyramidLoss(scales=(1,))(prediction, target)


def test_pixel_pyramid_is_zero_for_identical_inputs_and_follows_the_dtype(no_cached_weights: Path) -> None:
    loss = PerceptualPyramidLoss(num_channels=1)
    image = torch.rand(1, 1, 64, 64, dtype=torch.float64)
    with pytest.warns(UserWarning):
        value = loss(image, image)
    assert value.item() == 0 and value.dtype == torch.float64


def test_fallback_none_raises_user_error_without_weights(no_cached_weights: Path) -> None:
    with pytest.raises(UserError, match="VGG19 weights"):
        PerceptualPyramidLoss(fallback="none")


def test_invalid_perceptual_settings_are_user_errors() -> None:
    with pytest.raises(UserError, match="fallback"):
        PerceptualPyramidLoss(fallback="mse")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="5 weights"):
        PerceptualPyramidLoss(weights=(1.0, 1.0))


# ------------------------------------------------------------------------------------------------ equivariance


def _equivariant_case(seed: int) -> tuple[RandomTPS, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Keypoints of a deformed frame Y and those an exactly equivariant detector gives on X (Eqs. 11-12)."""
    generator = torch.Generator().manual_seed(seed)
    transform = RandomTPS.sample(2, 0.05, 0.05, 5, generator=generator, dtype=torch.float64)
    value_y = torch.rand(2, 5, 2, generator=generator, dtype=torch.float64) * 1.6 - 0.8
    jacobian_y = torch.eye(2, dtype=torch.float64) + 0.3 * torch.randn(2, 5, 2, 2, generator=generator,
                                                                        dtype=torch.float64)
    value_x = transform.warp_coordinates(value_y)
    jacobian_x = transform.jacobian(value_y) @ jacobian_y
    return transform, {"value": value_x, "jacobian": jacobian_x}, {"value": value_y, "jacobian": jacobian_y}


def test_equivariance_losses_vanish_for_an_equivariant_detector() -> None:
    transform, kp_x, kp_y = _equivariant_case(seed=3)
    value = equivariance_value_loss(kp_x["value"], kp_y["value"], transform)
    jacobian = equivariance_jacobian_loss(kp_x["jacobian"], kp_y["value"], kp_y["jacobian"], transform)
    assert value.item() == pytest.approx(0, abs=1e-12)
    assert jacobian.item() == pytest.approx(0, abs=1e-12)
    # A detector that ignores the deformation is penalised.
    assert equivariance_value_loss(kp_y["value"], kp_y["value"], transform).item() > 1e-3
    assert equivariance_jacobian_loss(kp_y["jacobian"], kp_y["value"], kp_y["jacobian"], transform).item() > 1e-3


def test_equivariance_losses_on_a_hand_computed_case() -> None:
    # T(p) = A p + t with A = diag(2, 1), t = (0.1, 0); one keypoint.
    transform = RandomTPS(torch.tensor([[[2.0, 0.0, 0.1], [0.0, 1.0, 0.0]]]))
    value_x = torch.tensor([[[0.1, 0.2]]])
    value_y = torch.tensor([[[0.3, -0.2]]])  # T(value_y) = (0.7, -0.2): errors 0.6 and 0.4
    assert equivariance_value_loss(value_x, value_y, transform).item() == pytest.approx(0.5)
    eye = torch.eye(2)[None, None]
    # J_X^-1 A J_Y = A = diag(2, 1): |1 - A| has a single 1 among 4 entries.
    assert equivariance_jacobian_loss(eye, value_y, eye, transform).item() == pytest.approx(0.25)
    # With J_X = diag(4, 1): J_X^-1 A = diag(0.5, 1): mean |1 - .| = 0.5 / 4.
    j_x = torch.diag(torch.tensor([4.0, 1.0]))[None, None]
    assert equivariance_jacobian_loss(j_x, value_y, eye, transform).item() == pytest.approx(0.125)


def test_equivariance_jacobian_loss_backpropagates_into_the_keypoints() -> None:
    transform, kp_x, kp_y = _equivariant_case(seed=4)
    value_y = kp_y["value"].detach().clone().requires_grad_(True)
    jacobian_x = kp_x["jacobian"].detach().clone().requires_grad_(True)
    loss = equivariance_jacobian_loss(jacobian_x + 0.1, value_y + 0.05, kp_y["jacobian"], transform)
    loss.backward()
    assert value_y.grad is not None and value_y.grad.abs().sum() > 0
    assert jacobian_x.grad is not None and jacobian_x.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------------ GAN losses


def test_lsgan_losses_on_hand_made_maps() -> None:
    half = torch.full((2, 1, 3, 3), 0.5)
    zeros, ones = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    assert lsgan_generator_loss([half]).item() == pytest.approx(0.25)
    assert lsgan_generator_loss([half, zeros]).item() == pytest.approx(1.25)
    assert lsgan_generator_loss([ones]).item() == 0
    assert lsgan_discriminator_loss([ones], [zeros]).item() == 0
    assert lsgan_discriminator_loss([zeros], [ones]).item() == pytest.approx(2.0)
    assert lsgan_discriminator_loss([half, ones], [half, zeros]).item() == pytest.approx(0.5)


def test_feature_matching_on_hand_made_features() -> None:
    real = [[torch.ones(1, 2, 4, 4), torch.zeros(1, 3, 2, 2)], [torch.zeros(1, 2, 2, 2), torch.zeros(1, 3, 1, 1)]]
    fake = [[torch.zeros(1, 2, 4, 4), torch.full((1, 3, 2, 2), 2.0)], [torch.full((1, 2, 2, 2), 0.5),
                                                                        torch.zeros(1, 3, 1, 1)]]
    # scale 1: 10 * 1 + 1 * 2; scale 2: 10 * 0.5 + 0
    assert feature_matching_loss(real, fake, [10, 1]).item() == pytest.approx(17.0)
    assert feature_matching_loss(real, fake, [0, 1]).item() == pytest.approx(2.0)
    fake_grad = [[t.clone().requires_grad_(True) for t in scale] for scale in fake]
    feature_matching_loss(real, fake_grad, [10, 10, 10, 10]).backward()
    assert all(t.grad is not None for scale in fake_grad for t in scale)
    with pytest.raises(ValueError, match="weights"):
        feature_matching_loss(real, fake, [10])


def test_nonsaturating_losses() -> None:
    zero = torch.zeros(4, 1)
    assert nonsaturating_generator_loss(zero).item() == pytest.approx(math.log(2))
    assert nonsaturating_discriminator_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    logits = torch.tensor([[-1.0], [2.0]])
    expected = -torch.log(torch.sigmoid(logits)).mean().item()
    assert nonsaturating_generator_loss(logits).item() == pytest.approx(expected, rel=1e-6)
    assert nonsaturating_discriminator_loss(torch.full((2, 1), 30.0), torch.full((2, 1), -30.0)).item() < 1e-10


def test_r1_penalty_of_a_linear_discriminator() -> None:
    real = torch.rand(2, 3, 4, 4).requires_grad_(True)
    weight = torch.nn.Parameter(torch.tensor(3.0))
    prediction = (weight * real).sum(dim=(1, 2, 3))
    penalty = r1_penalty(prediction, real)
    assert penalty.item() == pytest.approx(9 * 3 * 4 * 4)  # gradient 3 at each of the 48 pixels
    penalty.backward()  # create_graph: the penalty trains the discriminator
    assert weight.grad is not None and weight.grad.item() == pytest.approx(2 * 3 * 48)
    with pytest.raises(ValueError, match="requires_grad"):
        r1_penalty(prediction, torch.rand(2, 3, 4, 4))


# ------------------------------------------------------------------------------------------------ KL


def test_kl_divergence_normal_closed_form() -> None:
    assert kl_divergence_normal(torch.zeros(3, 8), torch.zeros(3, 8)).item() == 0
    mu = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    # row 0: 0.5 (1 + 1 - 1 - 0) + 0.5 (2 + 4 - 1 - log 2) = 3 - log(2) / 2; row 1: 0; mean over rows.
    assert kl_divergence_normal(mu, logvar).item() == pytest.approx((3 - math.log(2) / 2) / 2)

    generator = torch.Generator().manual_seed(5)
    mu, logvar = torch.randn(4, 6, generator=generator), torch.randn(4, 6, generator=generator)
    posterior = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(posterior, prior).sum(-1).mean()
    torch.testing.assert_close(kl_divergence_normal(mu, logvar), expected)


# ------------------------------------------------------------------------------------------ keypoint separation


def test_keypoint_separation_matches_hand_computed_values() -> None:
    # two keypoints 0.3 apart, sigma 0.1: exp(-0.09 / 0.02) = exp(-4.5); coinciding keypoints give 1
    pair = torch.tensor([[[0.0, 0.0], [0.3, 0.0]]])
    assert math.isclose(float(keypoint_separation_loss(pair, 0.1)), math.exp(-4.5), rel_tol=1e-6)
    assert float(keypoint_separation_loss(torch.zeros(2, 4, 2), 0.1)) == 1.0
    # three keypoints: pairs at distances 0.1, 0.2 and sqrt(0.05); mean over the 6 ordered pairs
    three = torch.tensor([[[0.0, 0.0], [0.1, 0.0], [0.1, 0.2]]])
    expected = (math.exp(-0.01 / 0.02) + math.exp(-0.04 / 0.02) + math.exp(-0.05 / 0.02)) / 3
    assert math.isclose(float(keypoint_separation_loss(three, 0.1)), expected, rel_tol=1e-6)
    assert float(keypoint_separation_loss(torch.zeros(1, 1, 2), 0.1)) == 0.0


def test_keypoint_separation_gradient_pushes_close_keypoints_apart() -> None:
    keypoints = torch.tensor([[[0.0, 0.0], [0.05, 0.02], [0.9, 0.9]]], requires_grad=True)
    keypoint_separation_loss(keypoints, 0.1).backward()
    moved = keypoints.detach() - 0.5 * keypoints.grad
    assert torch.dist(moved[0, 0], moved[0, 1]) > torch.dist(keypoints[0, 0].detach(), keypoints[0, 1].detach())
    assert keypoints.grad[0, 2].abs().max() < 1e-6  # the far keypoint feels (almost) nothing
