"""Monkey-Net behind the common :class:`~motiontransfer.models.base.AnimationModel` interface: the keypoint detector
and the motion transfer generator, with relative / absolute keypoint transfer (Sec. 3.4, Eq. 7, plus the official
``normalize_kp`` options) and a cached source encoding.

The motion of a frame is a :class:`GaussianKeypoints` (keypoint means and, unless the variance is fixed, their
covariances). With a trained :class:`~motiontransfer.models.monkeynet.KeypointPredictor` the model also generates
videos from one image (:meth:`MonkeyNetAnimator.predict_video`, Sec. 4.4).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from motiontransfer.checkpoint import ModelFile, state_dicts
from motiontransfer.errors import UserError
from motiontransfer.experiment import MonkeyNetExperiment
from motiontransfer.models.base import (
    AnimationModel,
    SourceState,
    TransferMode,
    check_mode,
    load_state_dicts,
    predict_from_motion,
)
from motiontransfer.models.monkeynet import (
    KeypointPredictor,
    KPDetector,
    MotionTransferGenerator,
    build_generator,
    build_kp_detector,
)
from motiontransfer.ops.heatmaps import clip_covariance
from motiontransfer.ops.keypoints import convex_hull_scale, relative_jacobians, relative_keypoints
from motiontransfer.ops.linalg import nearest_positive_definite

RENDER_EXTRAS = ("mask", "deformed", "deformation")


@dataclass(frozen=True)
class GaussianKeypoints:
    """Monkey-Net motion of B frames.

    Attributes:
        mean: (B, K, 2) keypoints in [-1, 1] (x first).
        var: (B, K, 2, 2) covariances (``kp_variance: matrix``), (B, K, 1, 1) variances (``single``), or None
            (a fixed variance from the config).
    """

    mean: torch.Tensor
    var: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        """Number of frames B."""
        return int(self.mean.shape[0])

    def select(self, index: slice) -> GaussianKeypoints:
        """Frames ``index`` of the batch (batch dimension kept)."""
        return GaussianKeypoints(self.mean[index], None if self.var is None else self.var[index])

    def expand(self, batch: int) -> GaussianKeypoints:
        """A batch-1 motion repeated (as a view) to ``batch`` frames."""
        var = None if self.var is None else self.var.expand(batch, -1, -1, -1)
        return GaussianKeypoints(self.mean.expand(batch, -1, -1), var)

    def as_dict(self) -> dict[str, torch.Tensor]:
        """The keypoint dict the Monkey-Net networks take: ``{'mean': ..., 'var': ...}``."""
        return {"mean": self.mean} if self.var is None else {"mean": self.mean, "var": self.var}


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
    (also switched on by ``adapt_scale``), ``adapt_variance`` and ``clip_mean``. ``move_location`` is what the
    ``relative`` mode means; ``absolute`` passes the driving keypoints through.
    """

    family = "monkeynet"

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

    def transfer(self, source_motion: GaussianKeypoints, driving_motion: GaussianKeypoints,
                 driving_initial: GaussianKeypoints | None, mode: TransferMode = "relative",
                 adapt_scale: bool = False) -> GaussianKeypoints:
        """Target keypoints for the generator (the official ``normalize_kp``).

        ``absolute``: the driving keypoints. ``relative``: means h_s + (h_t - h_1) * s (Eq. 7), s the convex-hull
        scale when ``adapt_scale`` or ``movement_mult``, else 1, clipped to [-1, 1] with ``clip_mean``;
        covariances Sigma_t, or with ``adapt_variance`` Sigma_t Sigma_1^-1 Sigma_s (:func:`adapt_covariance`).

        Args:
            source_motion: batch 1. driving_motion: batch B. driving_initial: batch 1 (required for relative).

        Returns:
            GaussianKeypoints of batch B.
        """
        if check_mode(mode) == "absolute":
            return driving_motion
        if driving_initial is None:
            raise ValueError("relative transfer needs the motion of the initial driving frame")
        options = self.normalization
        scale = 1.0
        if adapt_scale or options.movement_mult:
            scale = convex_hull_scale(source_motion.mean, driving_initial.mean)
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
            UserError: the model has no keypoint predictor.
        """
        if self.predictor is None:
            raise UserError("this Monkey-Net model has no keypoint predictor; train one with "
                            "`motiontransfer train-predictor --checkpoint MODEL --out MODEL-PREDICTOR.mt`")
        first: GaussianKeypoints = source_state.motion
        full_covariance = first.var is not None and first.var.shape[-1] == 2
        out = self.predictor.rollout(first.mean[:, None], first.var[:, None] if full_covariance else None,
                                     num_frames)
        var = None if first.var is None else first.var.expand(num_frames, -1, -1, -1)
        if "var" in out and not self.experiment.prediction_params.predict_variance:
            clip = self.experiment.model_params.kp_detector_params.clip_variance or 1e-3
            var = clip_covariance(out["var"][0], clip)
        return GaussianKeypoints(out["mean"][0], var)

    def predict_video(self, source: torch.Tensor, num_frames: int, action: str | None = None,
                      seed: int = 0, batch_size: int = 8) -> torch.Tensor:
        """Generate a video from one image (the prediction protocol's interface; Monkey-Net's predictor is
        deterministic and unconditional, so ``action`` and ``seed`` are ignored).

        Args:
            source: (3, S, S) frame in [0, 1] at the model's size.
            num_frames: T.

        Returns:
            (T, 3, S, S) frames in [0, 1] on the CPU; the first renders the source's own keypoints.
        """
        return predict_from_motion(self, source, num_frames, action, seed, batch_size)[0]

    @classmethod
    def from_model_file(cls, model_file: ModelFile, device: str | torch.device | None = None
                        ) -> MonkeyNetAnimator:
        """As :meth:`AnimationModel.from_model_file`, plus the keypoint predictor when the file has one."""
        model = super().from_model_file(model_file, device)
        assert isinstance(model, MonkeyNetAnimator)
        if "predictor" in model_file.networks:
            predictor = build_keypoint_predictor(model.experiment)
            load_state_dicts({"predictor": predictor}, model_file.networks,
                             "the keypoint predictor does not match the model file's config")
            model.predictor = predictor.to(model.device).eval()
        return model

    def to_model_file(self) -> ModelFile:
        """The detector and generator (and the predictor when there is one) with the config."""
        model_file = super().to_model_file()
        if self.predictor is not None:
            model_file.networks.update(state_dicts({"predictor": self.predictor}))
        return model_file


def build_keypoint_predictor(experiment: MonkeyNetExperiment) -> KeypointPredictor:
    """The :class:`KeypointPredictor` of ``experiment.prediction_params`` (full covariances in its input and
    output exactly when ``kp_variance`` is ``matrix``, as the official module)."""
    rnn = experiment.prediction_params.rnn_params
    common = experiment.model_params.common_params
    return KeypointPredictor(common.num_kp, common.kp_variance == "matrix", rnn.num_features, rnn.num_layers,
                             rnn.dropout)
