"""LIA, the Latent Image Animator (Wang et al., ICLR 2022): ``config`` (the experiment), ``networks``, ``animator``
(the model behind the common interface), ``task`` (training) and ``convert`` (official checkpoints). Importing the
package registers the family."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from motiontransfer.families.lia.animator import LIAAnimator
from motiontransfer.families.lia.convert import convert_lia
from motiontransfer.families.lia.task import LIATask
from motiontransfer.registry import NO_MATCH, SPECIFIC_MATCH, FamilySpec, register


def official_checkpoint_layout(checkpoint: Mapping[str, Any]) -> int:
    """LIA's trainer saves the generator's state dict under ``gen``."""
    return SPECIFIC_MATCH if isinstance(checkpoint.get("gen"), Mapping) else NO_MATCH


SPEC = register(FamilySpec(
    model=LIAAnimator,
    title="LIA",
    task=LIATask,
    converter=convert_lia,
    checkpoint_layout=official_checkpoint_layout,
    default_config="lia-vox-256",
))
