"""Tiny FOMM training configs shared by the training, distributed and crash-resume tests."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from motiontransfer.experiment import experiment_from_dict
from motiontransfer.params import Experiment

ROOT = Path(__file__).resolve().parents[1]
TINY_DATA = "procedural:shapes:videos=8,frames=12"

_TINY: dict[str, Any] = {
    "model_params": {
        "common_params": {"num_kp": 4, "num_channels": 3, "estimate_jacobian": True},
        "kp_detector_params": {"temperature": 0.1, "block_expansion": 8, "max_features": 32, "num_blocks": 3,
                               "scale_factor": 1, "pad": 3},
        "generator_params": {"block_expansion": 8, "max_features": 32, "num_down_blocks": 2,
                             "num_bottleneck_blocks": 1, "estimate_occlusion_map": True,
                             "dense_motion_params": {"block_expansion": 8, "max_features": 32, "num_blocks": 3,
                                                     "scale_factor": 1}},
        "discriminator_params": {"scales": [1], "block_expansion": 8, "max_features": 32, "num_blocks": 3,
                                 "sn": True},
    },
    "dataset_params": {"root_dir": TINY_DATA, "frame_shape": [32, 32, 3],
                       "augmentation_params": {"flip_param": {"horizontal_flip": True, "time_flip": True}}},
    "train_params": {"num_epochs": 100, "num_repeats": 2, "epoch_milestones": [50], "batch_size": 4,
                     "scales": [1, 0.5, 0.25], "loss_weights": {"generator_gan": 0}, "max_steps": 6,
                     "log_every": 2, "sample_every": 2, "checkpoint_every": 2, "keep_checkpoints": 2},
}


def tiny_config(**train_params: Any) -> dict[str, Any]:
    """The tiny config as plain data, with ``train_params`` entries replaced (``loss_weights`` merged)."""
    config = copy.deepcopy(_TINY)
    weights = train_params.pop("loss_weights", {})
    config["train_params"].update(train_params)
    config["train_params"]["loss_weights"].update(weights)
    return config


def tiny_experiment(**train_params: Any) -> Experiment:
    """A 32 px FOMM experiment with ~50k parameters per network (see :func:`tiny_config`)."""
    return experiment_from_dict(tiny_config(**train_params))


def write_tiny_config(path: Path, **train_params: Any) -> Path:
    """Write :func:`tiny_config` as YAML to ``path``."""
    path.write_text(yaml.safe_dump(tiny_config(**train_params)))
    return path


def subprocess_env() -> dict[str, str]:
    """Environment for child Python processes: the package on the path, one thread, no warnings noise."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONWARNINGS"] = "ignore"
    return env


PYTHON = sys.executable
