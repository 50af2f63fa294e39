"""Hand-checkable tests of the shared ops: coordinate grids, heatmaps, soft-argmax, warping, 2x2 inverse,
anti-aliased downsampling and the FOMM motion equations (Eq. 4-7)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from motiontransfer.nn.blocks import AntiAliasDownsample
from motiontransfer.ops import (
    deform_sparse,
    dense_motion_field,
    heatmap_differences,
    inverse_2x2,
    keypoints_to_gaussian,
    make_coordinate_grid,
    resize_flow,
    soft_argmax,
    sparse_motions,
    warp,
)


def test_coordinate_grid_corners_and_spacing() -> None:
    grid = make_coordinate_grid(5, 9)
    assert grid.shape == (5, 9, 2)
    assert grid[0, 0].tolist() == [-1.0, -1.0]
    assert grid[0, -1].tolist() == [1.0, -1.0]
    assert grid[-1, 0].tolist() == [-1.0, 1.0]
    assert grid[-1, -1].tolist() == [1.0, 1.0]
    torch.testing.assert_close(grid[:, 1:, 0] - grid[:, :-1, 0], torch.full((5, 8), 2 / 8))
    torch.testing.assert_close(grid[1:, :, 1] - grid[:-1, :, 1], torch.full((4, 9), 2 / 4))
    assert (grid[:, :, 0] == grid[0:1, :, 0]).all()  # x depends on the column only
    assert (grid[:, :, 1] == grid[:, 0:1, 1]).all()  # y on the row only


def test_coordinate_grid_follows_requested_dtype_and_device() -> None:
    grid = make_coordinate_grid(3, 4, device="meta", dtype=torch.float64)
    assert grid.device.type == "meta" and grid.dtype == torch.float64
    with pytest.raises(ValueError):
        make_coordinate_grid(1, 4)


def test_gaussian_heatmap_at_and_one_pixel_from_the_mean() -> None:
    height, width = 11, 21
    grid = make_coordinate_grid(height, width)
    kp = grid[4, 7].view(1, 1, 2)
    heatmap = keypoints_to_gaussian(kp, (height, width), 0.01)
    assert heatmap.shape == (1, 1, height, width)
    assert heatmap[0, 0, 4, 7].item() == pytest.approx(1.0)
    dx, dy = 2 / (width - 1), 2 / (height - 1)
    assert heatmap[0, 0, 4, 8].item() == pytest.approx(math.exp(-0.5 * dx**2 / 0.01), rel=1e-5)
    assert heatmap[0, 0, 5, 7].item() == pytest.approx(math.exp(-0.5 * dy**2 / 0.01), rel=1e-5)
    assert heatmap[0, 0, 5, 8].item() == pytest.approx(math.exp(-0.5 * (dx**2 + dy**2) / 0.01), rel=1e-5)


def test_soft_argmax_of_a_one_hot_map_lands_on_that_pixel() -> None:
    logits = torch.zeros(2, 3, 8, 10)
    pixels = [(1, 2), (7, 9), (4, 0)]
    for k, (row, col) in enumerate(pixels):
        logits[:, k, row, col] = 1.0
    probabilities, keypoints = soft_argmax(logits, temperature=0.01)
    assert probabilities.shape == (2, 3, 8, 10)
    torch.testing.assert_close(probabilities.sum(dim=(2, 3)), torch.ones(2, 3))
    grid = make_coordinate_grid(8, 10)
    expected = torch.stack([grid[row, col] for row, col in pixels]).expand(2, 3, 2)
    torch.testing.assert_close(keypoints, expected, atol=1e-4, rtol=0)


def test_soft_argmax_of_uniform_logits_is_the_centre() -> None:
    _, keypoints = soft_argmax(torch.zeros(1, 2, 6, 6), temperature=0.1)
    torch.testing.assert_close(keypoints, torch.zeros(1, 2, 2), atol=1e-6, rtol=0)


def test_inverse_2x2_matches_torch_linalg_inv() -> None:
    generator = torch.Generator().manual_seed(0)
    matrices = torch.eye(2) + 0.5 * torch.randn(4, 5, 2, 2, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(inverse_2x2(matrices), torch.linalg.inv(matrices), rtol=1e-10, atol=1e-12)
    as_float = matrices.float()
    torch.testing.assert_close(inverse_2x2(as_float), torch.linalg.inv(as_float), rtol=1e-4, atol=1e-5)
    assert inverse_2x2(torch.tensor([[2.0, 1.0], [1.0, 1.0]])).tolist() == [[1.0, -1.0], [-1.0, 2.0]]


def test_identity_grid_warp_reproduces_the_image_with_align_corners_true() -> None:
    """Exact up to float rounding: 2 j / (W-1) - 1 is not always representable, so a neighbour can receive a
    weight of the order of the float epsilon."""
    image = torch.rand(2, 3, 7, 9)
    grid = make_coordinate_grid(7, 9).expand(2, 7, 9, 2)
    torch.testing.assert_close(warp(image, grid, align_corners=True), image, atol=2e-7, rtol=0)
    image64 = image.double()
    grid64 = make_coordinate_grid(7, 9, dtype=torch.float64).expand(2, 7, 9, 2)
    torch.testing.assert_close(warp(image64, grid64, align_corners=True), image64, atol=1e-15, rtol=0)


def test_identity_grid_warp_with_align_corners_false_shifts_by_up_to_half_a_pixel() -> None:
    """With align_corners=False grid_sample maps -1/1 to the outer pixel edges, so the [-1, 1] pixel-centre grid
    samples column j at j + (j - (W-1)/2) / (W-1): exact at the centre, 0.5 px off at the borders (where zero
    padding then also enters). On a linear ramp the interior values follow that formula exactly; smooth images are
    reproduced away from the borders within a tolerance proportional to their gradient."""
    width = 33
    columns = torch.arange(width, dtype=torch.float64)
    ramp = columns.view(1, 1, 1, width).expand(1, 1, 5, width)
    grid = make_coordinate_grid(5, width, dtype=torch.float64).unsqueeze(0)
    warped = warp(ramp, grid, align_corners=False)
    expected = columns + (columns - (width - 1) / 2) / (width - 1)
    torch.testing.assert_close(warped[0, 0, 2, 1:-1], expected[1:-1])
    assert warped[0, 0, 2, width // 2].item() == pytest.approx(width // 2)
    profile = 0.6 + 0.4 * torch.sin(torch.linspace(0, math.pi, width))
    smooth = (profile[:, None] * profile[None, :]).view(1, 1, width, width)
    square_grid = make_coordinate_grid(width, width).unsqueeze(0)
    difference = warp(smooth, square_grid, align_corners=False) - smooth
    interior = slice(width // 4, 3 * width // 4 + 1)  # shifts <= 1/4 pixel, slopes <= 0.04 per pixel
    assert difference[..., interior, interior].abs().max() < 0.03
    assert difference[..., 0, :].abs().max() > 0.1  # but not at the borders


def test_warp_casts_the_grid_to_the_image_dtype() -> None:
    image = torch.rand(1, 1, 4, 4, dtype=torch.float64)
    out = warp(image, make_coordinate_grid(4, 4).unsqueeze(0), align_corners=True)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, image)


def test_resize_flow() -> None:
    flow = torch.rand(2, 8, 8, 2)
    assert resize_flow(flow, (8, 8)) is flow
    resized = resize_flow(flow, (16, 12))
    assert resized.shape == (2, 16, 12, 2)
    constant = torch.full((1, 4, 4, 2), 0.3)
    torch.testing.assert_close(resize_flow(constant, (8, 8)), torch.full((1, 8, 8, 2), 0.3))
    expected = F.interpolate(flow.permute(0, 3, 1, 2), size=(16, 12), mode="bilinear", align_corners=False)
    torch.testing.assert_close(resized, expected.permute(0, 2, 3, 1))


def test_resize_flow_with_align_corners_true_maps_a_coordinate_grid_to_the_grid_of_the_new_size() -> None:
    grid = make_coordinate_grid(32, 32)[None]
    torch.testing.assert_close(resize_flow(grid, (64, 64), align_corners=True), make_coordinate_grid(64, 64)[None])
    # The official convention (False) moves the second-last column of a 32 -> 64 upsampling by half a target pixel.
    official = resize_flow(grid, (64, 64))
    half_pixel = 0.5 * 2 / 63
    assert (official - make_coordinate_grid(64, 64)[None]).abs().max().item() == pytest.approx(half_pixel, rel=0.05)


def test_fomm_identity_motion_is_an_exact_identity_warp_with_both_corner_policies_true() -> None:
    from motiontransfer.families.fomm.networks import OcclusionAwareGenerator

    params = {"block_expansion": 8, "max_features": 16, "num_blocks": 2, "scale_factor": 0.5}
    image = torch.rand(1, 3, 32, 32)
    keypoints = {"value": torch.rand(1, 3, 2) * 2 - 1, "jacobian": torch.eye(2).expand(1, 3, 2, 2)}
    errors = {}
    for policy in (False, True):
        generator = OcclusionAwareGenerator(3, 3, 8, 16, 0, 1, True, params, align_corners=policy,
                                            flow_resize_align_corners=policy).eval()
        with torch.no_grad():
            errors[policy] = (generator(image, keypoints, keypoints)["deformed"] - image).abs().mean().item()
    assert errors[True] < 1e-5
    assert errors[False] > 0.01


def test_anti_alias_kernel_is_a_normalised_13x13_gaussian_at_quarter_scale() -> None:
    down = AntiAliasDownsample(3, 0.25)
    assert down.weight.shape == (3, 1, 13, 13)
    torch.testing.assert_close(down.weight.sum(dim=(1, 2, 3)), torch.ones(3))
    kernel = down.weight[0, 0]
    sigma = (1 / 0.25 - 1) / 2
    assert (kernel[6, 7] / kernel[6, 6]).item() == pytest.approx(math.exp(-1 / (2 * sigma**2)), rel=1e-5)
    torch.testing.assert_close(kernel, kernel.T)
    assert AntiAliasDownsample(1, 0.5).weight.shape == (1, 1, 5, 5)
    assert AntiAliasDownsample(1, 0.125).weight.shape == (1, 1, 29, 29)


def test_anti_alias_downsampling_of_a_constant_is_the_constant_away_from_the_zero_padded_border() -> None:
    down = AntiAliasDownsample(3, 0.25)
    out = down(torch.full((1, 3, 64, 64), 0.7))
    assert out.shape == (1, 3, 16, 16)
    # Output pixel i reads input rows 4i-6 .. 4i+6; for 2 <= i <= 14 all of them are inside the image.
    torch.testing.assert_close(out[:, :, 2:15, 2:15], torch.full((1, 3, 13, 13), 0.7))
    assert out[0, 0, 0, 0] < 0.7  # the official code pads with zeros


@pytest.mark.parametrize(("scale", "size"), [(0.25, 64), (0.25, 66), (0.5, 37), (0.125, 64), (0.4, 30)])
def test_anti_alias_subsampling_picks_the_pixels_of_nearest_interpolation(scale: float, size: int) -> None:
    """Striding by 1/scale gives the official F.interpolate(nearest, scale_factor) result, odd sizes included."""
    down = AntiAliasDownsample(2, scale)
    image = torch.rand(1, 2, size, size + 3)
    pads = (down.pad_before, down.pad_after, down.pad_before, down.pad_after)
    blurred = F.conv2d(F.pad(image, pads), down.weight, groups=2)
    expected = F.interpolate(blurred, scale_factor=(scale, scale), mode="nearest")
    assert torch.equal(down(image), expected)


def test_anti_alias_identity_at_scale_one() -> None:
    image = torch.rand(1, 3, 10, 10)
    assert AntiAliasDownsample(3, 1).forward(image) is image


def test_identity_motion_gives_identity_sparse_motions_and_warps() -> None:
    generator = torch.Generator().manual_seed(1)
    kp = torch.rand(2, 4, 2, generator=generator) * 2 - 1
    jacobians = torch.eye(2) + 0.3 * torch.randn(2, 4, 2, 2, generator=generator)
    grid = make_coordinate_grid(6, 8)
    exact = sparse_motions(kp, None, kp, None, (6, 8))
    assert exact.shape == (2, 5, 6, 8, 2)
    assert torch.equal(exact, grid.expand(2, 5, 6, 8, 2))
    with_jacobians = sparse_motions(kp, jacobians, kp, jacobians, (6, 8))
    torch.testing.assert_close(with_jacobians, grid.expand(2, 5, 6, 8, 2), atol=1e-5, rtol=0)
    source = torch.rand(2, 3, 6, 8)
    deformed = deform_sparse(source, exact, align_corners=True)
    assert deformed.shape == (2, 5, 3, 6, 8)
    torch.testing.assert_close(deformed, source.unsqueeze(1).expand(2, 5, 3, 6, 8), atol=2e-7, rtol=0)


def test_translation_of_all_keypoints_gives_a_translated_grid_and_dense_field() -> None:
    generator = torch.Generator().manual_seed(2)
    kp_driving = torch.rand(3, 5, 2, generator=generator) - 0.5
    shift = torch.tensor([0.2, -0.1])
    kp_source = kp_driving + shift
    grid = make_coordinate_grid(7, 7)
    sparse = sparse_motions(kp_source, None, kp_driving, None, (7, 7))
    torch.testing.assert_close(sparse[:, 0], grid.expand(3, 7, 7, 2))
    torch.testing.assert_close(sparse[:, 1:], (grid + shift).expand(3, 5, 7, 7, 2))
    identity = torch.eye(2).expand(3, 5, 2, 2)
    torch.testing.assert_close(sparse_motions(kp_source, identity, kp_driving, identity, (7, 7)), sparse)
    logits = torch.randn(3, 6, 7, 7, generator=generator)
    logits[:, 0] = -math.inf  # no weight on the (identity) background
    masks = torch.softmax(logits, dim=1)
    dense = dense_motion_field(sparse, masks)
    assert dense.shape == (3, 7, 7, 2)
    torch.testing.assert_close(dense, (grid + shift).expand(3, 7, 7, 2))


def test_first_order_motion_by_hand() -> None:
    """T(z) = J_s J_d^-1 (z - kp_d) + kp_s with J_s = [[2, 0], [0, 1]], J_d = [[1, 1], [0, 1]]:
    J_d^-1 = [[1, -1], [0, 1]], J_s J_d^-1 = [[2, -2], [0, 1]]. At z = (-1, 1) (row 4, column 0 of a 5x5 grid),
    kp_d = (0.5, -0.5), kp_s = (0.1, 0.2): z - kp_d = (-1.5, 1.5) -> (-6, 1.5) -> (-5.9, 1.7)."""
    kp_source = torch.tensor([[[0.1, 0.2]]])
    kp_driving = torch.tensor([[[0.5, -0.5]]])
    jac_source = torch.tensor([[[[2.0, 0.0], [0.0, 1.0]]]])
    jac_driving = torch.tensor([[[[1.0, 1.0], [0.0, 1.0]]]])
    sparse = sparse_motions(kp_source, jac_source, kp_driving, jac_driving, (5, 5))
    torch.testing.assert_close(sparse[0, 1, 4, 0], torch.tensor([-5.9, 1.7]))
    torch.testing.assert_close(sparse[0, 1, 1, 3], torch.tensor([0.1, 0.2]))  # z = kp_d maps to kp_s
    torch.testing.assert_close(sparse[0, 0, 4, 0], torch.tensor([-1.0, 1.0]))  # background: identity


def test_dense_motion_field_with_one_hot_masks_selects_a_motion() -> None:
    sparse = torch.randn(2, 3, 4, 4, 2)
    masks = torch.zeros(2, 3, 4, 4)
    masks[:, 2, :, :2] = 1
    masks[:, 1, :, 2:] = 1
    dense = dense_motion_field(sparse, masks)
    torch.testing.assert_close(dense[:, :, :2], sparse[:, 2, :, :2])
    torch.testing.assert_close(dense[:, :, 2:], sparse[:, 1, :, 2:])


def test_heatmap_differences_have_a_zero_background_channel() -> None:
    generator = torch.Generator().manual_seed(3)
    kp_driving = torch.rand(2, 4, 2, generator=generator) * 2 - 1
    kp_source = torch.rand(2, 4, 2, generator=generator) * 2 - 1
    heatmaps = heatmap_differences(kp_driving, kp_source, (9, 11), 0.01)
    assert heatmaps.shape == (2, 5, 1, 9, 11)
    assert torch.equal(heatmaps[:, 0], torch.zeros(2, 1, 9, 11))
    expected = keypoints_to_gaussian(kp_driving, (9, 11), 0.01) - keypoints_to_gaussian(kp_source, (9, 11), 0.01)
    torch.testing.assert_close(heatmaps[:, 1:, 0], expected)
    assert heatmaps.abs().max() <= 1


# ------------------------------------------------------------------ Monkey-Net keypoints with covariances


def test_heatmap_moments_of_hand_made_maps() -> None:
    from motiontransfer.ops import heatmap_moments

    single = torch.zeros(1, 1, 3, 5)
    single[0, 0, 0, 4] = 1.0  # x = 1, y = -1
    mean, covariance = heatmap_moments(single)
    assert torch.allclose(mean, torch.tensor([[[1.0, -1.0]]]))
    assert torch.allclose(covariance, torch.zeros(1, 1, 2, 2))
    pair = torch.zeros(1, 1, 3, 3)
    pair[0, 0, 1, 0] = pair[0, 0, 1, 2] = 0.5  # (x, y) = (-1, 0) and (1, 0), half the mass each
    mean, covariance = heatmap_moments(pair)
    assert torch.allclose(mean, torch.zeros(1, 1, 2), atol=1e-7)
    assert torch.allclose(covariance, torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]]))
    # eps is added to all 9 cells without renormalising: the mean is unchanged by symmetry, Sigma_yy gains
    # eps * (3 cells at y = -1 and 3 at y = 1) = 6 eps, Sigma_xx gains 6 eps too.
    _, covariance = heatmap_moments(pair.double(), eps=1e-3)
    assert torch.allclose(covariance, torch.tensor([[[[1.006, 0.0], [0.0, 0.006]]]], dtype=torch.float64))


def test_smallest_singular_value_2x2_matches_torch_svd() -> None:
    from motiontransfer.ops import smallest_singular_value_2x2

    matrices = torch.randn(50, 2, 2, dtype=torch.float64)
    expected = torch.linalg.svdvals(matrices)[:, -1]
    torch.testing.assert_close(smallest_singular_value_2x2(matrices), expected)
    scaled_identity = (0.01 * torch.eye(2)).requires_grad_()
    smallest_singular_value_2x2(scaled_identity).backward()
    assert torch.isfinite(scaled_identity.grad).all()


def test_clip_covariance_scales_the_whole_matrix_up_to_the_minimum_singular_value() -> None:
    from motiontransfer.ops import clip_covariance

    angle = torch.tensor(0.3)
    rotation = torch.stack([torch.stack([angle.cos(), -angle.sin()]), torch.stack([angle.sin(), angle.cos()])])
    covariance = rotation @ torch.diag(torch.tensor([0.5, 0.0005])) @ rotation.T
    clipped = clip_covariance(covariance[None], 0.001)[0]
    # sigma_min 0.0005 < 0.001: the whole matrix doubles (the official rule), so the aspect ratio is kept.
    expected = rotation @ torch.diag(torch.tensor([1.0, 0.001])) @ rotation.T
    assert torch.allclose(clipped, expected, atol=1e-6)
    large = torch.diag(torch.tensor([0.2, 0.3]))
    assert torch.allclose(clip_covariance(large, 0.001), large)
    assert torch.isfinite(clip_covariance(torch.zeros(2, 2), 0.001)).all()


def test_full_covariance_gaussians_match_hand_values_and_the_isotropic_case() -> None:
    from motiontransfer.ops import keypoints_to_gaussian_covariance

    mean = torch.zeros(1, 1, 2)
    covariance = torch.diag(torch.tensor([0.04, 0.16]))[None, None]
    maps = keypoints_to_gaussian_covariance(mean, covariance, (11, 11))  # grid step 0.2
    assert maps[0, 0, 5, 5] == pytest.approx(1.0)
    assert maps[0, 0, 7, 6].item() == pytest.approx(math.exp(-1.0), rel=1e-5)  # (x, y) = (0.2, 0.4): 1 + 1
    kp = torch.tensor([[[0.3, -0.2], [-0.5, 0.1]]])
    isotropic = keypoints_to_gaussian_covariance(kp, 0.01 * torch.eye(2).expand(1, 2, 2, 2), (16, 12))
    assert torch.allclose(isotropic, _isotropic_gaussians(kp), atol=1e-6)


def _isotropic_gaussians(kp: torch.Tensor) -> torch.Tensor:
    from motiontransfer.ops import keypoints_to_gaussian

    return keypoints_to_gaussian(kp, (16, 12), 0.01)


def test_gradients_flow_from_covariance_heatmaps_to_detector_logits() -> None:
    from motiontransfer.ops import clip_covariance, heatmap_moments, keypoints_to_gaussian_covariance, soft_argmax

    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    probabilities, _ = soft_argmax(logits, temperature=0.1)
    mean, covariance = heatmap_moments(probabilities)
    maps = keypoints_to_gaussian_covariance(mean, clip_covariance(covariance, 0.001), (8, 8))
    maps.sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_sequential_taps_returns_the_chosen_layer_outputs_in_order() -> None:
    from motiontransfer.nn.blocks import sequential_taps

    layers = torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False), torch.nn.ReLU(), torch.nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        layers[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
        layers[2].weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 3.0]]))
    first, last = sequential_taps(layers, torch.tensor([[1.0, 1.0]]), (0, 2))
    assert torch.equal(first, torch.tensor([[1.0, -1.0]])) and torch.equal(last, torch.tensor([[2.0, 0.0]]))
