"""Distributed training: two CPU processes under torchrun (gloo) train the tiny config together."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from motiontransfer.checkpoint import load_model_file
from training_helpers import PYTHON, subprocess_env, write_tiny_config

WORKER = """
import json, os, sys, warnings
warnings.filterwarnings("ignore")
import pytest
import torch
from motiontransfer.training import train

config, out, report = sys.argv[1:4]
result = train(config, out_dir=out, progress=False)
rank = int(os.environ["RANK"])
torch.save({name: module.state_dict() for name, module in result.networks.items()}, f"{report}/rank{rank}.pt")
with open(f"{report}/rank{rank}.json", "w") as handle:
    json.dump({"world_size": int(os.environ["WORLD_SIZE"]), "step": result.step,
               "steps_per_epoch": result.steps_per_epoch,
               "checkpoint": None if result.checkpoint is None else str(result.checkpoint.model)}, handle)
"""


def train_on_two_processes(config: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Run :data:`WORKER` on ``config`` under torchrun with two CPU processes: (report folder, run folder)."""
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    report, run = tmp_path / "report", tmp_path / "run"
    report.mkdir()
    command = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(worker),
               str(config), str(run), str(report)]
    done = subprocess.run(command, env=subprocess_env(), capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return report, run


@pytest.mark.slow
def test_two_cpu_processes_train_identical_weights_and_rank0_writes_once(tmp_path: Path) -> None:
    # generator_gan 1: the discriminator (spectral norm) is trained too and called twice per step under DDP,
    # the keypoint detector three times (source, driving, transformed driving).
    config = write_tiny_config(tmp_path / "tiny.yaml", batch_size=2, max_steps=4, checkpoint_every=2,
                               sample_every=2, log_every=1, loss_weights={"generator_gan": 1})
    report, run = train_on_two_processes(config, tmp_path)

    ranks = [json.loads((report / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert [r["step"] for r in ranks] == [4, 4]
    assert [r["steps_per_epoch"] for r in ranks] == [4, 4]  # 16 items: 8 per process, batch 2
    assert ranks[0]["checkpoint"] is not None and ranks[1]["checkpoint"] is None
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert checkpoints == ["latest.json", "step-00000002.mt", "step-00000002.optim.pt", "step-00000004.mt",
                           "step-00000004.optim.pt"]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-00000002.png", "step-00000004.png"]
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1
    assert not list(run.rglob(".*tmp-*"))

    weights = [torch.load(report / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    saved = load_model_file(run / "checkpoints" / "step-00000004.mt").networks
    assert set(weights[0]) == {"kp_detector", "generator", "discriminator"}
    for name, state in weights[0].items():
        for key, value in state.items():
            assert torch.equal(value, weights[1][name][key]), (name, key)  # parameters and buffers
            assert torch.equal(value, saved[name][key]), (name, key)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["monkeynet", "lia"])
def test_the_other_families_train_identically_on_two_processes(family: str, tmp_path: Path) -> None:
    import copy

    import yaml

    from test_lia import TINY as LIA_TINY
    from test_monkeynet import TINY as MONKEYNET_TINY

    config = copy.deepcopy({"monkeynet": MONKEYNET_TINY, "lia": LIA_TINY}[family])
    config["train_params"].update({"batch_size": 2, "max_steps": 2, "checkpoint_every": 2, "sample_every": 2})
    path = tmp_path / f"{family}.yaml"
    path.write_text(yaml.safe_dump(config))
    report, _ = train_on_two_processes(path, tmp_path)
    weights = [torch.load(report / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for name, state in weights[0].items():
        for key, value in state.items():
            assert torch.equal(value, weights[1][name][key]), (name, key)
