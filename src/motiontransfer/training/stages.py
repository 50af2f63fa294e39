"""Training in stages, for every family: stage 1 is the generic training (:func:`~motiontransfer.training.trainer.
train`); a family with later stages (its registered ``later_stages``; KPVP: 2 pseudo-labels, 3 the motion generator)
runs them afterwards in the same run folder, on the model of the run's latest checkpoint. This is what
``motiontransfer train`` runs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from motiontransfer.checkpoint import load_model_file
from motiontransfer.engine.distributed import resolve_device
from motiontransfer.errors import ArgumentError, Term, UserError
from motiontransfer.experiment import load_experiment, model_from_file
from motiontransfer.registry import FamilySpec, StageOutput, family
from motiontransfer.training.checkpoints import read_latest, require_latest
from motiontransfer.training.trainer import TrainResult, train

FIRST_STAGE = 1
"""The generic training, every family's first (and usually only) stage."""


@dataclass
class StagesResult:
    """What :func:`run_stages` did: the run folder, stage 1's :class:`~motiontransfer.training.trainer.TrainResult`
    (None when it did not run) and the later stages' outputs by stage number."""

    run_dir: Path
    stage1: TrainResult | None = None
    outputs: dict[int, StageOutput] = field(default_factory=dict)


def family_stages(spec: FamilySpec) -> tuple[int, ...]:
    """Every stage of the family's training: 1, then its later stages."""
    return (FIRST_STAGE, *(spec.later_stages.numbers if spec.later_stages is not None else ()))


def check_stages(spec: FamilySpec, stages: Sequence[int] | None, where: str = "") -> list[int]:
    """Sorted distinct stage numbers of the family's training (None: all of them).

    Args:
        where: what the family was read from, for the message (``"RUN is a kpvp run; "``).

    Raises:
        ArgumentError: a stage the family does not have.
    """
    known = family_stages(spec)
    if stages is None:
        return list(known)
    bad = [stage for stage in stages if stage not in known]
    if bad or not stages:
        offered = (f"stages {', '.join(map(str, known))} (1 the training, {spec.later_stages.description})"
                   if spec.later_stages is not None else "one stage (1)")
        raise ArgumentError(f"{where}the {spec.name} family trains in {offered}; ", Term("stages"),
                            f" {list(stages)} does not fit")
    return sorted(set(stages))


def run_family(config: Any = None, resume: str | Path | None = None) -> tuple[FamilySpec, Any, str]:
    """The family to train: of ``config`` (an experiment, bundled name or YAML path; loaded once and returned) when
    given, else of the run ``resume`` continues.

    Returns:
        (the family's spec, the loaded experiment or None, a note on where the family came from for messages).

    Raises:
        ArgumentError: neither given. UserError / InputFileError: a bad config, or a run without checkpoint.
    """
    if config is not None:
        experiment = load_experiment(config) if isinstance(config, str | Path) else config
        return family(experiment.family), experiment, ""
    if resume is None:
        raise ArgumentError("give a config (to start a run) or ", Term("resume"), " RUN (to continue one)")
    record = require_latest(resume)
    return family(record.family), None, f"{resume} is a {record.family} run; "


def run_stages(config: Any = None, *, data: str | Path | None = None, out_dir: str | Path | None = None,
               steps: int | None = None, resume: str | Path | None = None, stages: Sequence[int] | None = None,
               device: str | None = None, progress: bool = True) -> StagesResult:
    """Run a family's training stages in order in one run folder.

    Stage 1 is :func:`~motiontransfer.training.trainer.train` (``config``, ``data``, ``steps``, ``resume`` and
    ``out_dir`` as there); the later stages read the run's latest checkpoint and its data (``data``, else the
    run's) and write their files into the run folder. Later stages without stage 1 need ``resume`` and take the
    run's config. ``steps`` bounds every stage that optimises. The family checks its data before stage 1 of a new
    run that also runs later stages, so that a run the later stages would refuse fails before the expensive work.
    Under ``torchrun`` stage 1 runs on every process and the later stages on rank 0 alone.

    Args:
        stages: the stages to run (None: all of the family's).

    Raises:
        UserError: bad stages, a missing run or checkpoint, data the family cannot use, or the errors of each stage.
    """
    spec, experiment, where = run_family(config, resume)
    stages = check_stages(spec, stages, where)
    later = [stage for stage in stages if stage != FIRST_STAGE]
    result = StagesResult(Path(out_dir if out_dir is not None else resume or "."))
    if FIRST_STAGE in stages:
        if later and resume is None and experiment is not None and spec.later_stages is not None:
            source = data if data is not None else experiment.dataset_params.root_dir
            if source:
                spec.later_stages.check(experiment, str(source))
        result.stage1 = train(experiment, data=data, out_dir=out_dir, steps=steps, resume=resume, device=device,
                              progress=progress)
        result.run_dir = result.stage1.run_dir
        if int(os.environ.get("RANK", "0")) != 0:
            return result  # under torchrun, the later stages (single-process work) run on rank 0 only
    elif resume is None:
        raise ArgumentError(f"stages {', '.join(map(str, later))} continue a run: give ", Term("resume"), " RUN")
    elif config is not None:
        raise ArgumentError(f"stages {', '.join(map(str, later))} use the config saved in the run; drop ",
                            Term("config"))
    if later:
        assert spec.later_stages is not None
        result.outputs = _run_later(spec, result.run_dir, data, later, steps, device, progress)
    return result


def _run_later(spec: FamilySpec, run_dir: Path, data: str | Path | None, stages: list[int], steps: int | None,
               device: str | None, progress: bool) -> dict[int, StageOutput]:
    """The family's later ``stages`` on the model of the run's latest checkpoint."""
    assert spec.later_stages is not None
    record = read_latest(run_dir)
    if record is None:
        raise UserError(f"{run_dir} has no checkpoint; run stage 1 first")
    if record.family != spec.name:
        raise UserError(f"{run_dir} is a {record.family} run; stages {', '.join(map(str, stages))} belong to "
                        f"{spec.title}")
    torch_device = resolve_device(device)
    model = model_from_file(load_model_file(record.model), device=torch_device)
    source = data if data is not None else record.data
    return spec.later_stages.run(model, run_dir, None if source is None else str(source), stages, steps=steps,
                                 device=torch_device, progress=progress)
