"""The family registry: the one table of model families, filled when each family's package is imported.

A family (``motiontransfer/families/<name>/``) describes itself in one :class:`FamilySpec` and registers it from its
package's ``__init__``; :mod:`motiontransfer.families` imports the built-in ones. Everything that depends on the
family (parsing an experiment, building a model from a model file, training, converting an official checkpoint,
recognising an official config or checkpoint, a family's extra training stages or predictor) reads this registry;
nothing else names the families.

Adding a family is writing its package and registering its spec (see CONTRIBUTING.md); a test can register a toy
family for its duration with :func:`registered`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from motiontransfer.checkpoint import ModelFile
from motiontransfer.engine.distributed import DistributedContext
from motiontransfer.engine.task import TrainingTask
from motiontransfer.errors import UserError
from motiontransfer.models.base import AnimationModel

TaskFactory = Callable[[Any, DistributedContext, int], TrainingTask]
"""``(experiment, context, steps_per_epoch) -> task``: a family's training task (usually its task class)."""

Converter = Callable[..., ModelFile]
"""``(checkpoint dict, experiment, *, config_name) -> ModelFile``: an official checkpoint, read safely, mapped onto
the networks the experiment describes (strictly: every missing, unexpected or misshapen key is an error)."""

LayoutMatcher = Callable[[Mapping[str, Any]], int]
"""How strongly plain data (an official checkpoint dict, or a parsed config without a ``family`` key) has a family's
layout: :data:`NO_MATCH`, :data:`GENERIC_MATCH` (the layout others build on) or :data:`SPECIFIC_MATCH` (markers only
this family has). The strongest match wins."""

NO_MATCH, GENERIC_MATCH, SPECIFIC_MATCH = 0, 1, 2

PredictorTrainer = Callable[..., tuple[int, Any]]
"""``(model, data, *, num_videos, epochs, seed, progress) -> (videos used, result)``, the result having ``losses``
(one per epoch): trains a separately trained image-to-video predictor into ``model`` (``motiontransfer
train-predictor``)."""


@dataclass(frozen=True)
class StageOutput:
    """What one of a family's later training stages produced: the file it wrote, a one-line summary (or None) and
    its result object (family-specific, e.g. the loss history)."""

    path: Path
    summary: str | None = None
    result: Any = None


@dataclass(frozen=True)
class LaterStages:
    """Training stages a family runs after the generic training (stage 1), on the model of the run's latest
    checkpoint (KPVP: 2 pseudo-labels, 3 the motion generator).

    Attributes:
        numbers: the stage numbers (2, 3, ...).
        description: what they do, for messages (``"2 pseudo-labels, 3 motion generator"``).
        check: ``(experiment, data) -> None``; raises UserError when the data cannot serve these stages. Called
            before stage 1 of a new run that also runs later stages, and before the later stages themselves.
        run: ``(model, run_dir, data, stages, *, steps, device, progress) -> {stage: StageOutput}``: runs
            ``stages`` (a sorted subset of ``numbers``) in the run folder; ``steps`` bounds every stage that
            optimises.
    """

    numbers: tuple[int, ...]
    description: str
    check: Callable[[Any, str], None]
    run: Callable[..., dict[int, StageOutput]]


@dataclass(frozen=True)
class FamilySpec:
    """Everything the generic code needs of a model family.

    Attributes:
        model: the :class:`~motiontransfer.models.base.AnimationModel` subclass; its ``family`` is the name stored
            in model files and checkpoints, its ``experiment_type`` the experiment dataclass.
        title: the family's name in messages (``Monkey-Net``).
        task: builds the training task (None: the family cannot be trained here).
        converter: converts official checkpoints (None: there are none to convert).
        checkpoint_layout: recognises the family's official checkpoint dicts.
        config_layout: recognises the family's official config files, which carry no ``family`` key.
        default_config: the config of official checkpoints given without one (when they share one architecture).
        later_stages: training stages after stage 1 (None: the family trains in one stage).
        predictor_trainer: trains a separately trained image-to-video predictor (None: there is none).
    """

    model: type[AnimationModel]
    title: str
    task: TaskFactory | None = None
    converter: Converter | None = None
    checkpoint_layout: LayoutMatcher | None = None
    config_layout: LayoutMatcher | None = None
    default_config: str | None = None
    later_stages: LaterStages | None = None
    predictor_trainer: PredictorTrainer | None = None

    @property
    def name(self) -> str:
        """The family's name (``fomm``): the key in model files, checkpoints and configs."""
        return self.model.family

    @property
    def experiment(self) -> type:
        """The family's experiment dataclass (what a config file of this family validates into)."""
        return self.model.experiment_type


_FAMILIES: dict[str, FamilySpec] = {}
"""The registry: family name -> spec, in registration order."""


def register(spec: FamilySpec) -> FamilySpec:
    """Add ``spec`` to the registry and return it.

    Raises:
        ValueError: another spec is registered under the same name.
    """
    known = _FAMILIES.get(spec.name)
    if known is not None and known is not spec:
        raise ValueError(f"a model family named {spec.name!r} is already registered")
    _FAMILIES[spec.name] = spec
    return spec


def unregister(name: str) -> FamilySpec:
    """Remove the family ``name`` from the registry and return its spec (KeyError when it is not registered)."""
    return _FAMILIES.pop(name)


@contextlib.contextmanager
def registered(spec: FamilySpec) -> Iterator[FamilySpec]:
    """Register ``spec`` for the duration of a ``with`` block, in place of a family of the same name if there is
    one; the registry is as before afterwards (for tests)."""
    previous = _FAMILIES.get(spec.name)
    _FAMILIES[spec.name] = spec
    try:
        yield spec
    finally:
        if previous is None:
            _FAMILIES.pop(spec.name, None)
        else:
            _FAMILIES[spec.name] = previous


def family(name: str) -> FamilySpec:
    """The spec of the family ``name``.

    Raises:
        UserError: no family of that name is registered (the message lists the known ones).
    """
    if name not in _FAMILIES:
        raise UserError(f"unknown model family {name!r}; known: {', '.join(_FAMILIES) or 'none'}")
    return _FAMILIES[name]


def families() -> tuple[FamilySpec, ...]:
    """Every registered family's spec, in registration order."""
    return tuple(_FAMILIES.values())


def family_names() -> tuple[str, ...]:
    """The registered families' names, in registration order."""
    return tuple(_FAMILIES)


def recognize(layout: str, data: Mapping[str, Any]) -> str | None:
    """The family whose ``layout`` matcher (``"checkpoint_layout"`` or ``"config_layout"``) matches ``data`` most
    strongly, or None when none does.

    Raises:
        ValueError: two families match equally strongly (their matchers overlap: a bug in one of them).
    """
    scores = {spec.name: matcher(data) for spec in families()
              if (matcher := getattr(spec, layout)) is not None}
    best = max(scores.values(), default=NO_MATCH)
    if best == NO_MATCH:
        return None
    winners = [name for name, score in scores.items() if score == best]
    if len(winners) > 1:
        raise ValueError(f"the {layout} matchers of {' and '.join(winners)} match the same data equally strongly")
    return winners[0]

