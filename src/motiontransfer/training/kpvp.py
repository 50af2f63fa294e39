"""KPVP training (Kim et al. 2019, Sec. 2) in three stages.

1. **Detector + translator** (:class:`KPVPTask`, run by the generic trainer): Q finds the keypoints of two frames
   v, v' of one video (one call on both, so BatchNorm sees the 2B frames), T translates v to v' from them (Eq. 3),
   and the loss is the perceptual loss (VGG19, or its pixel fallback offline) + ``generator_gan`` * the logistic GAN
   loss of the image discriminator (Eq. 4); the discriminator then takes its logistic loss on v' and the detached
   translation.
2. **Pseudo-labels** (:func:`make_pseudo_labels`): the trained Q's keypoints on every frame of the training videos,
   with each video's action when the data has one, saved as ``RUN/pseudo-labels.npz``.
3. **Motion generator** (:func:`train_motion_generator`): the cVAE M on random windows of 1 + T pseudo-labelled
   frames (k_0 and k_{1:T}) with KL + lambda_2 * L1 + lambda_3 * GAN (Eq. 5) against the LSTM sequence discriminator,
   alternating as the paper; the result is the complete model file ``RUN/kpvp.mt``.

:func:`run_stages` runs any of them in order (``motiontransfer train --config kpvp-... [--stage N]``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from motiontransfer.checkpoint import load_model_file, save_model_file, unwrap
from motiontransfer.errors import InputFileError, UserError
from motiontransfer.experiment import KPVPExperiment
from motiontransfer.fileio import atomic_write_bytes
from motiontransfer.losses import (
    PerceptualPyramidLoss,
    kl_divergence_normal,
    nonsaturating_discriminator_loss,
    nonsaturating_generator_loss,
)
from motiontransfer.models.kpvp import (
    ImageTranslator,
    MotionGenerator,
    SequenceDiscriminator,
    build_detector,
    build_image_discriminator,
    build_motion_networks,
)
from motiontransfer.models.kpvp_animator import KPVPAnimator
from motiontransfer.training.distributed import DistributedContext, wrap_module
from motiontransfer.training.optim import decay_schedulers, frozen_parameters, make_optimizers, optimise
from motiontransfer.training.trainer import StepResult, pair_for_step
from motiontransfer.visualize import sample_grid

PSEUDO_LABELS_NAME = "pseudo-labels.npz"
MODEL_NAME = "kpvp.mt"
STAGES = (1, 2, 3)


# ------------------------------------------------------------------------------------------------------- stage 1


def translation_losses(kp_detector: nn.Module, translator: nn.Module, discriminator: nn.Module,
                       perceptual: PerceptualPyramidLoss, source: torch.Tensor, driving: torch.Tensor,
                       generator_gan: float) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Eq. 4's L_{Q,T} on a batch.

    Args:
        source, driving: v and v' (B, C, H, W) in [0, 1], frames of the same videos.
        generator_gan: the GAN term's weight (0 leaves the discriminator out).

    Returns:
        (total, named weighted terms, outputs): outputs hold ``prediction``, ``mask``, ``generated`` (B, ...)
        and ``kp_source``, ``kp_driving`` (B, K, 2).
    """
    batch = source.shape[0]
    keypoints = kp_detector(torch.cat([source, driving]))["value"]
    kp_source, kp_driving = keypoints[:batch], keypoints[batch:]
    out = translator(source, kp_source, kp_driving)
    losses = {"perceptual": perceptual(out["prediction"], driving)}
    if generator_gan != 0:
        _, logits = discriminator(out["prediction"])
        losses["generator_gan"] = generator_gan * nonsaturating_generator_loss(logits)
    return torch.stack(list(losses.values())).sum(), losses, {**out, "kp_source": kp_source,
                                                              "kp_driving": kp_driving}


class KPVPTask:
    """Stage 1 for the generic :func:`motiontransfer.training.trainer.train` loop: networks ``kp_detector``,
    ``translator`` and ``image_discriminator``."""

    family = "kpvp"

    def __init__(self, experiment: KPVPExperiment, context: DistributedContext, steps_per_epoch: int) -> None:
        self.experiment = experiment
        self.context = context
        params = experiment.train_params
        config = experiment.model_params
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(params.seed)
            plain: dict[str, nn.Module] = {
                "kp_detector": build_detector(config),
                "translator": ImageTranslator(config.num_kp, config.num_channels, config.translator),
                "image_discriminator": build_image_discriminator(config)}
        weights = params.loss_weights
        self.train_discriminator = weights.generator_gan != 0 and weights.discriminator_gan != 0
        plain["image_discriminator"].requires_grad_(self.train_discriminator)
        self.wrapped = {name: wrap_module(module, context) for name, module in plain.items()}
        self.plain = {name: unwrap(module) for name, module in self.wrapped.items()}
        rates = {"kp_detector": params.lr, "translator": params.lr,
                 "image_discriminator": params.lr if self.train_discriminator else 0.0}
        self.optimizers = make_optimizers(self.plain, rates)
        self.schedulers = decay_schedulers(self.optimizers, params.lr_decay_every, params.lr_decay)
        self.perceptual = PerceptualPyramidLoss(params.scales, weights.perceptual, vgg_weights=params.vgg_weights,
                                                fallback=params.perceptual_fallback).to(context.device)

    def networks(self) -> dict[str, nn.Module]:
        """The plain networks by model-file name."""
        return dict(self.plain)

    def train_step(self, batch: Mapping[str, Any], step: int) -> StepResult:
        """One step on ``{'source': (B, C, H, W), 'driving': (B, C, H, W), ...}`` in [0, 1]; the values include
        ``l1``, the unweighted mean absolute translation error (monitoring only)."""
        source, driving = pair_for_step(batch, self.wrapped.values(), self.context.device)
        weights = self.experiment.train_params.loss_weights
        with frozen_parameters(self.plain["image_discriminator"]):
            total, losses, out = translation_losses(
                self.wrapped["kp_detector"], self.wrapped["translator"], self.plain["image_discriminator"],
                self.perceptual, source, driving, weights.generator_gan if self.train_discriminator else 0.0)
        optimise(self.optimizers, ("kp_detector", "translator"), total)
        prediction = out["prediction"].detach()
        if self.train_discriminator:
            discriminator = self.wrapped["image_discriminator"]
            _, real = discriminator(driving)
            _, fake = discriminator(prediction)
            losses["discriminator_gan"] = weights.discriminator_gan * nonsaturating_discriminator_loss(real, fake)
            optimise(self.optimizers, ("image_discriminator",), losses["discriminator_gan"])
        for scheduler in self.schedulers.values():
            scheduler.step()
        values = {name: float(value.detach()) for name, value in losses.items()}
        values["l1"] = float((prediction - driving).abs().mean())
        outputs = {"source": source, "driving": driving, "prediction": prediction, "mask": out["mask"].detach(),
                   "kp_source": out["kp_source"].detach(), "kp_driving": out["kp_driving"].detach()}
        return StepResult(values, outputs)

    def sample_image(self, result: StepResult) -> np.ndarray:
        """The sample sheet of a step; the fourth column is the background mask m (white: source kept)."""
        out = result.outputs
        return sample_grid(out["source"], out["driving"], out["kp_source"], out["kp_driving"], out["prediction"],
                           out["mask"])


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
            raise InputFileError(path, "no pseudo-labels (run stage 2 first: --stage 2)")
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
    from motiontransfer.inference.video import split_videos
    from motiontransfer.training.keypoint_predictor import detect_sequences

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
    from motiontransfer.inference.video import split_videos

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


def _check_new_run_actions(config: Any, data: str | Path | None) -> None:
    """:func:`check_data_actions` for a new run of ``config`` (an experiment, bundled name or YAML path) on ``data``
    (default: its ``dataset_params.root_dir``); nothing to check without data (stage 1 reports that)."""
    from motiontransfer.experiment import load_experiment

    experiment = load_experiment(config) if isinstance(config, str | Path) else config
    source = data if data is not None else experiment.dataset_params.root_dir
    if isinstance(experiment, KPVPExperiment) and source:
        check_data_actions(experiment, source)


@dataclass
class StagesResult:
    """What :func:`run_stages` did: the run folder and, per stage run, its output file."""

    run_dir: Path
    outputs: dict[int, Path] = field(default_factory=dict)
    stage1: Any = None
    motion: MotionTraining | None = None


def check_stages(stages: Sequence[int]) -> list[int]:
    """Sorted distinct stage numbers; UserError for anything but 1, 2, 3."""
    bad = [s for s in stages if s not in STAGES]
    if bad or not stages:
        raise UserError(f"--stage must be 1, 2 or 3 (KPVP's detector + translator, pseudo-labels, motion "
                        f"generator), got {list(stages)}")
    return sorted(set(stages))


def run_stages(config: Any = None, *, data: str | Path | None = None, out_dir: str | Path | None = None,
               steps: int | None = None, resume: str | Path | None = None, stages: Sequence[int] = STAGES,
               device: str | None = None, progress: bool = True) -> StagesResult:
    """Run KPVP's stages in order in one run folder.

    Stage 1 is :func:`motiontransfer.training.trainer.train` (``steps``, ``resume`` and ``out_dir`` as there);
    stage 2 reads the run's latest checkpoint and writes ``RUN/pseudo-labels.npz``; stage 3 reads both and writes
    ``RUN/kpvp.mt``, the detector and translator of that checkpoint with the trained motion generator. Stages 2
    and 3 without stage 1 need ``resume`` (the run folder); their data is ``data``, else the run's. Under
    ``torchrun`` stage 1 runs on every process and stages 2 and 3 on rank 0 alone.

    ``steps`` bounds every stage that optimises: stage 1 trains to ``steps`` steps and stage 3 takes ``steps``
    steps (instead of ``motion_params.num_steps``). The data's action labels are checked against the config before
    stage 1 of a new run and before stage 2, so a run that stage 3 would refuse fails before the expensive work.

    Raises:
        UserError: bad stages, a missing run or checkpoint, action labels the config cannot use, or the errors of
            each stage.
    """
    from motiontransfer.training.checkpoints import read_latest
    from motiontransfer.training.distributed import resolve_device
    from motiontransfer.training.trainer import train

    stages = check_stages(stages)
    result = StagesResult(Path(out_dir if out_dir is not None else resume or "."))
    if 1 in stages and resume is None and config is not None and len(stages) > 1:
        _check_new_run_actions(config, data)
    if 1 in stages:
        result.stage1 = train(config, data=data, out_dir=out_dir, steps=steps, resume=resume, device=device,
                              progress=progress)
        result.run_dir = result.stage1.run_dir
        if int(os.environ.get("RANK", "0")) != 0:
            return result  # under torchrun, stages 2 and 3 (single-process work) run on rank 0 only
    elif resume is None:
        raise UserError("stages 2 and 3 continue a KPVP run: give --resume RUN")
    elif config is not None:
        raise UserError("stages 2 and 3 use the config saved in the run; drop --config")
    run_dir = result.run_dir
    record = read_latest(run_dir)
    if record is None:
        raise UserError(f"{run_dir} has no checkpoint; run stage 1 first")
    if record.family != "kpvp":
        raise UserError(f"{run_dir} is a {record.family} run; stages 2 and 3 belong to KPVP")
    torch_device = resolve_device(device)
    model = KPVPAnimator.from_model_file(load_model_file(record.model), device=torch_device)
    labels_path = run_dir / PSEUDO_LABELS_NAME
    if 2 in stages:
        source = data if data is not None else record.data
        if source is None:
            raise UserError("no training data: give --data DIR|procedural:FAMILY")
        assert isinstance(model.experiment, KPVPExperiment)
        check_data_actions(model.experiment, source)  # stage 3 of this config could not use the labels otherwise
        make_pseudo_labels(model, source, progress=progress).save(labels_path)
        result.outputs[2] = labels_path
    if 3 in stages:
        assert isinstance(model.experiment, KPVPExperiment)
        result.motion = train_motion_generator(model.experiment, PseudoLabels.load(labels_path), steps=steps,
                                               device=torch_device, progress=progress)
        model.motion_generator = result.motion.generator
        result.outputs[3] = save_model_file(run_dir / MODEL_NAME, model.to_model_file())
    return result
