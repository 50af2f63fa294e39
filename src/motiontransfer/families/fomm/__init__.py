"""First Order Motion Model (Siarohin et al., NeurIPS 2019): ``config`` (the experiment), ``networks``, ``animator``
(the model behind the common interface), ``task`` (training) and ``convert`` (official checkpoints). Importing the
package registers the family."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from motiontransfer.families.fomm.animator import FOMMAnimator
from motiontransfer.families.fomm.convert import convert_fomm
from motiontransfer.families.fomm.task import FommTask
from motiontransfer.registry import GENERIC_MATCH, NO_MATCH, FamilySpec, register


def official_checkpoint_layout(checkpoint: Mapping[str, Any]) -> int:
    """The official first-order-model ``Logger.save_cpk`` layout (``generator`` and ``kp_detector`` state dicts),
    which Monkey-Net's checkpoints share: a generic match."""
    networks = (checkpoint.get("generator"), checkpoint.get("kp_detector"))
    return GENERIC_MATCH if all(isinstance(state, Mapping) for state in networks) else NO_MATCH


def official_config_layout(data: Mapping[str, Any]) -> int:
    """first-order-model's config layout, the one every official config without a ``family`` key builds on: a
    generic match for any of them."""
    return GENERIC_MATCH


SPEC = register(FamilySpec(
    model=FOMMAnimator,
    title="FOMM",
    task=FommTask,
    converter=convert_fomm,
    checkpoint_layout=official_checkpoint_layout,
    config_layout=official_config_layout,
))
