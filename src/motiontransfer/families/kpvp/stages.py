"""KPVP's stages after the generic training (Kim et al. 2019, Sec. 2):

2. **Pseudo-labels** (:func:`make_pseudo_labels`): the trained Q's keypoints on every frame of the training videos,
   with each video's action when the data has one, saved as ``RUN/pseudo-labels.npz``.
3. **Motion generator** (:func:`train_motion_generator`): the cVAE M on random windows of 1 + T pseudo-labelled
   frames (k_0 and k_{1:T}) with KL + lambda_2 * L1 + lambda_3 * GAN (Eq. 5) against the LSTM sequence discriminator,
   alternating as the paper; the result is the complete model file ``RUN/kpvp.mt``.

Stage 1 (detector + translator) is :class:`~motiontransfer.families.kpvp.task.KPVPTask` under the generic trainer;
:func:`motiontransfer.training.run_stages` runs any of the three in order (``motiontransfer train --config kpvp-...
[--stage N]``), calling :func:`run_later_stages` for 2 and 3.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from motiontransfer.checkpoint import save_model_file
from motiontransfer.data.splits import split_videos
from motiontransfer.engine.optim import decay_schedulers, frozen_parameters, make_optimizers, optimise
from motiontransfer.errors import InputFileError, UserError
from motiontransfer.families.kpvp.animator import KPVPAnimator
from motiontransfer.families.kpvp.config import KPVPExperiment
from motiontransfer.families.kpvp.networks import MotionGenerator, SequenceDiscriminator, build_motion_networks
from motiontransfer.fileio import atomic_write_bytes
from motiontransfer.inference.sequences import detect_sequences
from motiontransfer.losses import kl_divergence_normal, nonsaturating_discriminator_loss, nonsaturating_generator_loss
from motiontransfer.registry import StageOutput

PSEUDO_LABELS_NAME = "pseudo-labels.npz"
MODEL_NAME = "kpvp.mt"
LATER_STAGES = (2, 3)


# ------------------------------------------------------------------------------------------------------- stage 2


@dataclass
class PseudoLabels:
    """Detected keypoint sequences of the training videos (stage 2).

    Attributes:
        sequences: one (T_i, K, 2) float32 array per video, in [-1, 1].
        names: video names.
        actions: each video's action class, or None where the data has none.
    """

    sequences: list[np.ndarray]
    names: list[str]
    actions: list[str | None] = field(default_factory=list)

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (.npz: ``points`` (sum T_i, K, 2), ``lengths``, ``names``, ``actions`` ('' for none))
        atomically; readable without pickle."""
        buffer = io.BytesIO()
        np.savez(buffer, points=np.concatenate(self.sequences).astype(np.float32),
                 lengths=np.array([len(s) for s in self.sequences], dtype=np.int64), names=np.array(self.names),
                 actions=np.array(["" if a is None else a for a in self.actions]))
        return atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> PseudoLabels:
        """Read a file written by :meth:`save`.

        Raises:
            InputFileError: missing or not a pseudo-label file.
        """
        path = Path(path)
        if not path.is_file():
            raise InputFileError(path, "no pseudo-labels (run stage 2 first)")
        try:
            with np.load(path, allow_pickle=False) as data:
                points, lengths = data["points"], data["lengths"]
                names, actions = [str(n) for n in data["names"]], [str(a) or None for a in data["actions"]]
        except (OSError, ValueError, KeyError) as exc:
            raise InputFileError(path, f"not a pseudo-label file ({exc})") from None
        sequences = list(np.split(points, np.cumsum(lengths)[:-1]))
        return cls(sequences, names, actions)


def make_pseudo_labels(model: KPVPAnimator, data: str | Path, *, num_videos: int | None = None,
                       progress: bool = True) -> PseudoLabels:
    """Stage 2: ``model``'s keypoints on every frame of the training videos of ``data`` (a folder or a
    ``procedural:`` spec), with their actions."""
    videos = split_videos(data, model.size, "train", num_videos)
    motions = detect_sequences(model, videos, progress=progress)
    return PseudoLabels([m.mean.numpy().astype(np.float32) for m in motions], [v.name for v in videos],
                        [v.action for v in videos])


# ------------------------------------------------------------------------------------------------------- stage 3


@dataclass
class MotionTraining:
    """The result of :func:`train_motion_generator`: the trained ``generator`` (eval mode), the sequence
    ``discriminator`` and the mean losses per logging interval (``history``: dicts of floats)."""

    generator: MotionGenerator
    discriminator: SequenceDiscriminator
    history: list[dict[str, float]] = field(default_factory=list)


def check_actions(video_actions: Sequence[str | None], actions: Sequence[str]) -> None:
    """Check that a conditional motion generator (``actions`` not empty) knows the action of every training video.

    Raises:
        UserError: videos without an action label (video files carry none), or with actions ``actions`` does not
            list.
    """
    if not actions:
        return
    unlabelled = sum(1 for action in video_actions if action is None)
    if unlabelled:
        raise UserError(f"{unlabelled} of the {len(video_actions)} training videos have no action label (only "
                        "procedural data has them), but model_params.motion_generator.actions makes the motion "
                        "generator action-conditional; set it to [] for an unconditional one")
    missing = sorted({str(a) for a in video_actions if a not in actions})
    if missing:
        raise UserError(f"the training videos have actions the config does not list ({', '.join(missing)}); "
                        "add them to model_params.motion_generator.actions, or set it to [] for an "
                        "unconditional motion generator")


def check_data_actions(experiment: KPVPExperiment, data: str | Path) -> None:
    """:func:`check_actions` on the training videos of ``data`` (a folder or ``procedural:`` spec), read from their
    headers alone: the check of stage 3 made before the expensive stages (1 and 2) instead of after them."""
    actions = experiment.model_params.motion_generator.actions
    if actions:
        check_actions([video.action for video in split_videos(data, experiment.frame_size, "train")], actions)


def _action_indices(labels: PseudoLabels, actions: Sequence[str]) -> np.ndarray | None:
    """Each video's index in ``actions`` (None for an unconditional model).

    Raises:
        UserError: a conditional model and videos without actions or with actions it does not list.
    """
    if not actions:
        return None
    check_actions(labels.actions, actions)
    return np.array([actions.index(a) for a in labels.actions])  # type: ignore[arg-type]


def sample_windows(labels: PseudoLabels, length: int, batch_size: int, rng: np.random.Generator
                   ) -> tuple[torch.Tensor, np.ndarray]:
    """``batch_size`` random windows of ``length`` consecutive frames: (B, length, K, 2) and the videos' indices
    (B,). Videos are drawn uniformly among those at least ``length`` frames long."""
    usable = [i for i, s in enumerate(labels.sequences) if len(s) >= length]
    videos = rng.choice(usable, size=batch_size)
    windows = []
    for video in videos:
        start = int(rng.integers(0, len(labels.sequences[video]) - length + 1))
        windows.append(labels.sequences[video][start:start + length])
    return torch.from_numpy(np.stack(windows)), videos


def motion_losses(generator: nn.Module, discriminator: nn.Module, window: torch.Tensor,
                  actions: torch.Tensor | None, weights: Any, generator_gan: float
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """Eq. 5's L_M on windows (B, 1 + T, K, 2): k_0 = the first frame, k_{1:T} the rest; ``weights`` gives the KL
    and L1 weights, ``generator_gan`` the GAN term's (0 leaves the discriminator out).

    Returns:
        (total, named weighted terms, the reconstruction (B, T, K, 2)).
    """
    kp_initial, future = window[:, 0], window[:, 1:]
    out = generator(future, kp_initial, actions)
    losses = {"kl": weights.kl * kl_divergence_normal(out["mean"], out["logvar"]),
              "l1": weights.l1 * (out["reconstruction"] - future).abs().mean()}
    if generator_gan != 0:
        losses["generator_gan"] = generator_gan * nonsaturating_generator_loss(discriminator(out["reconstruction"]))
    return torch.stack(list(losses.values())).sum(), losses, out["reconstruction"]


def train_motion_generator(experiment: KPVPExperiment, labels: PseudoLabels, *, steps: int | None = None,
                           device: str | torch.device = "cpu", log_every: int | None = None,
                           progress: bool = True
                           ) -> MotionTraining:
    """Stage 3: train M (and D_seq) on the pseudo-labels with ``experiment.motion_params``.

    Args:
        steps: overrides ``motion_params.num_steps``.
        log_every: steps per entry of the returned history [default: a tenth of the steps].

    Raises:
        UserError: no video long enough for a window of 1 + ``num_frames`` frames, or action labels that do not
            match the config (see :func:`_action_indices`).
    """
    params = experiment.motion_params
    steps = params.num_steps if steps is None else steps
    log_every = max(1, steps // 10) if log_every is None else log_every
    length = params.num_frames + 1
    if not any(len(s) >= length for s in labels.sequences):
        longest = max((len(s) for s in labels.sequences), default=0)
        raise UserError(f"stage 3 needs videos of at least motion_params.num_frames + 1 = {length} frames; the "
                        f"longest has {longest}")
    action_of_video = _action_indices(labels, experiment.model_params.motion_generator.actions)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(params.seed)
        generator, discriminator = (net.to(device) for net in build_motion_networks(experiment.model_params))
    weights = params.loss_weights
    use_gan = weights.generator_gan != 0 and weights.discriminator_gan != 0
    networks = {"generator": generator, "discriminator": discriminator}
    optimizers = make_optimizers(networks, {"generator": params.lr, "discriminator": params.lr if use_gan else 0})
    schedulers = decay_schedulers(optimizers, params.lr_decay_every, params.lr_decay)
    rng = np.random.default_rng(params.seed)
    result = MotionTraining(generator, discriminator)
    sums: dict[str, float] = {}
    bar = tqdm(range(steps), desc="motion generator", unit="step", disable=not progress, leave=False)
    generator.train()
    discriminator.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(params.seed + 1)
        for step in bar:
            window, videos = sample_windows(labels, length, params.batch_size, rng)
            window = window.to(device)
            actions = None if action_of_video is None else torch.from_numpy(action_of_video[videos]).to(device)
            with frozen_parameters(discriminator):
                total, losses, reconstruction = motion_losses(generator, discriminator, window, actions, weights,
                                                              weights.generator_gan if use_gan else 0.0)
            optimise(optimizers, ("generator",), total)
            if use_gan:
                losses["discriminator_gan"] = weights.discriminator_gan * nonsaturating_discriminator_loss(
                    discriminator(window[:, 1:]), discriminator(reconstruction.detach()))
                optimise(optimizers, ("discriminator",), losses["discriminator_gan"])
            for scheduler in schedulers.values():
                scheduler.step()
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach())
            if (step + 1) % log_every == 0 or step + 1 == steps:
                count = (step % log_every) + 1
                result.history.append({name: total_value / count for name, total_value in sums.items()})
                bar.set_postfix({name: f"{value:.4g}" for name, value in result.history[-1].items()})
                sums = {}
    generator.eval()
    discriminator.eval()
    return result


# ------------------------------------------------------------------------------------------------------ stages


def run_later_stages(model: KPVPAnimator, run_dir: Path, data: str | None, stages: Sequence[int], *,
                     steps: int | None = None, device: torch.device | str = "cpu",
                     progress: bool = True) -> dict[int, StageOutput]:
    """Stages 2 and 3 (those in ``stages``) in the run folder ``run_dir``, on the model of its latest checkpoint:
    stage 2 writes ``RUN/pseudo-labels.npz`` from ``data`` (the training videos), stage 3 reads it and writes
    ``RUN/kpvp.mt``, the detector and translator with the trained motion generator (``steps`` steps instead of
    ``motion_params.num_steps`` when given).

    Raises:
        UserError: no data for stage 2, action labels the config cannot use, or the errors of each stage.
    """
    outputs: dict[int, StageOutput] = {}
    labels_path = run_dir / PSEUDO_LABELS_NAME
    if 2 in stages:
        if data is None:
            raise UserError("no training data for the pseudo-labels: give the data (a dataset folder or "
                            "procedural:FAMILY)")
        check_data_actions(model.experiment, data)  # stage 3 of this config could not use the labels otherwise
        make_pseudo_labels(model, data, progress=progress).save(labels_path)
        outputs[2] = StageOutput(labels_path)
    if 3 in stages:
        motion = train_motion_generator(model.experiment, PseudoLabels.load(labels_path), steps=steps, device=device,
                                        progress=progress)
        model.motion_generator = motion.generator
        first, last = motion.history[0], motion.history[-1]
        summary = ", ".join(f"{name} {first[name]:.4g} -> {last[name]:.4g}" for name in last)
        outputs[3] = StageOutput(save_model_file(run_dir / MODEL_NAME, model.to_model_file()), summary, motion)
    return outputs
