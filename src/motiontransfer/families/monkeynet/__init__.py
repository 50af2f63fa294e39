"""Monkey-Net (Siarohin et al., CVPR 2019): ``config`` (the experiment), ``networks``, ``animator`` (the model behind
the common interface), ``task`` (training), ``predictor`` (the separately trained image-to-video keypoint predictor)
and ``convert`` (official checkpoints). Importing the package registers the family."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from motiontransfer.families.monkeynet.animator import MonkeyNetAnimator
from motiontransfer.families.monkeynet.convert import convert_monkeynet
from motiontransfer.families.monkeynet.predictor import fit_keypoint_predictor
from motiontransfer.families.monkeynet.task import MonkeyNetTask
from motiontransfer.registry import NO_MATCH, SPECIFIC_MATCH, FamilySpec, register

OFFICIAL_GENERATOR_MODULES = ("appearance_encoder.", "video_decoder.", "refinement_module.", "dense_motion_module.")
"""Parameter-name prefixes only the official Monkey-Net generator has."""
OFFICIAL_SECTIONS = ("transfer_params", "prediction_params")
"""Config sections only the official monkey-net layout has."""


def official_checkpoint_layout(checkpoint: Mapping[str, Any]) -> int:
    """The official monkey-net checkpoint: ``generator`` and ``kp_detector`` state dicts (the first-order-model
    layout) whose generator has Monkey-Net's modules or whose detector has Conv3d kernels."""
    generator, kp_detector = checkpoint.get("generator"), checkpoint.get("kp_detector")
    if not isinstance(generator, Mapping) or not isinstance(kp_detector, Mapping):
        return NO_MATCH
    if any(str(key).startswith(OFFICIAL_GENERATOR_MODULES) for key in generator):
        return SPECIFIC_MATCH
    conv3d = any(isinstance(value, torch.Tensor) and value.dim() == 5 for value in kp_detector.values())
    return SPECIFIC_MATCH if conv3d else NO_MATCH


def official_config_layout(data: Mapping[str, Any]) -> int:
    """The official monkey-net config: ``transfer_params`` / ``prediction_params`` sections, or ``kp_variance`` in
    ``model_params.common_params``."""
    common = (data.get("model_params") or {}).get("common_params") or {}
    if any(key in data for key in OFFICIAL_SECTIONS) or "kp_variance" in common:
        return SPECIFIC_MATCH
    return NO_MATCH


SPEC = register(FamilySpec(
    model=MonkeyNetAnimator,
    title="Monkey-Net",
    task=MonkeyNetTask,
    converter=convert_monkeynet,
    checkpoint_layout=official_checkpoint_layout,
    config_layout=official_config_layout,
    predictor_trainer=fit_keypoint_predictor,
))
