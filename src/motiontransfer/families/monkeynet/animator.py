"""Monkey-Net behind the common :class:`~motiontransfer.models.base.AnimationModel` interface: the keypoint detector
and the motion transfer generator, with relative / absolute keypoint transfer (Sec. 3.4, Eq. 7, plus the official
``normalize_kp`` options) and a cached source encoding.

The motion of a frame is a :class:`~motiontransfer.models.motion.GaussianKeypoints` (keypoint means and, unless the
variance is fixed, their covariances). With a trained
:class:`~motiontransfer.families.monkeynet.networks.KeypointPredictor` the model also generates videos from one image
(:meth:`~motiontransfer.models.base.AnimationModel.predict_video`, Sec. 4.4).
"""

from __future__ import annotations

import torch
from torch import nn

from motiontransfer.errors import Term
from motiontransfer.families.monkeynet.config import MonkeyNetExperiment
from motiontransfer.families.monkeynet.networks import (
    KeypointPredictor,
    KPDetector,
    MotionTransferGenerator,
    build_generator,
    build_kp_detector,
)
from motiontransfer.models.base import AnimationModel, SourceState
from motiontransfer.models.motion import GaussianKeypoints
from motiontransfer.ops.heatmaps import clip_covariance
from motiontransfer.ops.keypoints import relative_jacobians, relative_keypoints
from motiontransfer.ops.linalg import nearest_positive_definite

RENDER_EXTRAS = ("mask", "deformed", "deformation")


def adapt_covariance(var_source: torch.Tensor, var_driving: torch.Tensor,
                     var_driving_initial: torch.Tensor) -> torch.Tensor:
    """The official ``adapt_variance``: Sigma_t Sigma_1^-1 Sigma_s, made symmetric positive definite (symmetrised;
    eigenvalues <= 0 replaced by 1e-6).

    Args:
        var_source: (1, K, 2, 2). var_driving: (B, K, 2, 2). var_driving_initial: (1, K, 2, 2).

    Returns:
        (B, K, 2, 2).
    """
    return nearest_positive_definite(relative_jacobians(var_source, var_driving, var_driving_initial))


class MonkeyNetAnimator(AnimationModel):
    """Monkey-Net inference model.

    Args:
        experiment: the experiment config (model architecture, frame size, transfer defaults).
        kp_detector, generator: the networks; built from ``experiment`` (random weights) when None.

    ``transfer_params.normalization_params`` of the config sets the relative-transfer options: ``movement_mult``
    (the default of transfer's ``adapt_scale``), ``adapt_variance`` and ``clip_mean``. ``move_location`` is what the
    ``relative`` mode means; ``absolute`` passes the driving keypoints through.
    """

    family = "monkeynet"
    experiment_type = MonkeyNetExperiment
    reduced_precision_modules = ("generator.video_decoder", "generator.refinement_module")
    optional_networks = ("predictor",)

    def __init__(self, experiment: MonkeyNetExperiment, kp_detector: KPDetector | None = None,
                 generator: MotionTransferGenerator | None = None, predictor: KeypointPredictor | None = None
                 ) -> None:
        super().__init__()
        self.experiment = experiment
        self.kp_detector = kp_detector if kp_detector is not None else build_kp_detector(experiment.model_params)
        self.generator = generator if generator is not None else build_generator(experiment.model_params)
        self.predictor = predictor
        self.size = experiment.frame_size
        self.normalization = experiment.transfer_params.normalization_params

    def extract_motion(self, frames: torch.Tensor) -> GaussianKeypoints:
        """frames (B, 3, H, W) in [0, 1] -> means (B, K, 2) and covariances (see :class:`GaussianKeypoints`)."""
        out = self.kp_detector(frames)
        return GaussianKeypoints(out["mean"], out.get("var"))

    @property
    def default_adapt_scale(self) -> bool:
        """``transfer_params.normalization_params.movement_mult``."""
        return self.normalization.movement_mult

    def relative_motion(self, source_motion: GaussianKeypoints, driving_motion: GaussianKeypoints,
                        driving_initial: GaussianKeypoints, scale: float) -> GaussianKeypoints:
        """Relative target keypoints (the official ``normalize_kp``): means h_s + (h_t - h_1) * scale (Eq. 7),
        clipped to [-1, 1] with ``clip_mean``; covariances Sigma_t, or with ``adapt_variance``
        Sigma_t Sigma_1^-1 Sigma_s (:func:`adapt_covariance`).

        Args:
            source_motion: batch 1. driving_motion: batch B. driving_initial: batch 1.

        Returns:
            GaussianKeypoints of batch B.
        """
        options = self.normalization
        mean = relative_keypoints(source_motion.mean, driving_motion.mean, driving_initial.mean, scale)
        if options.clip_mean:
            mean = mean.clamp(-1, 1)
        var = driving_motion.var
        if options.adapt_variance and var is not None and var.shape[-1] == 2:
            assert source_motion.var is not None and driving_initial.var is not None
            var = adapt_covariance(source_motion.var, var, driving_initial.var)
        return GaussianKeypoints(mean, var)

    def encode_source(self, source: torch.Tensor) -> SourceState:
        """source (1, 3, H, W) -> its keypoints and the generator's encoder features (a list, one per level)."""
        return SourceState(image=source, motion=self.extract_motion(source),
                           features=self.generator.encode_source(source))

    def render(self, source_state: SourceState, target_motion: GaussianKeypoints) -> dict[str, torch.Tensor]:
        """Decode the cached source features warped to ``target_motion`` (batch B).

        Returns:
            ``prediction`` (B, 3, H, W), ``deformed`` (B, 3, H, W) the source warped by the dense motion,
            ``deformation`` (B, h, w, 2) that motion and, with part masks, ``mask`` (B, K+1, h, w).
        """
        batch = target_motion.batch_size
        skips = [skip.expand(batch, -1, -1, -1) for skip in source_state.features]
        image = source_state.image.expand(batch, -1, -1, -1)
        out = self.generator.decode(skips, image, target_motion.as_dict(),
                                    source_state.motion.expand(batch).as_dict())
        return {"prediction": out["prediction"], **{key: out[key] for key in RENDER_EXTRAS if key in out}}

    def motion_keypoints(self, motion: GaussianKeypoints) -> torch.Tensor:
        """(B, K, 2) keypoint means in [-1, 1]."""
        return motion.mean

    # ------------------------------------------------------------------------------------------ image-to-video

    def predict_motion(self, source_state: SourceState, num_frames: int, action: str | None = None,
                       seed: int = 0) -> GaussianKeypoints:
        """The keypoints of ``num_frames`` frames predicted from the source's (the first frame is the source's).
        The predictor is deterministic and unconditional: ``action`` and ``seed`` are ignored.

        Covariances: with ``prediction_params.predict_variance`` the source's are kept for every frame (what the
        official code does under that key), otherwise the predicted ones, clipped as the detector's.

        Raises:
            CapabilityError: the model has no keypoint predictor.
        """
        self.require_prediction()
        assert self.predictor is not None
        first: GaussianKeypoints = source_state.motion
        full_covariance = first.var is not None and first.var.shape[-1] == 2
        out = self.predictor.rollout(first.mean[:, None], first.var[:, None] if full_covariance else None,
                                     num_frames)
        var = None if first.var is None else first.var.expand(num_frames, -1, -1, -1)
        if "var" in out and not self.experiment.prediction_params.predict_variance:
            clip = self.experiment.model_params.kp_detector_params.clip_variance or 1e-3
            var = clip_covariance(out["var"][0], clip)
        return GaussianKeypoints(out["mean"][0], var)

    def prediction_problem(self) -> tuple[str, ...] | None:
        """None with a keypoint predictor; without one, that it needs one and how it is trained."""
        if self.predictor is not None:
            return None
        return ("this Monkey-Net model has no keypoint predictor, so it cannot generate videos from an image; train "
                "one first with ", Term("fit_keypoint_predictor"))

    def build_optional_network(self, name: str) -> nn.Module:
        """The (untrained) keypoint predictor of the config (``name``: ``predictor``)."""
        return build_keypoint_predictor(self.experiment)


def build_keypoint_predictor(experiment: MonkeyNetExperiment) -> KeypointPredictor:
    """The :class:`KeypointPredictor` of ``experiment.prediction_params`` (full covariances in its input and
    output exactly when ``kp_variance`` is ``matrix``, as the official module)."""
    rnn = experiment.prediction_params.rnn_params
    common = experiment.model_params.common_params
    return KeypointPredictor(common.num_kp, common.kp_variance == "matrix", rnn.num_features, rnn.num_layers,
                             rnn.dropout)
