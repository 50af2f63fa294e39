"""Training: the generic loop (:func:`train`), distributed helpers, checkpoints and the family-specific steps
(:mod:`motiontransfer.training.fomm`, ``monkeynet``, ``lia``)."""

from __future__ import annotations

from motiontransfer.training.trainer import StepResult, TrainingTask, TrainResult, train, train_to_steps

__all__ = ["StepResult", "TrainResult", "TrainingTask", "train", "train_to_steps"]
