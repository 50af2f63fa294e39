"""FOMM behind the common :class:`~motiontransfer.models.base.AnimationModel` interface: the keypoint detector and
the occlusion-aware generator, with relative / absolute motion transfer (Sec. 3.4, Eqs. 14-15) and a cached source
encoding.

The motion of a frame is a :class:`KeypointMotion` (keypoints and, when the config estimates them, Jacobians).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from motiontransfer.families.fomm.config import FommExperiment
from motiontransfer.families.fomm.export import export_graphs
from motiontransfer.families.fomm.networks import OcclusionAwareGenerator, build_generator, build_kp_detector
from motiontransfer.models.base import AnimationModel, ExportGraph, SourceState
from motiontransfer.models.keypoint_detector import KPDetector
from motiontransfer.ops.keypoints import relative_jacobians, relative_keypoints

# Generator outputs passed on to callers for visualisation (the K+1 sparsely deformed sources are left out: they
# are large and only the dense motion network needs them).
RENDER_EXTRAS = ("occlusion_map", "mask", "deformed", "deformation")


@dataclass(frozen=True)
class KeypointMotion:
    """FOMM motion of B frames.

    Attributes:
        value: (B, K, 2) keypoints in [-1, 1] (x first).
        jacobian: (B, K, 2, 2) local Jacobians, or None when the model estimates none (identity).
    """

    value: torch.Tensor
    jacobian: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        """Number of frames B."""
        return int(self.value.shape[0])

    def select(self, index: slice) -> KeypointMotion:
        """Frames ``index`` of the batch (batch dimension kept)."""
        return KeypointMotion(self.value[index], None if self.jacobian is None else self.jacobian[index])

    def expand(self, batch: int) -> KeypointMotion:
        """A batch-1 motion repeated (as a view) to ``batch`` frames."""
        jacobian = None if self.jacobian is None else self.jacobian.expand(batch, -1, -1, -1)
        return KeypointMotion(self.value.expand(batch, -1, -1), jacobian)

    def as_dict(self) -> dict[str, torch.Tensor]:
        """The keypoint dict the FOMM networks take: ``{'value': ..., 'jacobian': ...}``."""
        return {"value": self.value} if self.jacobian is None else {"value": self.value, "jacobian": self.jacobian}


class FOMMAnimator(AnimationModel):
    """FOMM inference model.

    Args:
        experiment: the experiment config (model architecture, frame size, animation defaults).
        kp_detector, generator: the networks; built from ``experiment`` (random weights) when None.

    The config's ``animate_params.normalization_params``: ``adapt_movement_scale`` is the default of transfer's
    ``adapt_scale``; ``use_relative_jacobian`` decides whether relative transfer also makes the Jacobians relative
    (Eq. 15) or keeps the driving ones, as the official code does.
    """

    family = "fomm"
    experiment_type = FommExperiment
    # bf16: the decoder stacks, and the dense-motion hourglass's features (its mask and occlusion heads, the
    # keypoints and the Jacobians stay float32): 12-20 ms a vox-256 frame less; bundled trained models 66.5 dB
    # (puppets) and 92.3 dB (faces) from float32 with the hourglass in bf16, 135-136 dB without.
    reduced_precision_modules = ("generator.bottleneck", "generator.up_blocks", "generator.final",
                                 "generator.dense_motion_network.hourglass")

    def __init__(self, experiment: FommExperiment, kp_detector: KPDetector | None = None,
                 generator: OcclusionAwareGenerator | None = None) -> None:
        super().__init__()
        self.experiment = experiment
        self.kp_detector = kp_detector if kp_detector is not None else build_kp_detector(experiment.model_params)
        self.generator = generator if generator is not None else build_generator(experiment.model_params)
        self.size = experiment.frame_size
        self.use_relative_jacobian = experiment.animate_params.normalization_params.use_relative_jacobian

    def extract_motion(self, frames: torch.Tensor) -> KeypointMotion:
        """frames (B, 3, H, W) in [0, 1] -> keypoints (B, K, 2) and Jacobians (B, K, 2, 2)."""
        out = self.kp_detector(frames)
        return KeypointMotion(out["value"], out.get("jacobian"))

    @property
    def default_adapt_scale(self) -> bool:
        """``animate_params.normalization_params.adapt_movement_scale``."""
        return self.experiment.animate_params.normalization_params.adapt_movement_scale

    def relative_motion(self, source_motion: KeypointMotion, driving_motion: KeypointMotion,
                        driving_initial: KeypointMotion, scale: float) -> KeypointMotion:
        """Relative target keypoints (the official ``normalize_kp``): value ``(kp_D - kp_D,1) * scale + kp_S``
        (Eq. 14) and Jacobian ``(J_D J_D,1^-1) J_S`` (Eq. 15) when Jacobians are estimated and
        ``use_relative_jacobian`` is set, else the driving ones.

        Args:
            source_motion: batch 1. driving_motion: batch B. driving_initial: batch 1.

        Returns:
            KeypointMotion of batch B.
        """
        value = relative_keypoints(source_motion.value, driving_motion.value, driving_initial.value, scale)
        jacobian = driving_motion.jacobian
        if self.use_relative_jacobian and jacobian is not None:
            assert source_motion.jacobian is not None and driving_initial.jacobian is not None
            jacobian = relative_jacobians(source_motion.jacobian, jacobian, driving_initial.jacobian)
        return KeypointMotion(value, jacobian)

    def encode_source(self, source: torch.Tensor) -> SourceState:
        """source (1, 3, H, W) -> its keypoints and the generator's encoder features (a list, finest level first)."""
        return SourceState(image=source, motion=self.extract_motion(source),
                           features=self.generator.encode_source(source))

    def render(self, source_state: SourceState, target_motion: KeypointMotion) -> dict[str, torch.Tensor]:
        """Decode the cached source features warped to ``target_motion`` (batch B).

        Returns:
            ``prediction`` (B, 3, H, W), ``deformed`` (B, 3, H, W) the source warped by the dense motion,
            ``deformation`` (B, h, w, 2) that motion, ``mask`` (B, K+1, h, w) and ``occlusion_map``
            (B, 1, h, w) when the config estimates one; (h, w) is the dense motion network's resolution.
        """
        batch = target_motion.batch_size
        image, features = source_state.image, source_state.features
        out = self.generator.decode([level.expand(batch, -1, -1, -1) for level in features],
                                    image.expand(batch, -1, -1, -1),
                                    source_state.motion.expand(batch).as_dict(), target_motion.as_dict())
        return {"prediction": out["prediction"], **{key: out[key] for key in RENDER_EXTRAS if key in out}}

    def motion_keypoints(self, motion: KeypointMotion) -> torch.Tensor:
        """(B, K, 2) keypoints in [-1, 1]."""
        return motion.value

    def export_graphs(self) -> tuple[ExportGraph, ...]:
        """The keypoint detector, the source encoder and the renderer (source side cached) as graphs; see
        :mod:`motiontransfer.families.fomm.export`."""
        return export_graphs(self.kp_detector, self.generator, self.size)
