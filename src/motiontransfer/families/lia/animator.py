"""LIA behind the common :class:`~motiontransfer.models.base.AnimationModel` interface.

The motion of a frame is a :class:`LatentMotion`: its motion magnitudes A (Sec. 3.2; or, for the "w/o
dictionary" ablation, the latent shift itself). The dictionary is linear, so the relative transfer of Eq. 12,
z = z_s + D(A_d) - D(A_1) + D(A_s), is done on the magnitudes: A = A_d - A_1 + A_s. LIA has no keypoints:
:meth:`LIAAnimator.motion_keypoints` returns none (nothing is drawn; the best-frame search needs a landmark detector,
and the movement scale cannot be adapted).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from motiontransfer.errors import ArgumentError, CapabilityError, Term
from motiontransfer.families.lia.config import LIAExperiment
from motiontransfer.families.lia.networks import Generator, to_signed, to_unit
from motiontransfer.models.base import AnimationModel, SourceState


@dataclass(frozen=True)
class LatentMotion:
    """LIA motion of B frames: ``magnitudes`` (B, M) (or (B, style_dim) shifts without the dictionary)."""

    magnitudes: torch.Tensor

    @property
    def batch_size(self) -> int:
        """Number of frames B."""
        return int(self.magnitudes.shape[0])

    def select(self, index: slice) -> LatentMotion:
        """Frames ``index`` of the batch (batch dimension kept)."""
        return LatentMotion(self.magnitudes[index])


@dataclass(frozen=True)
class LIASource:
    """The cached source-side work: latent z (1, style_dim) and the encoder's feature maps."""

    latent: torch.Tensor
    features: list[torch.Tensor]


class LIAAnimator(AnimationModel):
    """LIA inference model: the official ``gen`` network as ``generator`` (``enc`` + ``dec``).

    Args:
        experiment: the LIA experiment (architecture, frame size).
        generator: the network; built from ``experiment`` (random weights) when None.
    """

    family = "lia"
    experiment_type = LIAExperiment
    inference_networks = ("generator",)
    # No bfloat16 path: with its modulated convolutions in bf16, LIA-256 frames were only 23.5 dB from float32.
    reduced_precision_modules = ()
    # Channels-last moved LIA-256's frames by up to 5e-3 (its grouped and transposed convolutions) for no speed.
    channels_last_inference = False
    has_keypoints = False

    def __init__(self, experiment: LIAExperiment, generator: Generator | None = None) -> None:
        super().__init__()
        self.experiment = experiment
        self.generator = generator if generator is not None else Generator(experiment.model_params)
        self.size = experiment.model_params.size

    def extract_motion(self, frames: torch.Tensor) -> LatentMotion:
        """frames (B, 3, S, S) in [0, 1] -> motion magnitudes (B, M)."""
        return LatentMotion(self.generator.enc.motion(to_signed(frames)))

    def relative_motion(self, source_motion: LatentMotion, driving_motion: LatentMotion,
                        driving_initial: LatentMotion, scale: float) -> LatentMotion:
        """Eq. 12: A_d - A_1 + A_s (``scale`` is always 1: LIA has no keypoints to measure a movement scale with;
        ``absolute``, Eq. 11, is the driving magnitudes themselves)."""
        return LatentMotion(driving_motion.magnitudes - driving_initial.magnitudes + source_motion.magnitudes)

    def encode_source(self, source: torch.Tensor) -> SourceState:
        """source (1, 3, S, S) in [0, 1] -> its motion magnitudes, latent and encoder features."""
        latent, features = self.generator.enc.appearance(to_signed(source))
        motion = LatentMotion(self.generator.enc.fc(latent))
        return SourceState(image=source, motion=motion, features=LIASource(latent, features))

    def render(self, source_state: SourceState, target_motion: LatentMotion) -> dict[str, torch.Tensor]:
        """Decode the source latent shifted by the target motion (batch B): ``prediction`` (B, 3, S, S) in
        [0, 1]."""
        batch = target_motion.batch_size
        cached: LIASource = source_state.features
        latent = cached.latent.expand(batch, -1)
        features = [feature.expand(batch, -1, -1, -1) for feature in cached.features]
        shift = self.generator.latent_shift(target_motion.magnitudes)
        return {"prediction": to_unit(self.generator.dec(latent, shift, features))}

    def motion_keypoints(self, motion: LatentMotion) -> torch.Tensor:
        """LIA has no keypoints: (B, 0, 2)."""
        return motion.magnitudes.new_zeros(motion.batch_size, 0, 2)

    def walk_directions(self, source: torch.Tensor, offsets: torch.Tensor,
                        directions: list[int] | None = None) -> torch.Tensor:
        """The paper's Sec. 4 analysis: the source animated with one motion magnitude changed at a time.

        Args:
            source: (1, 3, S, S) in [0, 1].
            offsets: (V,) values added to the source's own magnitude a_i.
            directions: which i (default: all M).

        Returns:
            (len(directions), V, 3, S, S) frames in [0, 1].

        Raises:
            CapabilityError: a model without the dictionary. ArgumentError: a direction index out of range.
        """
        if not self.experiment.model_params.use_dictionary:
            raise CapabilityError("this LIA model has no motion dictionary (use_dictionary: false): no directions to "
                                  "walk")
        count = self.experiment.model_params.motion_dim
        indices = list(range(count)) if directions is None else directions
        if any(not 0 <= i < count for i in indices):
            raise ArgumentError(Term("directions"), f" must be indices in 0..{count - 1}, got {indices}")
        state = self.encode_source(source)
        rows = []
        for index in indices:
            magnitudes = state.motion.magnitudes.repeat(len(offsets), 1)
            magnitudes[:, index] += offsets.to(magnitudes)
            rows.append(self.render(state, LatentMotion(magnitudes))["prediction"])
        return torch.stack(rows)
