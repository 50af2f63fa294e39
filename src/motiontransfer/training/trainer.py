"""The training loop shared by the model families.

:func:`train` owns everything that is not specific to a model: the data loader (a shuffled, seeded
:class:`~motiontransfer.engine.distributed.ResumableDistributedSampler` share per process), the step loop over
epochs, the progress bar, TensorBoard scalars, sample sheets, checkpoints and resuming, and the distributed set-up.
A family contributes a *task* (:class:`~motiontransfer.engine.task.TrainingTask`): its networks, optimisers,
schedulers, one optimisation step and a sample picture, found through the family registry (the ``task`` of the
experiment's family, e.g. :class:`motiontransfer.families.fomm.task.FommTask`).

Run folder layout::

    RUN/config.yaml                 the experiment, as trained
    RUN/checkpoints/                see motiontransfer.training.checkpoints
    RUN/samples/step-XXXXXXXX.png   sample sheets every ``sample_every`` steps
    RUN/tensorboard/                TensorBoard event files (loss/*, lr/*, time/seconds_per_step)

Only rank 0 writes files and logs. Everything random is a function of ``train_params.seed`` (network
initialisation, data order, augmentation, per-step draws), so a resumed run continues as the uninterrupted run
would have, up to floating-point non-determinism.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from motiontransfer.checkpoint import state_dicts
from motiontransfer.config import to_dict
from motiontransfer.data.datasets import open_training_data
from motiontransfer.engine.distributed import (
    barrier,
    init_distributed,
    make_sampler,
    shutdown_distributed,
    sync_buffers,
)
from motiontransfer.engine.task import StepResult, TrainingTask
from motiontransfer.errors import ArgumentError, InputFileError, Term, UserError
from motiontransfer.experiment import experiment_from_dict, load_experiment
from motiontransfer.fileio import atomic_write_text
from motiontransfer.params import augmentation_config
from motiontransfer.registry import family
from motiontransfer.training.checkpoints import (
    clean_checkpoint_dir,
    load_checkpoint,
    read_latest,
    save_checkpoint,
)
from motiontransfer.video.io import write_image

__all__ = ["TrainResult", "build_task", "train", "train_to_steps"]


@dataclass
class TrainResult:
    """Summary of a :func:`train` call.

    Attributes:
        run_dir: the run folder.
        start_step: steps already done when this call started (0, or the resumed checkpoint's step).
        step: steps done at the end.
        steps_per_epoch: optimisation steps per epoch (per process).
        checkpoint: the last checkpoint written (rank 0; None elsewhere or if nothing was trained).
        losses: mean loss values over the last logging interval.
        seconds_per_step: mean wall time of this call's steps (including data loading and logging).
        networks: the trained (plain) networks by name, on the training device, identical on every process.
    """

    run_dir: Path
    start_step: int
    step: int
    steps_per_epoch: int
    checkpoint: Any = None
    losses: dict[str, float] = field(default_factory=dict)
    seconds_per_step: float = float("nan")
    networks: dict[str, nn.Module] = field(default_factory=dict)


def build_task(experiment: Any, context: Any, steps_per_epoch: int) -> TrainingTask:
    """The training task of ``experiment.family`` (its registered ``task``).

    Raises:
        UserError: an unknown family, or one that cannot be trained here.
    """
    spec = family(experiment.family)
    if spec.task is None:
        raise UserError(f"the {spec.name} family cannot be trained here (it has no training task)")
    return spec.task(experiment, context, steps_per_epoch)


class _Meter:
    """Running sums of loss values between two logging points."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.count += 1

    def means(self) -> dict[str, float]:
        return {name: total / max(self.count, 1) for name, total in self.sums.items()}

    def reset(self) -> None:
        self.sums, self.count = {}, 0


@dataclass
class _Run:
    """A training session's resolved inputs.

    Attributes:
        experiment: the experiment to train (``max_steps`` set to ``--steps`` when given).
        run_dir: the run folder written to.
        data: the training data string.
        resumed: ``(record, model file, training state)`` of the checkpoint resumed from, or None.
    """

    experiment: Any
    run_dir: Path
    data: str | None
    resumed: tuple[Any, Any, dict[str, Any]] | None


def _resolve_experiment(experiment: Any, resume_config: dict[str, Any] | None) -> Any:
    """The experiment to train: from the resumed checkpoint, or a config object / bundled name / YAML path."""
    if resume_config is not None:
        if experiment is not None:
            raise ArgumentError("give either a config or ", Term("resume"), ", not both: a resumed run uses the config "
                                "saved in its checkpoint")
        return experiment_from_dict(resume_config)
    if experiment is None:
        raise ArgumentError("a config is needed to start a run (or ", Term("resume"), " RUN to continue one)")
    if isinstance(experiment, str | Path):
        return load_experiment(experiment)
    return copy.deepcopy(experiment)


def _prepare_run(context: Any, experiment: Any, data: str | Path | None, out_dir: str | Path | None,
                 steps: int | None, resume: str | Path | None) -> _Run:
    """Resolve the experiment, run folder, data and resumed checkpoint; clean crash leftovers (rank 0)."""
    resumed = None
    if resume is not None:
        resume = Path(resume)
        if context.is_main and (out_dir is None or Path(out_dir) == resume) and resume.is_dir():
            clean_checkpoint_dir(resume)
        barrier(context)
        resumed = load_checkpoint(resume, device=context.device)
    experiment = _resolve_experiment(experiment, None if resumed is None else resumed[1].metadata.get("config"))
    if steps is not None:
        experiment.train_params.max_steps = steps
    run_dir = Path(out_dir) if out_dir is not None else resume
    if run_dir is None:
        raise ArgumentError("an output folder is needed (", Term("out_dir"), " RUN)")
    if resume is None or run_dir != resume:
        if read_latest(run_dir) is not None:
            raise ArgumentError(f"{run_dir} already holds a training run; continue it with ", Term("resume"),
                                f" {run_dir} or choose another ", Term("out_dir"), " folder")
        if context.is_main:
            clean_checkpoint_dir(run_dir)
    if data is None:
        data = resumed[0].data if resumed is not None and resumed[0].data else experiment.dataset_params.root_dir
    return _Run(experiment, run_dir, None if data is None else str(data), resumed)


def _open_data(experiment: Any, data: str | None) -> Dataset:
    """The training dataset named by ``data`` (a folder or ``procedural:`` spec)."""
    if not data:
        raise ArgumentError("no training data: give ", Term("data"), " (a dataset folder or procedural:FAMILY) or set "
                            "dataset_params.root_dir")
    dataset_params, params = experiment.dataset_params, experiment.train_params
    return open_training_data(data, experiment.frame_size, id_sampling=dataset_params.id_sampling,
                              num_repeats=params.num_repeats, augmentation=augmentation_config(dataset_params),
                              seed=params.seed)


class _Reporter:
    """Progress bar, TensorBoard scalars and sample sheets; silent except on rank 0."""

    def __init__(self, run_dir: Path, config: dict[str, Any], start: int, total: int, context: Any,
                 progress: bool) -> None:
        self.run_dir, self.main = run_dir, context.is_main
        self.writer = None
        if self.main:
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
            if start < total:
                from torch.utils.tensorboard import SummaryWriter  # tensorboard is slow to import: only when used

                self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=start or None)
        self.bar = tqdm(total=total, initial=start, desc="train", dynamic_ncols=True,
                        disable=not (progress and self.main))
        self.meter, self.means = _Meter(), {}
        self.interval_start = time.perf_counter()

    def step_done(self, step: int, result: StepResult, task: TrainingTask, params: Any, last: bool) -> None:
        """Account for one finished step: progress, logging every ``log_every``, a sample every ``sample_every``."""
        self.meter.add(result.losses)
        self.bar.update(1)
        if step % params.log_every == 0 or last:
            self.means = self.meter.means()
            seconds = (time.perf_counter() - self.interval_start) / max(self.meter.count, 1)
            self.meter.reset()
            self.interval_start = time.perf_counter()
            self.bar.set_postfix({name: f"{value:.4g}" for name, value in self.means.items()}, refresh=False)
            if self.writer is not None:
                for name, value in self.means.items():
                    self.writer.add_scalar(f"loss/{name}", value, step)
                for name, optimizer in task.optimizers.items():
                    self.writer.add_scalar(f"lr/{name}", optimizer.param_groups[0]["lr"], step)
                self.writer.add_scalar("time/seconds_per_step", seconds, step)
        if self.main and step % params.sample_every == 0:
            image = task.sample_image(result)
            write_image(self.run_dir / "samples" / f"step-{step:08d}.png", image)
            if self.writer is not None:
                self.writer.add_image("samples", image, step, dataformats="HWC")

    def close(self) -> None:
        self.bar.close()
        if self.writer is not None:
            self.writer.close()


def train(experiment: Any = None, data: str | Path | None = None, out_dir: str | Path | None = None,
          steps: int | None = None, resume: str | Path | None = None, device: str | None = None, *,
          progress: bool = True) -> TrainResult:
    """Train a model; runs unchanged in one process or under ``torchrun --nproc-per-node N``.

    Args:
        experiment: an experiment object (not modified), a bundled config name or a YAML path; None when resuming.
        data: training data (a FOMM-layout folder or ``procedural:...`` spec); default: the data recorded in the
            resumed checkpoint, else the config's ``dataset_params.root_dir``.
        out_dir: the run folder (default when resuming: the resumed run's folder). A new run refuses a folder that
            already holds a checkpoint.
        steps: total optimisation steps of the run; stored as ``train_params.max_steps`` of the run's config (so a
            resumed run keeps it). Without it: ``max_steps``, else ``num_epochs * steps_per_epoch``.
        resume: a run folder to continue from its ``checkpoints/latest.json`` (networks, optimisers, schedulers,
            step; the config comes from the checkpoint).
        device: ``cpu``, ``cuda`` or None (CUDA when available).
        progress: show the progress bar (rank 0).

    Returns:
        A :class:`TrainResult` (logged losses are rank 0's).

    Raises:
        UserError: bad arguments, missing data, a run folder without checkpoint to resume, too little data for
            one batch, a config the family cannot train.
    """
    if steps is not None and steps < 1:
        raise ArgumentError(Term("steps"), f" must be at least 1, got {steps}")
    context = init_distributed(device)
    try:
        result = _train(context, _prepare_run(context, experiment, data, out_dir, steps, resume), progress)
        barrier(context)
        return result
    finally:
        shutdown_distributed(context)


def train_to_steps(experiment: Any, run_dir: str | Path, steps: int, *, progress: bool = True) -> Path:
    """Bring the run folder ``run_dir`` to ``steps`` optimisation steps: start it from ``experiment`` (an object, a
    bundled config name or a YAML path) when it has no checkpoint, resume it when it has fewer steps, reuse it
    otherwise.

    Returns:
        The model file of its latest checkpoint.
    """
    record = read_latest(run_dir) if Path(run_dir).exists() else None
    if record is None:
        train(experiment, out_dir=run_dir, steps=steps, progress=progress)
    elif record.step < steps:
        train(resume=run_dir, steps=steps, progress=progress)
    record = read_latest(run_dir)
    assert record is not None
    return record.model


def _train(context: Any, run: _Run, progress: bool) -> TrainResult:
    """Build the data loader and task, restore a resumed checkpoint, run the step loop, write the last checkpoint."""
    experiment, params = run.experiment, run.experiment.train_params
    context = dataclasses.replace(context, channels_last=params.channels_last)
    dataset = _open_data(experiment, run.data)
    sampler = make_sampler(dataset, context, params.seed)
    steps_per_epoch = len(sampler) // params.batch_size
    if steps_per_epoch == 0:
        raise UserError(f"the training data has {len(sampler)} items per process, fewer than batch_size "
                        f"{params.batch_size}; lower train_params.batch_size or raise num_repeats")
    loader = DataLoader(dataset, batch_size=params.batch_size, sampler=sampler, num_workers=params.num_workers,
                        drop_last=True, pin_memory=context.device.type == "cuda")
    total = params.max_steps or params.num_epochs * steps_per_epoch
    task = build_task(experiment, context, steps_per_epoch)
    start = 0 if run.resumed is None else _restore(task, *run.resumed)
    config = to_dict(experiment)
    reporter = _Reporter(run.run_dir, config, start, total, context, progress)

    def checkpoint(step: int) -> Any:
        return save_checkpoint(run.run_dir, step=step, epoch=step // steps_per_epoch, family=task.family,
                               config=config, networks=state_dicts(task.networks()),
                               training_state=_training_state(task), keep=params.keep_checkpoints, data=run.data)

    step, record, began = start, None, time.perf_counter()
    try:
        while step < total:
            epoch = step // steps_per_epoch
            sampler.set_epoch(epoch)
            sampler.set_skip((step % steps_per_epoch) * params.batch_size)
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
            for batch in loader:
                result = task.train_step(_memory_format(batch, context.channels_last), step)
                step += 1
                reporter.step_done(step, result, task, params, last=step == total)
                if step == total:
                    break
                if context.is_main and step % params.checkpoint_every == 0:
                    record = checkpoint(step)
        elapsed = time.perf_counter() - began
        sync_buffers(task.networks(), context)
        if context.is_main and step > start and (record is None or record.step < step):
            record = checkpoint(step)
    finally:
        reporter.close()
    done = step - start
    return TrainResult(run.run_dir, start, step, steps_per_epoch, record, reporter.means,
                       elapsed / done if done else float("nan"), task.networks())


def _memory_format(batch: Mapping[str, Any], channels_last: bool) -> Mapping[str, Any]:
    """The batch with its image tensors (4-D) in the channels-last memory format when asked."""
    if not channels_last:
        return batch
    return {key: value.contiguous(memory_format=torch.channels_last)
            if isinstance(value, torch.Tensor) and value.dim() == 4 else value for key, value in batch.items()}


def _training_state(task: TrainingTask) -> dict[str, Any]:
    """Optimiser and scheduler states for a checkpoint."""
    return {"optimizers": {name: opt.state_dict() for name, opt in task.optimizers.items()},
            "schedulers": {name: sched.state_dict() for name, sched in task.schedulers.items()}}


def _restore(task: TrainingTask, record: Any, model: Any, state: Mapping[str, Any]) -> int:
    """Load a checkpoint's networks, optimisers and schedulers into ``task``; return its step.

    Raises:
        InputFileError: the checkpoint does not match the task (a network or optimiser is missing).
    """
    path = record.model
    for name, module in task.networks().items():
        if name not in model.networks:
            raise InputFileError(path, f"network {name!r} missing from the checkpoint")
        module.load_state_dict(model.networks[name], strict=True)
    for kind, owners in (("optimizers", task.optimizers), ("schedulers", task.schedulers)):
        saved = state.get(kind, {})
        for name, owner in owners.items():
            if name not in saved:
                raise InputFileError(path, f"{kind[:-1]} state of {name!r} missing from the checkpoint")
            owner.load_state_dict(saved[name])
    return int(state["step"])
