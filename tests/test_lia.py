"""LIA: StyleGAN2 layers against hand-computed cases, the orthonormal motion dictionary, the official layout
(parameter count and names), relative transfer, conversion round trip, and a short run that learns."""

from __future__ import annotations

import argparse
import copy
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from motiontransfer.checkpoint import load_model_file
from motiontransfer.convert.official import convert_official
from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec
from motiontransfer.engine.optim import frozen_parameters
from motiontransfer.errors import UserError
from motiontransfer.experiment import experiment_from_dict
from motiontransfer.families.lia.animator import LatentMotion, LIAAnimator
from motiontransfer.families.lia.config import LIAConfig
from motiontransfer.families.lia.networks import Direction, Generator, build_discriminator
from motiontransfer.families.lia.task import generator_losses, stylegan2_adam
from motiontransfer.inference import pipeline
from motiontransfer.nn.stylegan2 import (
    Blur,
    EqualConv2d,
    EqualLinear,
    ModulatedConv2d,
    Upsample,
    blur_kernel,
    minibatch_stddev,
    upfirdn2d,
)
from motiontransfer.training.trainer import train

TINY: dict[str, Any] = {
    "family": "lia",
    "model_params": {"size": 64, "style_dim": 32, "motion_dim": 5, "max_channels": 16},
    "dataset_params": {"root_dir": "procedural:faces:videos=6,frames=8", "frame_shape": [64, 64, 3]},
    "train_params": {"num_repeats": 2, "batch_size": 4, "max_steps": 4, "log_every": 2, "sample_every": 2,
                     "checkpoint_every": 2, "keep_checkpoints": 2, "scales": [1.0, 0.5]},
}


def tiny(**model: Any) -> Any:
    config = copy.deepcopy(TINY)
    config["model_params"].update(model)
    return experiment_from_dict(config)


# ------------------------------------------------------------------------------------------- StyleGAN2 layers


def test_upfirdn2d_filters_upsamples_and_downsamples() -> None:
    delta = torch.zeros(1, 1, 5, 5)
    delta[0, 0, 2, 2] = 1
    kernel = blur_kernel([1, 3, 3, 1])
    assert kernel.sum().item() == pytest.approx(1)
    torch.testing.assert_close(kernel, torch.outer(torch.tensor([1, 3, 3, 1.0]), torch.tensor([1, 3, 3, 1.0])) / 64)
    # A delta filtered with padding 3 returns the (flipped = same, symmetric) kernel around it.
    out = upfirdn2d(delta, kernel, pad=(3, 3))
    assert out.shape == (1, 1, 8, 8)
    torch.testing.assert_close(out[0, 0, 2:6, 2:6], kernel)
    # Upsampling keeps a constant's level away from the border and doubles the size.
    constant = torch.full((1, 2, 6, 6), 0.7)
    up = Upsample()(constant)
    assert up.shape == (1, 2, 12, 12)
    torch.testing.assert_close(up[:, :, 3:-3, 3:-3], torch.full((1, 2, 6, 6), 0.7))
    # Blur + stride 2 keeps exactly half the size.
    assert upfirdn2d(constant, kernel, down=2, pad=(1, 1)).shape == (1, 2, 3, 3)
    assert Blur([1, 3, 3, 1], pad=(2, 1))(constant).shape == (1, 2, 6, 6)


@pytest.mark.parametrize("pad, up, down", [((2, 1), 1, 1), ((1, 2), 2, 1), ((2, 0), 1, 2), ((0, 0), 1, 1)])
def test_upfirdn2d_uneven_padding_matches_an_explicitly_padded_filter(pad, up, down) -> None:
    # The padding is the convolution's own, cropped when uneven: the same numbers as padding x first.
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 7)
    kernel = blur_kernel([1, 3, 3, 1])
    spread = torch.zeros(2, 3, 7 * up, 7 * up)
    spread[:, :, ::up, ::up] = x
    padded = torch.nn.functional.pad(spread, (pad[0], pad[1], pad[0], pad[1]))
    expected = torch.nn.functional.conv2d(padded, torch.flip(kernel, [0, 1]).expand(3, 1, 4, 4), groups=3)
    expected = expected[:, :, ::down, ::down]
    out = upfirdn2d(x, kernel, up=up, down=down, pad=pad)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_equalised_learning_rate_scales_by_one_over_sqrt_fan_in() -> None:
    linear = EqualLinear(4, 1, bias_init=0.5, lr_mul=0.01)
    with torch.no_grad():
        linear.weight.fill_(1 / 0.01)  # stored divided by lr_mul
        linear.bias.fill_(50.0)  # used times lr_mul
    # y = sum(x) * (1 / 0.01) * (0.01 / sqrt(4)) + 50 * 0.01 = sum(x) / 2 + 0.5
    assert linear(torch.tensor([[1.0, 2.0, 3.0, 4.0]])).item() == pytest.approx(5.5)
    conv = EqualConv2d(2, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    out = conv(torch.ones(1, 2, 5, 5))
    assert out[0, 0, 2, 2].item() == pytest.approx(18 / math.sqrt(18))  # 2 * 9 ones / sqrt(2 * 9)


def test_modulation_and_demodulation_against_a_hand_computed_case() -> None:
    conv = ModulatedConv2d(2, 1, 1, style_dim=3, demodulate=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([3.0, 4.0]).view(1, 1, 2, 1, 1))
        conv.modulation.weight.zero_()
        conv.modulation.bias.copy_(torch.tensor([2.0, 0.5]))  # styles s = (2, 0.5) whatever the input
    x = torch.tensor([1.0, 2.0]).view(1, 2, 1, 1).expand(1, 2, 3, 3)
    style = torch.randn(1, 3)
    scale = 1 / math.sqrt(2)  # fan-in 2 * 1 * 1
    # w' = scale * w * s = scale * (6, 2); y = 6 scale * 1 + 2 scale * 2 = 10 scale.
    torch.testing.assert_close(conv(x, style), torch.full((1, 1, 3, 3), 10 * scale))
    conv.demodulate = True
    # Demodulation divides by sqrt(sum w'^2 + 1e-8) = scale * sqrt(40): y = 10 / sqrt(40).
    torch.testing.assert_close(conv(x, style), torch.full((1, 1, 3, 3), 10 / math.sqrt(40 + 1e-8 / scale**2)))


def test_modulated_convolution_up_and_down_sampling_shapes_and_per_sample_styles() -> None:
    up = ModulatedConv2d(4, 3, 3, style_dim=8, upsample=True)
    down = ModulatedConv2d(4, 3, 3, style_dim=8, downsample=True)
    x, styles = torch.randn(2, 4, 8, 8), torch.randn(2, 8)
    assert up(x, styles).shape == (2, 3, 16, 16)
    assert down(x, styles).shape == (2, 3, 4, 4)
    same = ModulatedConv2d(4, 3, 3, style_dim=8)
    both = same(x, styles)
    torch.testing.assert_close(both[1:], same(x[1:], styles[1:]))  # each sample uses its own style


def test_minibatch_stddev_adds_the_group_standard_deviation() -> None:
    x = torch.zeros(2, 3, 2, 2)
    x[1] = 2.0  # per feature the two samples differ by 2: std (biased) = 1
    out = minibatch_stddev(x)
    assert out.shape == (2, 4, 2, 2)
    torch.testing.assert_close(out[:, 3], torch.full((2, 2, 2), math.sqrt(1 + 1e-8)))
    assert minibatch_stddev(torch.randn(3, 4, 2, 2)).shape == (3, 5, 2, 2)  # group size 3 divides 3


# ------------------------------------------------------------------------------------------- motion dictionary


def test_dictionary_is_orthonormal_and_w_is_the_weighted_sum_of_directions() -> None:
    direction = Direction(16, 5)
    q = direction.basis()
    torch.testing.assert_close(q.T @ q, torch.eye(5), atol=1e-5, rtol=0)
    magnitudes = torch.tensor([[1.0, 0.0, -2.0, 0.0, 0.5]])
    expected = q[:, 0] - 2 * q[:, 2] + 0.5 * q[:, 4]
    torch.testing.assert_close(direction(magnitudes)[0], expected)
    # Orthonormal after a training step too: the QR is taken at every call.
    with torch.no_grad():
        direction.weight.add_(torch.randn_like(direction.weight))
    q = direction.basis()
    torch.testing.assert_close(q.T @ q, torch.eye(5), atol=1e-5, rtol=0)


def test_official_256_architecture_count_and_names() -> None:
    generator = Generator(LIAConfig())
    state = generator.state_dict()
    assert sum(p.numel() for p in generator.parameters()) == 45_116_317  # "~45.1M params, 185 tensors"
    assert len(state) == 185
    shapes = {"enc.net_app.convs.0.0.weight": (64, 3, 1, 1), "enc.net_app.convs.1.conv2.0.kernel": (4, 4),
              "enc.net_app.convs.7.weight": (512, 512, 4, 4), "enc.fc.0.weight": (512, 512),
              "enc.fc.4.weight": (20, 512), "dec.direction.weight": (512, 20), "dec.input.input": (1, 512, 4, 4),
              "dec.conv1.conv.weight": (1, 512, 512, 3, 3), "dec.conv1.conv.modulation.weight": (512, 512),
              "dec.to_rgbs.5.conv.0.weight": (3, 64, 1, 1), "dec.to_flows.5.conv.weight": (1, 3, 64, 1, 1)}
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key
    assert len(generator.dec.convs) == 12


# ------------------------------------------------------------------------------------------------- animation


def test_relative_transfer_is_a_walk_on_the_magnitudes_and_animation_runs() -> None:
    model = LIAAnimator(tiny()).eval()
    source, initial, driving = (LatentMotion(torch.tensor([[v, 0.0, 1.0, 0.0, 0.0]])) for v in (0.5, 1.0, 3.0))
    out = model.transfer(source, driving, initial, mode="relative")
    torch.testing.assert_close(out.magnitudes, torch.tensor([[2.5, 0.0, 1.0, 0.0, 0.0]]))  # 3 - 1 + 0.5
    assert model.transfer(source, driving, initial, mode="absolute") is driving
    with pytest.raises(UserError, match="no keypoints"):
        model.transfer(source, driving, initial, adapt_scale=True)
    frames = list(pipeline.animate(model, torch.rand(3, 64, 64), torch.rand(3, 3, 64, 64), batch_size=2))
    assert len(frames) == 3 and frames[0]["prediction"].shape == (3, 64, 64)
    assert frames[0]["keypoints"].shape[0] == 0


def test_without_dictionary_the_mlp_gives_w_directly() -> None:
    model = LIAAnimator(tiny(use_dictionary=False)).eval()
    assert model.generator.enc.fc[-1].weight.shape == (32, 32)  # style_dim outputs
    motion = model.extract_motion(torch.rand(2, 3, 64, 64))
    assert motion.magnitudes.shape == (2, 32)
    torch.testing.assert_close(model.generator.latent_shift(motion.magnitudes), motion.magnitudes)


# ---------------------------------------------------------------------------------------- official checkpoints


def test_official_checkpoint_round_trip_with_its_argparse_namespace(tmp_path: Path) -> None:
    experiment = tiny()
    generator, discriminator = Generator(experiment.model_params), build_discriminator(experiment.model_params)
    path = tmp_path / "vox.pt"
    torch.save({"gen": generator.state_dict(), "dis": discriminator.state_dict(), "g_optim": {}, "d_optim": {},
                "args": argparse.Namespace(size=64, latent_dim_motion=5)}, path)
    model_file = convert_official(path, experiment)
    assert set(model_file.networks) == {"generator", "discriminator"}
    converted = LIAAnimator.from_model_file(model_file)
    reference = LIAAnimator(experiment, generator).eval()
    source, driving = torch.rand(3, 64, 64), torch.rand(2, 3, 64, 64)
    ours = torch.stack([f["prediction"] for f in pipeline.animate(converted, source, driving)])
    theirs = torch.stack([f["prediction"] for f in pipeline.animate(reference, source, driving)])
    torch.testing.assert_close(ours, theirs)
    with pytest.raises(UserError, match="does not match config"):
        convert_official(path, tiny(motion_dim=6), "other")


# -------------------------------------------------------------------------------------------------- training


@pytest.mark.slow
def test_a_short_run_lowers_the_reconstruction_loss() -> None:
    experiment = tiny()
    torch.manual_seed(0)
    generator, discriminator = Generator(experiment.model_params), build_discriminator(experiment.model_params)
    optimizer = stylegan2_adam(generator, 0.002, 4)
    from motiontransfer.losses import PerceptualPyramidLoss

    perceptual = PerceptualPyramidLoss([1.0, 0.5], [1.0] * 5)  # the offline pixel-pyramid fallback
    weights = experiment.train_params.loss_weights
    weights.generator_gan = 0
    faces = ProceduralSource(ProceduralSpec.parse("procedural:faces:videos=2,frames=4"))
    frames = torch.stack([faces.frame(0, 0).tensor(), faces.frame(1, 0).tensor()])
    losses = []
    for _ in range(40):
        with frozen_parameters(discriminator):
            total, terms, _ = generator_losses(generator, discriminator, perceptual, frames, frames, weights)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        losses.append(terms["l1"].item())
    assert sum(losses[-5:]) / 5 < 0.75 * sum(losses[:5]) / 5
    assert generator.dec.direction.weight.grad is not None  # the dictionary learns


def test_trainer_runs_lia(tmp_path: Path) -> None:
    result = train(tiny(), out_dir=tmp_path / "run", progress=False)
    assert result.step == 4 and result.checkpoint is not None
    assert {"l1", "perceptual", "generator_gan", "discriminator_gan"} <= set(result.losses)
    model = LIAAnimator.from_model_file(load_model_file(result.checkpoint.model))
    assert model.size == 64


def test_lia_commands_official_checkpoint_without_config_and_direction_grid(tmp_path: Path) -> None:
    import dataclasses

    from PIL import Image

    from motiontransfer.cli import main
    from motiontransfer.config import to_dict
    from motiontransfer.registry import family, registered
    from motiontransfer.video.io import VideoWriter, write_image

    config = tmp_path / "lia-tiny.yaml"
    import yaml

    config.write_text(yaml.safe_dump(to_dict(tiny())))
    # The 256-px default would make this test slow: point LIA's default at the tiny config.
    with registered(dataclasses.replace(family("lia"), default_config=str(config))):
        official = tmp_path / "vox.pt"
        torch.save({"gen": Generator(tiny().model_params).state_dict(), "args": argparse.Namespace(size=64)}, official)
        image, driving = tmp_path / "source.png", tmp_path / "driving.mp4"
        write_image(image, torch.rand(3, 64, 64))
        with VideoWriter(driving, fps=10) as writer:
            for _ in range(4):
                writer.write(torch.rand(3, 64, 64))
        assert main(["animate", "--checkpoint", str(official), "--source", str(image), "--driving", str(driving),
                     "--out", str(tmp_path / "out.mp4"), "--visualize"]) == 0
        assert main(["animate", "--checkpoint", str(official), "--family", "lia", "--source", str(image),
                     "--driving", str(driving), "--out", str(tmp_path / "out2.mp4")]) == 0
        assert main(["animate", "--checkpoint", str(official), "--source", str(image), "--driving", str(driving),
                     "--out", str(tmp_path / "bf.mp4"), "--best-frame", "auto"]) == 2  # no keypoints to compare
        converted = tmp_path / "lia.mt"
        assert main(["convert", "--from", "lia", "--input", str(official), "--out", str(converted)]) == 0
        grid = tmp_path / "grid.png"
        assert main(["lia-directions", "--checkpoint", str(converted), "--source", str(image), "--out", str(grid),
                     "--steps", "3"]) == 0
        width, height = Image.open(grid).size
        assert height > 5 * 64 and width > 3 * 64  # 5 directions x 3 steps
        assert main(["lia-directions", "--checkpoint", str(converted), "--source", str(image), "--out", str(grid),
                     "--steps", "3", "--direction", "0", "--direction", "4"]) == 0
        assert 2 * 64 < Image.open(grid).size[1] < 3 * 64  # only d_0 and d_4
        assert main(["lia-directions", "--checkpoint", str(converted), "--source", str(image), "--out",
                     str(tmp_path / "bad.png"), "--direction", "5"]) == 2  # M = 5: indices 0..4
        assert not (tmp_path / "bad.png").exists()
        assert main(["lia-directions", "--checkpoint", "fomm-faces", "--source", str(image), "--out",
                     str(tmp_path / "no.png")]) == 2
        assert not (tmp_path / "no.png").exists()


@pytest.mark.parametrize("size", [64, 128])
def test_sizes_and_channel_multiplier(size: int) -> None:
    config = LIAConfig(size=size, style_dim=32, motion_dim=4, max_channels=32, channel_multiplier=2)
    generator = Generator(config).eval()
    frames = torch.rand(1, 3, size, size) * 2 - 1
    with torch.no_grad():
        assert generator(frames, frames).shape == (1, 3, size, size)
    assert len(generator.dec.to_flows) == int(math.log2(size)) - 2
    assert LIAConfig().channels(64) == 256 and LIAConfig(channel_multiplier=2).channels(64) == 512
    with pytest.raises(ValueError, match="power of two"):
        LIAConfig(size=96)
