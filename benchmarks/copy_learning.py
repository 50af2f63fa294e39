"""How many training steps does a convolutional synthesiser need just to reproduce its input?

FOMM's generator renders every output pixel through convolutions (the official architecture has no skip for the
warped image), so its reconstruction error cannot fall below what it reaches when the motion is the identity. This
script measures that learning curve in isolation: each network is trained as an autoencoder (target = input, L1,
Adam (0.5, 0.999) at the config's generator learning rate, batch 8) on frames of the procedural training videos,
and scored on held-out test frames every ``--every`` steps.

* ``two-layer conv``: 3 -> 32 -> 3 channels, 7x7 kernels, ReLU; it can represent the identity exactly.
* ``FOMM generator``: the generator of ``--config`` (synthetic-faces-64 by default) with its warp left out
  (first block, bottleneck, decoder, sigmoid), initialised as in training.

Usage:
    python benchmarks/copy_learning.py [--config synthetic-faces-64] [--steps 2000] [--every 200] [--threads N]
        [--json benchmarks/results/copy_learning.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch
from machine import describe_machine, parse_with_threads
from torch import nn

from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec
from motiontransfer.experiment import load_experiment
from motiontransfer.families.fomm.config import FommExperiment
from motiontransfer.families.fomm.networks import build_generator

ROOT = Path(__file__).resolve().parents[1]
BATCH = 8


class WarpFreeGenerator(nn.Module):
    """A FOMM generator without its dense motion network (so without the options that need its occlusion maps:
    ``image_blend``, ``multi_scale_occlusion``): (B, C, H, W) -> (B, C, H, W) in [0, 1]."""

    def __init__(self, experiment: FommExperiment) -> None:
        super().__init__()
        params = dataclasses.replace(experiment.model_params.generator_params, dense_motion_params=None,
                                     image_blend=False, multi_scale_occlusion=False)
        self.generator = build_generator(dataclasses.replace(experiment.model_params, generator_params=params))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.generator(images, {}, {})["prediction"]


def two_layer_conv() -> nn.Module:
    """3 -> 32 -> 3 channels, 7x7 kernels: the smallest net that can copy its input exactly."""
    return nn.Sequential(nn.Conv2d(3, 32, 7, padding=3), nn.ReLU(), nn.Conv2d(32, 3, 7, padding=3))


def frame_pool(family: str, split: str, videos: int, frames_per_video: int) -> torch.Tensor:
    """(N, 3, 64, 64) frames: ``frames_per_video`` evenly spaced frames of each of ``videos`` procedural videos."""
    source = ProceduralSource(ProceduralSpec(family, size=64, videos=videos, frames=32, split=split))
    step = 32 // frames_per_video
    return torch.stack([frame.tensor() for index in range(len(source))
                        for number, frame in enumerate(source.frames(index)) if number % step == 0])


def learning_curve(network: nn.Module, train: torch.Tensor, test: torch.Tensor, steps: int, every: int, lr: float,
                   seed: int = 0) -> list[tuple[int, float]]:
    """Train ``network`` to copy its input; [(step, mean L1 on ``test`` in eval mode)] every ``every`` steps."""
    optimizer = torch.optim.Adam(network.parameters(), lr=lr, betas=(0.5, 0.999))
    generator = torch.Generator().manual_seed(seed)
    curve = []
    for step in range(1, steps + 1):
        batch = train[torch.randint(len(train), (BATCH,), generator=generator)]
        loss = (network(batch) - batch).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % every == 0 or step == steps:
            network.eval()
            with torch.no_grad():
                curve.append((step, float((network(test) - test).abs().mean())))
            network.train()
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="synthetic-faces-64")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--every", type=int, default=200)
    args = parse_with_threads(parser, ROOT / "benchmarks" / "results" / "copy_learning.json")
    experiment = load_experiment(args.config)
    if not isinstance(experiment, FommExperiment):
        parser.error(f"{args.config} is not a FOMM config")
    family = ProceduralSpec.parse(experiment.dataset_params.root_dir).family
    train, test = frame_pool(family, "train", 200, 8), frame_pool(family, "test", 16, 4)
    lr = experiment.train_params.lr_generator
    results, minutes = {}, {}
    for name, build in (("two-layer conv", two_layer_conv), ("FOMM generator", lambda: WarpFreeGenerator(experiment))):
        torch.manual_seed(0)
        start = time.perf_counter()
        results[name] = learning_curve(build(), train, test, args.steps, args.every, lr)
        minutes[name] = (time.perf_counter() - start) / 60
    steps = [step for step, _ in results["two-layer conv"]]
    print(f"L1 on {len(test)} held-out {family} frames (copying a frame exactly scores 0); {describe_machine()}")
    print("| step | " + " | ".join(results) + " |")
    print("|---" * (len(results) + 1) + "|")
    for row, step in enumerate(steps):
        print(f"| {step} | " + " | ".join(f"{curve[row][1]:.4f}" for curve in results.values()) + " |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"settings": {"config": args.config, "family": family, "steps": args.steps,
                                                  "lr": lr, "batch": BATCH, "machine": describe_machine(),
                                                  "torch": torch.__version__},
                                     "curves": results, "minutes": minutes}, indent=2) + "\n")


if __name__ == "__main__":
    main()
