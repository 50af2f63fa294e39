"""What a family's training task is made of: the :class:`~motiontransfer.engine.task.TrainingTask` protocol and the
step helpers (``task``), optimisers and schedules (``optim``), and the single-process / ``torchrun`` context with DDP
wrapping and sampling (``distributed``).

It depends on nothing above :mod:`motiontransfer.checkpoint`, so the families build their tasks on it while the
generic training loop (:mod:`motiontransfer.training`) looks the tasks up in the registry.
"""
