"""KPVP behind the common :class:`~motiontransfer.models.base.AnimationModel` interface.

The keypoint detector Q and the image translator T animate like any family (the driving frames' keypoints instead
of generated ones, Sec. 2 "keypoints-guided image translation"): the motion of a frame is its keypoints, transferred
relatively (k_s + (k_t - k_1), FOMM's rule, optionally scaled by the convex-hull ratio) or absolutely. With a trained
:class:`~motiontransfer.models.kpvp.MotionGenerator` the model also predicts videos from one image and an action
(Fig. 2): :meth:`KPVPAnimator.predict_video`.
"""

from __future__ import annotations

import torch

from motiontransfer.checkpoint import ModelFile, state_dicts
from motiontransfer.errors import UserError
from motiontransfer.experiment import KPVPExperiment
from motiontransfer.models.base import (
    AnimationModel,
    SourceState,
    TransferMode,
    check_mode,
    load_state_dicts,
    predict_from_motion,
)
from motiontransfer.models.kpvp import ImageTranslator, MotionGenerator, build_detector, build_motion_networks
from motiontransfer.models.monkeynet_animator import GaussianKeypoints
from motiontransfer.ops.keypoints import convex_hull_scale, relative_keypoints


class KPVPAnimator(AnimationModel):
    """KPVP inference model.

    Args:
        experiment: the experiment config.
        motion_generator: the trained stage-3 network, or None (the model then animates but does not predict).

    The motion of a frame is a :class:`~motiontransfer.models.monkeynet_animator.GaussianKeypoints` without
    covariances (KPVP's keypoints have none).
    """

    family = "kpvp"
    inference_networks = ("kp_detector", "translator")

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

    def transfer(self, source_motion: GaussianKeypoints, driving_motion: GaussianKeypoints,
                 driving_initial: GaussianKeypoints | None, mode: TransferMode = "relative",
                 adapt_scale: bool = False) -> GaussianKeypoints:
        """``absolute``: the driving keypoints; ``relative``: k_s + (k_t - k_1) * s, s the convex-hull scale with
        ``adapt_scale`` (or ``animate_params.normalization_params.adapt_movement_scale``), else 1."""
        if check_mode(mode) == "absolute":
            return driving_motion
        if driving_initial is None:
            raise ValueError("relative transfer needs the motion of the initial driving frame")
        scale = 1.0
        if adapt_scale or self.experiment.animate_params.normalization_params.adapt_movement_scale:
            scale = convex_hull_scale(source_motion.mean, driving_initial.mean)
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
            UserError: a conditional model without an action or with an unknown one.
        """
        if not self.actions:
            return None
        if action is None or action not in self.actions:
            given = "no action" if action is None else f"unknown action {action!r}"
            raise UserError(f"{given}: this KPVP model generates the actions {', '.join(self.actions)} (--action)")
        return torch.tensor([self.actions.index(action)], device=self.device)

    def predict_motion(self, source_state: SourceState, num_frames: int, action: str | None = None,
                       seed: int = 0) -> GaussianKeypoints:
        """Keypoints of ``num_frames`` frames: the source's, then ``num_frames - 1`` generated from z ~ N(0, I)
        drawn with ``seed`` (Fig. 2).

        Raises:
            UserError: no motion generator, or a bad action (see :meth:`action_index`).
        """
        if self.motion_generator is None:
            raise UserError("this KPVP model has no motion generator; train it with "
                            "`motiontransfer train --resume RUN --stage 3` (stages 2 and 3)")
        first = source_state.motion.mean
        actions = self.action_index(action)
        future = self.motion_generator.sample(first, actions, max(num_frames - 1, 1),
                                              generator=torch.Generator().manual_seed(seed))[0]
        return GaussianKeypoints(torch.cat([first, future])[:num_frames])

    def predict_video(self, source: torch.Tensor, num_frames: int, action: str | None = None, seed: int = 0,
                      batch_size: int = 8) -> torch.Tensor:
        """Generate a video from one image (and an action, for class-conditional models).

        Args:
            source: (3, S, S) frame in [0, 1] at the model's size.
            num_frames: T.
            action: one of ``model_params.motion_generator.actions`` (ignored when that list is empty).
            seed: picks the future (z).

        Returns:
            (T, 3, S, S) frames in [0, 1] on the CPU; the first renders the source's own keypoints.
        """
        return predict_from_motion(self, source, num_frames, action, seed, batch_size)[0]

    @classmethod
    def from_model_file(cls, model_file: ModelFile, device: str | torch.device | None = None) -> KPVPAnimator:
        """As :meth:`AnimationModel.from_model_file`, plus the motion generator when the file has one."""
        model = super().from_model_file(model_file, device)
        assert isinstance(model, KPVPAnimator)
        if "motion_generator" in model_file.networks:
            generator, _ = build_motion_networks(model.experiment.model_params)
            load_state_dicts({"motion_generator": generator}, model_file.networks,
                             "the motion generator does not match the model file's config")
            model.motion_generator = generator.to(model.device).eval()
        return model

    def to_model_file(self) -> ModelFile:
        """The detector and translator (and the motion generator when there is one) with the config."""
        model_file = super().to_model_file()
        if self.motion_generator is not None:
            model_file.networks.update(state_dicts({"motion_generator": self.motion_generator}))
        return model_file
