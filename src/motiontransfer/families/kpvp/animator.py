"""KPVP behind the common :class:`~motiontransfer.models.base.AnimationModel` interface.

The keypoint detector Q and the image translator T animate like any family (the driving frames' keypoints instead
of generated ones, Sec. 2 "keypoints-guided image translation"): the motion of a frame is its keypoints, transferred
relatively (k_s + (k_t - k_1), FOMM's rule, optionally scaled by the convex-hull ratio) or absolutely. With a trained
:class:`~motiontransfer.families.kpvp.networks.MotionGenerator` the model also predicts videos from one image and an
action (Fig. 2): :meth:`~motiontransfer.models.base.AnimationModel.predict_video`.
"""

from __future__ import annotations

import torch
from torch import nn

from motiontransfer.errors import ArgumentError, Term
from motiontransfer.families.kpvp.config import KPVPExperiment
from motiontransfer.families.kpvp.networks import (
    ImageTranslator,
    MotionGenerator,
    build_detector,
    build_motion_networks,
)
from motiontransfer.models.base import AnimationModel, SourceState
from motiontransfer.models.motion import GaussianKeypoints
from motiontransfer.ops.keypoints import relative_keypoints


class KPVPAnimator(AnimationModel):
    """KPVP inference model.

    Args:
        experiment: the experiment config.
        motion_generator: the trained stage-3 network, or None (the model then animates but does not predict).

    The motion of a frame is a :class:`~motiontransfer.models.motion.GaussianKeypoints` without covariances (KPVP's
    keypoints have none).
    """

    family = "kpvp"
    experiment_type = KPVPExperiment
    inference_networks = ("kp_detector", "translator")
    reduced_precision_modules = ("translator.residual", "translator.up_blocks", "translator.final")
    optional_networks = ("motion_generator",)

    def __init__(self, experiment: KPVPExperiment, motion_generator: MotionGenerator | None = None) -> None:
        super().__init__()
        self.experiment = experiment
        config = experiment.model_params
        self.kp_detector = build_detector(config)
        self.translator = ImageTranslator(config.num_kp, config.num_channels, config.translator)
        self.motion_generator = motion_generator
        self.size = experiment.frame_size
        self.actions = tuple(config.motion_generator.actions)

    def extract_motion(self, frames: torch.Tensor) -> GaussianKeypoints:
        """frames (B, 3, H, W) in [0, 1] -> keypoints (B, K, 2) (Eq. 1)."""
        return GaussianKeypoints(self.kp_detector(frames)["value"])

    @property
    def default_adapt_scale(self) -> bool:
        """``animate_params.normalization_params.adapt_movement_scale``."""
        return self.experiment.animate_params.normalization_params.adapt_movement_scale

    def relative_motion(self, source_motion: GaussianKeypoints, driving_motion: GaussianKeypoints,
                        driving_initial: GaussianKeypoints, scale: float) -> GaussianKeypoints:
        """k_s + (k_t - k_1) * scale (FOMM's rule on KPVP's keypoints)."""
        return GaussianKeypoints(relative_keypoints(source_motion.mean, driving_motion.mean, driving_initial.mean,
                                                    scale))

    def encode_source(self, source: torch.Tensor) -> SourceState:
        """source (1, 3, H, W) -> its keypoints and the translator's encoder features (1, C', h, w)."""
        return SourceState(image=source, motion=self.extract_motion(source),
                           features=self.translator.encode(source))

    def render(self, source_state: SourceState, target_motion: GaussianKeypoints) -> dict[str, torch.Tensor]:
        """T(v; k; k') for a batch of target keypoints (Eq. 3).

        Returns:
            ``prediction`` (B, 3, H, W), ``generated`` s (B, 3, H, W) and ``background_mask`` m (B, 1, H, W).
        """
        batch = target_motion.batch_size
        out = self.translator.decode(source_state.features.expand(batch, -1, -1, -1),
                                     source_state.image.expand(batch, -1, -1, -1),
                                     source_state.motion.mean.expand(batch, -1, -1), target_motion.mean)
        return {"prediction": out["prediction"], "generated": out["generated"], "background_mask": out["mask"]}

    def motion_keypoints(self, motion: GaussianKeypoints) -> torch.Tensor:
        """(B, K, 2) keypoints in [-1, 1]."""
        return motion.mean

    # ------------------------------------------------------------------------------------------ video prediction

    def action_index(self, action: str | None) -> torch.Tensor | None:
        """The (1,) index of ``action`` for a class-conditional model, None for an unconditional one.

        Raises:
            ArgumentError: a conditional model without an action or with an unknown one.
        """
        if not self.actions:
            return None
        if action is None or action not in self.actions:
            given = "no action" if action is None else f"unknown action {action!r}"
            raise ArgumentError(f"{given}: this KPVP model generates the actions {', '.join(self.actions)}; choose "
                                "one with ", Term("action"))
        return torch.tensor([self.actions.index(action)], device=self.device)

    def predict_motion(self, source_state: SourceState, num_frames: int, action: str | None = None,
                       seed: int = 0) -> GaussianKeypoints:
        """Keypoints of ``num_frames`` frames: the source's, then ``num_frames - 1`` generated from z ~ N(0, I)
        drawn with ``seed`` (Fig. 2).

        Raises:
            CapabilityError: no motion generator. ArgumentError: a bad action (see :meth:`action_index`).
        """
        self.require_prediction()
        assert self.motion_generator is not None
        first = source_state.motion.mean
        actions = self.action_index(action)
        future = self.motion_generator.sample(first, actions, max(num_frames - 1, 1),
                                              generator=torch.Generator().manual_seed(seed))[0]
        return GaussianKeypoints(torch.cat([first, future])[:num_frames])

    def prediction_problem(self) -> tuple[str, ...] | None:
        """None with a motion generator; without one, that it needs one and how it is trained."""
        if self.motion_generator is not None:
            return None
        return ("this KPVP model has no motion generator, so it cannot generate videos from an image; train it in "
                "the run's stages 2 and 3 (", Term("run_stages"), ")")

    def build_optional_network(self, name: str) -> nn.Module:
        """The (untrained) motion generator of the config (``name``: ``motion_generator``)."""
        return build_motion_networks(self.experiment.model_params)[0]
