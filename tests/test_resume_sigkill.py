"""Crash safety: a training run killed with SIGKILL (during checkpoint writing) resumes from a complete checkpoint."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from motiontransfer.checkpoint import load_model_file
from motiontransfer.training.checkpoints import load_training_state, read_latest
from training_helpers import PYTHON, subprocess_env, write_tiny_config

TOTAL_STEPS = 24
KEEP = 2

# Runs the CLI with checkpoint writing slowed down: every atomic write sleeps after writing its temporary file and
# before renaming it, and the model file is followed by a pause before the training state, so that a kill at a
# random moment usually lands in the middle of a checkpoint.
SLOW_CLI = """
import contextlib, sys, time, warnings
warnings.filterwarnings("ignore")
import motiontransfer.training.checkpoints as checkpoints
from motiontransfer.cli import main

real_atomic_output, real_save_model_file = checkpoints.atomic_output, checkpoints.save_model_file

@contextlib.contextmanager
def slow_atomic_output(path, **kwargs):
    with real_atomic_output(path, **kwargs) as temp:
        yield temp
        time.sleep(0.1)

def slow_save_model_file(path, model):
    with real_atomic_output(path) as temp:
        real_save_model_file(temp, model)
        time.sleep(0.1)
    time.sleep(0.05)
    return path

checkpoints.atomic_output = slow_atomic_output
checkpoints.save_model_file = slow_save_model_file
sys.exit(main(sys.argv[1:]))
"""


def _check_complete(run: Path) -> int:
    """Everything latest.json names loads, every visible model file is complete; returns the latest step."""
    record = read_latest(run)
    assert record is not None
    model = load_model_file(record.model)
    assert model.metadata["step"] == record.step
    assert load_training_state(record.training_state)["step"] == record.step
    for path in (run / "checkpoints").glob("step-*.mt"):
        load_model_file(path)  # renamed into place only when complete
    return record.step


def _start(script: Path, args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([PYTHON, str(script), *args], env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _kill_after_checkpoint(process: subprocess.Popen[str], run: Path, min_step: int, rng: random.Random) -> None:
    """Wait until latest.json reaches ``min_step``, wait a random moment more, then SIGKILL the process."""
    deadline = time.monotonic() + 240
    latest = run / "checkpoints" / "latest.json"
    while time.monotonic() < deadline and process.poll() is None:
        if latest.is_file() and json.loads(latest.read_text())["step"] >= min_step:
            break
        time.sleep(0.02)
    assert process.poll() is None, "training finished or failed before it could be killed: " + process.stderr.read()
    time.sleep(rng.uniform(0.0, 0.5))
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_sigkill_during_checkpointing_then_resume_finishes(tmp_path: Path) -> None:
    rng = random.Random()
    config = write_tiny_config(tmp_path / "tiny.yaml", max_steps=TOTAL_STEPS, checkpoint_every=1, sample_every=1000,
                               keep_checkpoints=KEEP, batch_size=2)
    script = tmp_path / "slow_cli.py"
    script.write_text(SLOW_CLI)
    run = tmp_path / "run"

    process = _start(script, ["train", "--config", str(config), "--out", str(run)])
    _kill_after_checkpoint(process, run, rng.randint(2, 4), rng)
    killed_at = _check_complete(run)

    process = _start(script, ["train", "--resume", str(run)])  # killed again, while resuming
    _kill_after_checkpoint(process, run, killed_at + rng.randint(1, 3), rng)
    killed_at = _check_complete(run)
    assert killed_at < TOTAL_STEPS

    done = subprocess.run([PYTHON, "-m", "motiontransfer", "train", "--resume", str(run)], env=subprocess_env(),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    match = re.search(r"trained steps (\d+)\.\.(\d+)", done.stdout)
    assert match is not None, done.stdout
    assert (int(match.group(1)), int(match.group(2))) == (killed_at, TOTAL_STEPS)
    assert _check_complete(run) == TOTAL_STEPS
    files = sorted(p.name for p in (run / "checkpoints").iterdir())
    expected = [f"step-{step:08d}.{suffix}" for step in range(TOTAL_STEPS - KEEP + 1, TOTAL_STEPS + 1)
                for suffix in ("mt", "optim.pt")]
    assert files == sorted(["latest.json", *expected])  # leftovers of the crashes are gone
