"""KPVP (Kim et al., NeurIPS 2019), unsupervised keypoints guiding class-conditional video prediction: ``config``
(the experiment), ``networks``, ``animator`` (the model behind the common interface), ``task`` (training stage 1)
and ``stages`` (stages 2 and 3: pseudo-labels and the motion generator). Importing the package registers the
family."""

from __future__ import annotations

from motiontransfer.families.kpvp.animator import KPVPAnimator
from motiontransfer.families.kpvp.stages import LATER_STAGES, check_data_actions, run_later_stages
from motiontransfer.families.kpvp.task import KPVPTask
from motiontransfer.registry import FamilySpec, LaterStages, register

SPEC = register(FamilySpec(
    model=KPVPAnimator,
    title="KPVP",
    task=KPVPTask,
    later_stages=LaterStages(numbers=LATER_STAGES, description="2 pseudo-labels, 3 motion generator",
                             check=check_data_actions, run=run_later_stages),
))
