"""The fast inference blocks of motiontransfer.nn.fast against the eager blocks they replace: BatchNorm folding,
sub-pixel upsampling and Winograd convolutions on random inputs and non-trivial BatchNorm statistics (odd sizes,
batches, channels-last, bfloat16), and accelerate_network on whole FOMM, Monkey-Net and KPVP models."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from motiontransfer.checkpoint import load_model_file
from motiontransfer.experiment import experiment_from_dict, load_experiment, model_from_file
from motiontransfer.families.fomm.animator import FOMMAnimator
from motiontransfer.families.kpvp.animator import KPVPAnimator
from motiontransfer.families.monkeynet.animator import MonkeyNetAnimator
from motiontransfer.nn.blocks import DownBlock2d, Hourglass, ResBlock2d, SameBlock2d, UpBlock2d
from motiontransfer.nn.fast import (
    WINOGRAD_F2,
    WINOGRAD_F2_K2,
    WINOGRAD_F4,
    FastDownBlock2d,
    FastEqualLinear,
    FastOptions,
    FastResBlock2d,
    FastSameBlock2d,
    FastUpBlock2d,
    SubPixelUpConv2d,
    WinogradConv2d,
    WinogradTransform,
    _winograd_tiles,
    _winograd_tiles_dense,
    accelerate_network,
    accelerate_network_,
    winograd_conv2d,
    winograd_weight,
)
from motiontransfer.nn.stylegan2 import ConvLayer, EqualConv2d, EqualLinear
from motiontransfer.pretrained import bundled_model_path

EVERYWHERE = FastOptions(min_channels=1, max_channels=1 << 20, min_pixels=0, subpixel_max_weights=1 << 40)
"""Winograd on every eligible convolution, however small (the defaults skip the tiny test networks' layers)."""

NO_WINOGRAD = FastOptions(winograd=None, subpixel_winograd=None)


def randomize_batch_norms(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random running statistics and affine parameters in every BatchNorm2d (so that folding is not the identity);
    returns ``module`` in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for norm in module.modules():
            if isinstance(norm, nn.BatchNorm2d) and norm.running_mean is not None:
                count = norm.num_features
                norm.running_mean.copy_(torch.randn(count, generator=generator) * 0.3)
                norm.running_var.copy_(torch.rand(count, generator=generator) * 1.5 + 0.5)
                norm.weight.copy_(torch.rand(count, generator=generator) + 0.5)
                norm.bias.copy_(torch.randn(count, generator=generator) * 0.3)
    return module.eval()


def assert_close(actual: torch.Tensor, expected: torch.Tensor, tolerance: float = 1e-5) -> None:
    """Max abs difference at most ``tolerance`` times the scale of ``expected`` (its max abs, at least 1)."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    scale = max(1.0, expected.abs().max().item())
    difference = (actual.float() - expected.float()).abs().max().item()
    assert difference <= tolerance * scale, f"max abs difference {difference:.3g} at scale {scale:.3g}"


def layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def run_both(block: nn.Module, x: torch.Tensor, options: FastOptions = EVERYWHERE,
             channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor, nn.Module]:
    """(fast output, eager output, fast module) for ``block`` on ``x`` (both modules in ``x``'s layout)."""
    block = randomize_batch_norms(block)
    fast = accelerate_network(block, options)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    block, fast, x = block.to(memory_format=memory_format), fast.to(memory_format=memory_format), layout(
        x, channels_last)
    with torch.no_grad():
        return fast(x), block(x), fast


# ------------------------------------------------------------------------------------------------------ Winograd


@pytest.mark.parametrize("transform", [WINOGRAD_F2, WINOGRAD_F4, WINOGRAD_F2_K2], ids=["F2x3", "F4x3", "F2x2"])
@pytest.mark.parametrize("shape", [(1, 6, 8, 8), (2, 5, 7, 9), (3, 4, 1, 5)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_winograd_equals_a_direct_convolution(transform: WinogradTransform, shape: tuple[int, ...],
                                              channels_last: bool) -> None:
    torch.manual_seed(0)
    x = layout(torch.randn(shape), channels_last)
    weight = torch.randn(7, shape[1], transform.taps, transform.taps) / transform.taps
    bias, residual_shape = torch.randn(7), F.conv2d(x, weight, padding=1).shape
    residual = layout(torch.randn(residual_shape), channels_last)
    transformed_weight, transformed_bias = winograd_weight(weight, bias, transform)
    out = winograd_conv2d(x, transformed_weight.float(), transformed_bias.float(), transform, padding=1,
                          residual=residual)
    assert_close(out, F.conv2d(x, weight, bias, padding=1) + residual, 2e-5)
    assert out.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


@pytest.mark.parametrize("transform", [WINOGRAD_F2, WINOGRAD_F4, WINOGRAD_F2_K2], ids=["F2x3", "F4x3", "F2x2"])
@pytest.mark.parametrize("shape", [(1, 6, 8, 8), (2, 5, 7, 9), (3, 4, 1, 5)])
def test_dense_winograd_transforms_equal_the_separable_ones(transform: WinogradTransform,
                                                            shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    x = layout(torch.randn(shape), True)
    weight, bias = torch.randn(7, shape[1], transform.taps, transform.taps) / transform.taps, torch.randn(7)
    transformed_weight, transformed_bias = winograd_weight(weight, bias, transform)
    dense = _winograd_tiles_dense(x, transformed_weight, transformed_bias, transform, 1)
    separable = _winograd_tiles(x, transformed_weight, transformed_bias, transform, 1)
    assert dense.shape == separable.shape and dense.is_contiguous(memory_format=torch.channels_last)
    assert_close(dense, separable, 2e-5)


@pytest.mark.parametrize("transform", [WINOGRAD_F2, WINOGRAD_F4, WINOGRAD_F2_K2], ids=["F2x3", "F4x3", "F2x2"])
def test_winograd_in_bfloat16_is_a_convolution_to_bfloat16_accuracy(transform: WinogradTransform) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 32, 12, 12).bfloat16()
    weight, bias = (torch.randn(16, 32, transform.taps, transform.taps) / 16).bfloat16(), torch.randn(16).bfloat16()
    transformed_weight, transformed_bias = winograd_weight(weight, bias, transform)
    out = winograd_conv2d(x, transformed_weight, transformed_bias, transform, padding=1)
    exact = F.conv2d(x.double(), weight.double(), bias.double(), padding=1)
    assert out.dtype == torch.bfloat16 and out.shape == exact.shape
    # F(4x4)'s transforms amplify bfloat16's rounding (entries up to 5 and 1/24); F(2x2)'s barely do.
    limit = 0.1 if transform is WINOGRAD_F4 else 0.015
    assert (out.double() - exact).abs().max() < limit * exact.abs().max()


@pytest.mark.parametrize("chunk_channels", [1, 2, 32])
def test_winograd_weight_is_the_float64_transform_rounded_once(chunk_channels: int) -> None:
    torch.manual_seed(0)
    weight, bias = torch.randn(5, 3, 3, 3), torch.randn(5)
    g = torch.tensor(WINOGRAD_F4.g, dtype=torch.float64)
    exact = torch.einsum("ar,oirs,bs->aboi", g, weight.double(), g).reshape(36 * 5, 3, 1, 1)
    transformed, transformed_bias = winograd_weight(weight, bias, WINOGRAD_F4, chunk_channels=chunk_channels)
    assert transformed.dtype == torch.float32 and transformed.shape == (180, 3, 1, 1)
    assert torch.equal(transformed, exact.float())
    slot = WINOGRAD_F4.bias_slot * (WINOGRAD_F4.alpha + 1)
    assert torch.equal(transformed_bias.view(36, 5)[slot], bias)
    assert transformed_bias.abs().sum() == bias.abs().sum()
    as_float64, _ = winograd_weight(weight, bias, WINOGRAD_F4, dtype=torch.float64, chunk_channels=chunk_channels)
    torch.testing.assert_close(as_float64, exact, rtol=1e-15, atol=1e-15)


def test_winograd_transforms_compute_a_correlation_exactly_in_float64() -> None:
    for transform in (WINOGRAD_F2, WINOGRAD_F4, WINOGRAD_F2_K2):
        d = torch.randn(transform.alpha, dtype=torch.float64)
        g = torch.randn(transform.taps, dtype=torch.float64)
        bt, gt, at = (torch.tensor(m, dtype=torch.float64) for m in (transform.bt, transform.g, transform.at))
        expected = torch.stack([d[i:i + transform.taps] @ g for i in range(transform.m)])
        torch.testing.assert_close(at @ ((gt @ g) * (bt @ d)), expected)


def test_winograd_conv_runs_direct_where_it_would_not_pay() -> None:
    torch.manual_seed(0)
    weight, bias = torch.randn(4, 3, 3, 3), torch.randn(4)
    conv = WinogradConv2d(weight, bias, weight, WINOGRAD_F2, min_pixels=64)
    calls = []
    conv.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        for size in (4, 8):  # 16 pixels: direct; 64 pixels: Winograd; both exact
            x = torch.randn(1, 3, size, size)
            assert_close(conv(x), F.conv2d(x, weight, bias, padding=1))
        x = torch.randn(1, 3, 8, 8, dtype=torch.float64)  # float64: direct
        assert_close(conv.double()(x), F.conv2d(x, weight.double(), bias.double(), padding=1), 1e-12)


# ------------------------------------------------------------------------------------------------------- blocks


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
def test_same_and_down_blocks_fold_their_batch_norm(channels_last: bool, batch: int) -> None:
    torch.manual_seed(0)
    for block, size in ((SameBlock2d(5, 6, kernel_size=7, padding=3), (9, 7)), (SameBlock2d(6, 6), (5, 8)),
                        (SameBlock2d(6, 9, groups=3, kernel_size=1, padding=0), (4, 4)),
                        (DownBlock2d(5, 7), (10, 13)), (DownBlock2d(8, 8), (8, 8))):
        out, expected, fast = run_both(block, torch.randn(batch, block.conv.in_channels, *size),
                                       channels_last=channels_last)
        assert isinstance(fast, (FastSameBlock2d, FastDownBlock2d))
        assert_close(out, expected)


@pytest.mark.parametrize("options", [NO_WINOGRAD, EVERYWHERE, FastOptions(winograd=WINOGRAD_F2, min_channels=1,
                                                                         min_pixels=0)],
                         ids=["fold", "winograd-F4", "winograd-F2"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_res_block(options: FastOptions, channels_last: bool) -> None:
    torch.manual_seed(0)
    for shape in ((1, 16, 8, 8), (2, 12, 7, 9)):
        out, expected, fast = run_both(ResBlock2d(shape[1]), torch.randn(shape), options, channels_last)
        assert isinstance(fast, FastResBlock2d)
        assert_close(out, expected, 3e-5 if options.winograd is WINOGRAD_F4 else 1e-5)
        assert out.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


@pytest.mark.parametrize("options", [NO_WINOGRAD, EVERYWHERE], ids=["subpixel", "subpixel-winograd"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_up_block_is_computed_at_the_low_resolution(options: FastOptions, channels_last: bool) -> None:
    torch.manual_seed(0)
    for batch, in_channels, out_channels, size in ((1, 8, 6, (8, 8)), (2, 5, 7, (5, 3)), (1, 4, 4, (1, 1))):
        out, expected, fast = run_both(UpBlock2d(in_channels, out_channels),
                                       torch.randn(batch, in_channels, *size), options, channels_last)
        assert isinstance(fast, FastUpBlock2d) and isinstance(fast.conv, SubPixelUpConv2d)
        assert_close(out, expected)
        if size != (1, 1):  # a 1x1 input is both contiguous and channels-last
            assert out.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def test_outputs_are_channels_last_when_the_weights_are_as_with_torch_convolutions() -> None:
    torch.manual_seed(0)
    for block, channels in ((ResBlock2d(8), 8), (UpBlock2d(8, 6), 8), (SameBlock2d(8, 8), 8)):
        block = randomize_batch_norms(block)
        x = torch.randn(2, channels, 6, 5)
        with torch.no_grad():
            for fast in (accelerate_network(block, EVERYWHERE), accelerate_network(block, NO_WINOGRAD)):
                fast = fast.to(memory_format=torch.channels_last)
                out = fast(x)
                assert out.is_contiguous(memory_format=torch.channels_last)
                assert_close(out, block(x), 3e-5)


def test_up_blocks_the_sub_pixel_rewrite_does_not_cover_only_fold() -> None:
    torch.manual_seed(0)
    for block in (UpBlock2d(6, 4, groups=2), UpBlock2d(4, 5, kernel_size=5, padding=2)):
        out, expected, fast = run_both(block, torch.randn(2, block.conv.in_channels, 5, 6))
        assert isinstance(fast, FastUpBlock2d) and not fast.subpixel
        assert_close(out, expected)


@pytest.mark.parametrize("options", [NO_WINOGRAD, EVERYWHERE], ids=["fold", "winograd"])
def test_blocks_in_bfloat16(options: FastOptions) -> None:
    """The lead may cast the accelerated network: bfloat16 weights and inputs, compared with the float32 eager block
    (Winograd is skipped in bfloat16, so the error is that of bfloat16 convolutions)."""
    torch.manual_seed(0)
    for block, shape in ((ResBlock2d(16), (2, 16, 9, 8)), (UpBlock2d(8, 6), (1, 8, 6, 5)),
                         (DownBlock2d(6, 8), (1, 6, 8, 10)), (SameBlock2d(6, 8), (2, 6, 5, 5))):
        block = randomize_batch_norms(block)
        x = torch.randn(shape)
        fast = accelerate_network(block, options).to(torch.bfloat16).to(memory_format=torch.channels_last)
        with torch.no_grad():
            out = fast(x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last))
            expected = block(x)
        assert out.dtype == torch.bfloat16
        assert_close(out.float(), expected, 0.05)


def test_fast_blocks_are_inference_only() -> None:
    fast = accelerate_network(randomize_batch_norms(ResBlock2d(4)))
    x = torch.randn(1, 4, 4, 4)
    with pytest.raises(RuntimeError, match="no_grad"):
        fast(x.requires_grad_())
    with pytest.raises(RuntimeError, match="eval"), torch.no_grad():
        fast.train()(x)


# ------------------------------------------------------------------------------------------------------ networks


def test_accelerated_copy_shares_no_storage_with_the_original() -> None:
    torch.manual_seed(0)
    network = randomize_batch_norms(nn.Sequential(ResBlock2d(4), SameBlock2d(4, 4)))  # conv2: nothing to fold
    fast = accelerate_network(network)
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        expected = fast(x)
        for parameter in network.parameters():  # training the original later must not change the copy
            parameter.add_(1.0)
        assert torch.equal(fast(x), expected)


def test_accelerate_network_copies_and_leaves_what_it_does_not_know() -> None:
    class CustomBlock(SameBlock2d):
        """A subclass may change forward: it is not replaced."""

    torch.manual_seed(0)
    unfoldable = SameBlock2d(4, 4)
    unfoldable.norm = nn.BatchNorm2d(4, track_running_stats=False)  # batch statistics even in eval: not folded
    reflecting = ResBlock2d(4)
    reflecting.conv2.padding_mode = "reflect"
    network = randomize_batch_norms(nn.Sequential(SameBlock2d(3, 4), CustomBlock(4, 4), unfoldable, reflecting,
                                                  nn.Conv2d(4, 4, 1), Hourglass(4, 4, num_blocks=2, max_features=8)))
    network.train()
    before = {key: value.clone() for key, value in network.state_dict().items()}
    fast = accelerate_network(network)
    assert network.training and all(torch.equal(value, before[key]) for key, value in network.state_dict().items())
    kinds = [SameBlock2d, CustomBlock, SameBlock2d, ResBlock2d, nn.Conv2d, Hourglass]
    assert [type(module) for module in network] == kinds
    assert [type(module) for module in fast] == [FastSameBlock2d, *kinds[1:]]
    assert isinstance(fast[5].encoder.down_blocks[0], FastDownBlock2d)
    assert isinstance(fast[5].decoder.up_blocks[0], FastUpBlock2d)
    assert not fast.training and fast[4] is not network[4]
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert_close(fast(x), network.eval()(x))


def animate(model: Any, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
    """Source encoded once, driving frames' motion, rendered: the predictions (B, 3, H, W)."""
    with torch.no_grad():
        state = model.encode_source(source)
        return model.render(state, model.extract_motion(driving))["prediction"]


def accelerated(model: Any, options: FastOptions | None = None, channels_last: bool = False) -> Any:
    """A copy of ``model`` with its inference networks accelerated (and channels-last when asked)."""
    fast = copy.deepcopy(model)
    for name in model.inference_networks:
        network = accelerate_network(getattr(model, name), options)
        if channels_last:
            network = network.to(memory_format=torch.channels_last)
        setattr(fast, name, network)
    return fast


def check_model(model: Any, options: FastOptions | None, channels_last: bool = False, frames: int = 2,
                randomize: bool = True) -> None:
    """Accelerated predictions within 1e-4 of the eager ones (random BatchNorm statistics unless not
    ``randomize``); the eager networks untouched."""
    if randomize:
        model = randomize_batch_norms(model)
    generator = torch.Generator().manual_seed(1)
    size = model.size if hasattr(model, "size") else model.experiment.frame_size
    source = torch.rand(1, 3, size, size, generator=generator)
    driving = torch.rand(frames, 3, size, size, generator=generator)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    expected = animate(model, source, driving)
    fast = accelerated(model, options, channels_last)
    if channels_last:
        source, driving = (x.contiguous(memory_format=torch.channels_last) for x in (source, driving))
    out = animate(fast, source, driving)
    assert (out - expected).abs().max().item() <= 1e-4
    assert all(torch.equal(value, before[key]) for key, value in model.state_dict().items())
    assert not any(type(module).__name__.startswith("Fast") for module in model.modules())
    assert any(type(module).__name__.startswith("Fast") for module in fast.modules())


@pytest.mark.parametrize("options", [None, EVERYWHERE, NO_WINOGRAD], ids=["default", "winograd", "no-winograd"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fomm_predictions_match_eager(options: FastOptions | None, channels_last: bool) -> None:
    torch.manual_seed(0)
    check_model(FOMMAnimator(load_experiment("synthetic-faces-64")).eval(), options, channels_last)


@pytest.mark.parametrize("name", ["fomm-faces", "fomm-puppets"])
def test_bundled_trained_models_match_eager(name: str) -> None:
    """Trained weights (activations of a realistic scale), every rewrite forced on, channels-last."""
    model = model_from_file(load_model_file(bundled_model_path(name))).float().eval()
    check_model(model, EVERYWHERE, channels_last=True, frames=3, randomize=False)


def test_monkeynet_and_kpvp_predictions_match_eager() -> None:
    torch.manual_seed(0)
    monkeynet = experiment_from_dict({"family": "monkeynet", "model_params": {
        "common_params": {"num_kp": 3, "kp_variance": "matrix", "num_channels": 3},
        "kp_detector_params": {"temperature": 0.1, "block_expansion": 8, "max_features": 16, "num_blocks": 3},
        "generator_params": {
            "block_expansion": 8, "max_features": 16, "num_blocks": 3, "num_refinement_blocks": 1,
            "dense_motion_params": {"block_expansion": 8, "max_features": 16, "num_blocks": 3, "use_mask": True,
                                    "use_correction": True, "num_group_blocks": 1}},
        "discriminator_params": {"block_expansion": 8, "max_features": 16, "num_blocks": 3}},
        "dataset_params": {"root_dir": "procedural:puppets:videos=2,frames=4", "frame_shape": [32, 32, 3]}})
    check_model(MonkeyNetAnimator(monkeynet).eval(), EVERYWHERE)
    check_model(KPVPAnimator(load_experiment("kpvp-synthetic-puppets-64")).eval(), EVERYWHERE, channels_last=True)


def test_dtype_follows_the_network_and_the_inputs() -> None:
    """A float64 network gives a float64 fast copy that matches it (the device follows the same way; no CUDA here)."""
    block = randomize_batch_norms(nn.Sequential(ResBlock2d(8), UpBlock2d(8, 4), DownBlock2d(4, 4))).double()
    fast = accelerate_network(block, EVERYWHERE)
    assert all(p.dtype == torch.float64 for p in fast.parameters())
    x = torch.randn(2, 8, 9, 7, dtype=torch.float64)
    with torch.no_grad():
        out = fast(x)
        assert out.dtype == torch.float64
        assert_close(out, block.eval()(x), 1e-10)


@pytest.mark.slow
def test_vox_256_two_frames_match_eager() -> None:
    """The full-size FOMM (random weights, random BatchNorm statistics), default options, channels-last."""
    torch.manual_seed(0)
    check_model(FOMMAnimator(load_experiment("vox-256")).eval(), None, channels_last=True)


@pytest.mark.parametrize("activation", [None, "fused_lrelu"])
@pytest.mark.parametrize("bias", [True, False])
def test_equal_linear_is_prescaled_with_identical_numbers(activation, bias) -> None:
    torch.manual_seed(0)
    layer = EqualLinear(12, 7, bias=bias, bias_init=0.3, lr_mul=0.01, activation=activation)
    fast = accelerate_network(layer)
    assert isinstance(fast, FastEqualLinear)
    x = torch.randn(5, 12)
    with torch.no_grad():
        assert torch.equal(fast(x), layer(x))


@pytest.mark.parametrize("stride, padding, bias", [(1, 1, True), (2, 0, False)])
def test_equal_conv_is_prescaled_with_identical_numbers(stride, padding, bias) -> None:
    torch.manual_seed(0)
    layer = nn.Sequential(ConvLayer(6, 8, 3, downsample=stride == 2, bias=bias, activate=bias))
    fast = accelerate_network(layer)
    assert not any(isinstance(module, EqualConv2d) for module in fast.modules())
    x = torch.randn(2, 6, 16, 16)
    with torch.no_grad():
        assert torch.equal(fast(x), layer(x))


def test_winograd_runs_on_bfloat16_only_when_allowed() -> None:
    torch.manual_seed(0)
    block = randomize_batch_norms(ResBlock2d(16))
    x = torch.randn(1, 16, 12, 12)
    with torch.no_grad():
        expected = block.eval()(x)
        outputs = {}
        for allowed in (False, True):
            options = FastOptions(min_channels=1, min_pixels=0, winograd_bf16=allowed)
            fast = accelerate_network(block, options).to(torch.bfloat16)
            conv = fast.conv2
            assert isinstance(conv, WinogradConv2d) and conv.bfloat16 is allowed
            outputs[allowed] = fast(x.to(torch.bfloat16)).float()
    assert not torch.equal(outputs[False], outputs[True])  # a different algorithm ran
    for out in outputs.values():  # both within bfloat16 rounding of the float32 block
        assert_close(out, expected, 0.05)


def test_in_place_acceleration_equals_the_copy_and_frees_the_originals() -> None:
    torch.manual_seed(0)
    model = FOMMAnimator(load_experiment("synthetic-faces-64")).eval()
    for network in (model.kp_detector, model.generator):
        randomize_batch_norms(network)
    copied = accelerate_network(model.generator, EVERYWHERE)
    original_blocks = [m for m in model.generator.modules() if isinstance(m, (ResBlock2d, UpBlock2d, DownBlock2d))]
    same = accelerate_network_(model.generator, EVERYWHERE)
    assert same is model.generator
    assert not any(isinstance(m, (ResBlock2d, UpBlock2d, DownBlock2d, SameBlock2d)) for m in same.modules())
    assert original_blocks  # the blocks it held are no longer part of it
    assert not any(m is b for m in same.modules() for b in original_blocks)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        features_copy, features_same = copied.encode_source(x[:1]), same.encode_source(x[:1])
    for a, b in zip(features_copy, features_same, strict=True):
        assert torch.equal(a, b)
    block = randomize_batch_norms(ResBlock2d(8))
    assert isinstance(accelerate_network_(block, EVERYWHERE), FastResBlock2d)
