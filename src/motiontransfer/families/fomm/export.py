"""FOMM's networks as three exportable graphs (:class:`~motiontransfer.models.base.ExportGraph`), so that a runtime
such as ONNX Runtime encodes the source once and renders any number of driving frames from it:

* ``kp_detector``: frames (B, 3, H, W) -> ``keypoints`` (B, K, 2) [+ ``jacobians`` (B, K, 2, 2)];
* ``source_encoder``: source (1, 3, H, W) -> the generator's encoder features the renderer reads
  (``source_features_<level>``, level 0 the finest: only the coarsest level for the official generator, every level
  with ``multi_scale_occlusion``);
* ``renderer``: source, its features, source keypoints [+ Jacobians] (batch 1) and driving keypoints [+ Jacobians]
  (batch B) -> ``prediction`` (B, 3, H, W) [+ ``occlusion_map`` (B, 1, h, w) when the config estimates one].

The renderer takes the target motion as it is: relative transfer (``FOMMAnimator.relative_motion``) is a few array
operations on the keypoints, done by the caller (docs/export.md). B is dynamic; the frame size is fixed.
"""

from __future__ import annotations

import torch
from torch import nn

from motiontransfer.families.fomm.networks import OcclusionAwareGenerator
from motiontransfer.models.base import ExportGraph
from motiontransfer.models.keypoint_detector import KPDetector

BATCH = "batch"
"""The name of the dynamic driving-batch axis."""


class KeypointGraph(nn.Module):
    """The keypoint detector with tensor outputs: frames (B, 3, H, W) -> (keypoints,) or (keypoints, jacobians)
    (the heatmaps are left out)."""

    def __init__(self, kp_detector: KPDetector) -> None:
        super().__init__()
        self.kp_detector = kp_detector

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.kp_detector(frames)
        return (out["value"], out["jacobian"]) if "jacobian" in out else (out["value"],)


class SourceEncoderGraph(nn.Module):
    """The generator's encoder: source (1, 3, H, W) -> the feature levels ``levels`` (indices, finest first)."""

    def __init__(self, generator: OcclusionAwareGenerator, levels: tuple[int, ...]) -> None:
        super().__init__()
        self.generator = generator
        self.levels = levels

    def forward(self, source: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.generator.encode_source(source)
        return tuple(features[level] for level in self.levels)


class RendererGraph(nn.Module):
    """The generator's decoding with the source side cached (``FOMMAnimator.render``): source (1, 3, H, W), the
    feature ``levels`` (batch 1), source keypoints [+ Jacobians] (batch 1), driving keypoints [+ Jacobians]
    (batch B) -> (prediction,) [+ (occlusion_map,)].

    The batch-1 inputs are expanded to B with the driving keypoints' own batch size as a tensor dimension (never a
    Python int), so that B stays a dynamic axis of the traced graph.
    """

    def __init__(self, generator: OcclusionAwareGenerator, levels: tuple[int, ...], jacobians: bool,
                 occlusion: bool) -> None:
        super().__init__()
        self.generator = generator
        self.levels = levels
        self.jacobians = jacobians
        self.occlusion = occlusion

    def forward(self, source: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        count = len(self.levels)
        given, motion = tensors[:count], tensors[count:]
        if self.jacobians:
            kp_source, jac_source, kp_driving, jac_driving = motion
        else:
            (kp_source, kp_driving), jac_source, jac_driving = motion, None, None
        batch = kp_driving.shape[0]
        # every level, or only the coarsest: the decoder reads the list from its end in both cases
        features = [value.expand(batch, -1, -1, -1) for value in given]
        source_kp = {"value": kp_source.expand(batch, -1, -1)}
        driving_kp = {"value": kp_driving}
        if jac_source is not None and jac_driving is not None:
            source_kp["jacobian"] = jac_source.expand(batch, -1, -1, -1)
            driving_kp["jacobian"] = jac_driving
        out = self.generator.decode(features, source.expand(batch, -1, -1, -1), source_kp, driving_kp)
        return (out["prediction"], out["occlusion_map"]) if self.occlusion else (out["prediction"],)


def feature_levels(generator: OcclusionAwareGenerator) -> tuple[int, ...]:
    """The encoder levels the decoder reads: all of them with ``multi_scale_occlusion``, else the coarsest."""
    count = len(generator.down_blocks) + 1
    return tuple(range(count)) if generator.multi_scale_occlusion else (count - 1,)


def export_graphs(kp_detector: KPDetector, generator: OcclusionAwareGenerator, size: int) -> tuple[ExportGraph, ...]:
    """The three graphs of the module docstring, with input makers for frames of ``size`` x ``size``.

    The renderer's example inputs are realistic: the features and keypoints of a random source, driving keypoints
    a small random move away from them (Jacobians well away from singular).
    """
    levels = feature_levels(generator)
    num_channels = generator.num_channels
    jacobians = kp_detector.jacobian is not None
    occlusion = generator.dense_motion_network is not None and generator.estimate_occlusion_map
    feature_names = tuple(f"source_features_{level}" for level in levels)
    motion_names = ("keypoints", "jacobians") if jacobians else ("keypoints",)
    kp_graph = KeypointGraph(kp_detector)
    encoder_graph = SourceEncoderGraph(generator, levels)

    def frames(batch: int, rng: torch.Generator) -> tuple[torch.Tensor, ...]:
        return (torch.rand(batch, num_channels, size, size, generator=rng),)

    def source(batch: int, rng: torch.Generator) -> tuple[torch.Tensor, ...]:
        return (torch.rand(1, num_channels, size, size, generator=rng),)

    def render_inputs(batch: int, rng: torch.Generator) -> tuple[torch.Tensor, ...]:
        image = torch.rand(1, num_channels, size, size, generator=rng)
        with torch.no_grad():
            features = encoder_graph(image)
            source_motion = kp_graph(image)
        moves = [0.05 * torch.randn(batch, *value.shape[1:], generator=rng) for value in source_motion]
        driving_motion = tuple(value + move for value, move in zip(source_motion, moves, strict=True))
        return (image, *features, *source_motion, *driving_motion)

    batch_axis = {0: BATCH}
    return (
        ExportGraph(
            name="kp_detector", module=kp_graph, make_inputs=frames, input_names=("frames",),
            output_names=motion_names, dynamic_axes={name: batch_axis for name in ("frames", *motion_names)},
            description="frames (B, 3, H, W) in [0, 1] -> keypoints (B, K, 2) in [-1, 1], x first"
                        + (" and their Jacobians (B, K, 2, 2)" if jacobians else "")
                        + "; run it on the source too (B = 1)"),
        ExportGraph(
            name="source_encoder", module=encoder_graph, make_inputs=source, input_names=("source",),
            output_names=feature_names, dynamic_axes={},
            description="source (1, 3, H, W) in [0, 1] -> the generator's encoder features the renderer reads, once "
                        "per source image"),
        ExportGraph(
            name="renderer", module=RendererGraph(generator, levels, jacobians, occlusion), make_inputs=render_inputs,
            input_names=("source", *feature_names, *(f"source_{name}" for name in motion_names),
                         *(f"driving_{name}" for name in motion_names)),
            output_names=("prediction", "occlusion_map") if occlusion else ("prediction",),
            dynamic_axes={name: batch_axis for name in (*(f"driving_{name}" for name in motion_names), "prediction",
                                                        *(("occlusion_map",) if occlusion else ()))},
            description="the source, its features and its motion (batch 1) and the target motion (batch B: the "
                        "driving motion, absolute, or made relative to the source) -> prediction (B, 3, H, W) in "
                        "[0, 1]" + (" and the occlusion map (B, 1, h, w)" if occlusion else "")),
    )
