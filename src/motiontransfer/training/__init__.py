"""Training: the generic loop (:func:`train`), distributed helpers, checkpoints and the family-specific steps
(:mod:`motiontransfer.training.fomm`)."""

from __future__ import annotations

from motiontransfer.training.trainer import StepResult, TrainingTask, TrainResult, train

__all__ = ["StepResult", "TrainResult", "TrainingTask", "train"]
