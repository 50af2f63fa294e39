"""Training, the same for every family: the generic loop (:func:`train`, :func:`train_to_steps`) around a family's
training task, checkpoints and resuming (``checkpoints``), and training in stages (:func:`run_stages`: stage 1, then
the family's later stages, if it has any). The families' tasks are in ``motiontransfer/families/<name>/task.py``,
their building blocks in :mod:`motiontransfer.engine`."""

from __future__ import annotations

from motiontransfer.engine.task import StepResult, TrainingTask
from motiontransfer.training.stages import StagesResult, run_stages
from motiontransfer.training.trainer import TrainResult, train, train_to_steps

__all__ = ["StagesResult", "StepResult", "TrainResult", "TrainingTask", "run_stages", "train", "train_to_steps"]
