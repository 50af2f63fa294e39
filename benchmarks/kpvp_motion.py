"""KPVP's motion generator (stage 3) on ground-truth keypoints: does the conditional VAE learn action-conditional,
diverse motion when the keypoints it is given move as the bodies do?

This isolates stage 3 from stage 1. The cVAE is trained on the procedural puppets' true joint sequences (the role
the detector's pseudo-labels play in the full method) with the config's ``motion_params``, once with the action
condition and once without (the paper's Table 2 compares the two: 68.89% and 63.33% on Penn Action). From the first
frame of each held-out test video it then draws 4 futures of 31 frames, scored as the prediction protocol does:
the accuracy of the bundled action classifier (trained on ground-truth sequences) on [k_0, future], the diversity
between the 4 futures and the error to the true continuation. The true sequences and the still first frame
bracket the numbers.

Usage:
    python benchmarks/kpvp_motion.py [--config kpvp-synthetic-puppets-64] [--train-videos 400]
        [--test-videos 100] [--steps N] [--threads N] [--json benchmarks/results/kpvp_motion.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from machine import describe_machine, parse_with_threads

from motiontransfer.evaluation.actions import ground_truth_sequences, load_action_classifier
from motiontransfer.evaluation.prediction import score_samples
from motiontransfer.experiment import load_experiment
from motiontransfer.families.kpvp.config import KPVPExperiment
from motiontransfer.families.kpvp.stages import PseudoLabels, train_motion_generator
from motiontransfer.ops.coordinates import normalized_to_pixels, pixels_to_normalized
from motiontransfer.pretrained import bundled_evaluator_path

ROOT = Path(__file__).resolve().parents[1]
SIZE = 64
SAMPLES = 4


def variant(experiment: KPVPExperiment, num_kp: int, conditional: bool) -> KPVPExperiment:
    """The experiment with K = the joints' count and the action condition on or off."""
    changed = copy.deepcopy(experiment)
    changed.model_params.num_kp = num_kp
    if not conditional:
        changed.model_params.motion_generator.actions = []
    return changed


def score(generator: Any, experiment: KPVPExperiment, sequences: torch.Tensor, labels: torch.Tensor,
          names: tuple[str, ...], classifier: Any) -> dict[str, float]:
    """Mean prediction-protocol scores of the generator from the first frame of each test sequence (pixels)."""
    actions = experiment.model_params.motion_generator.actions
    records = []
    with torch.no_grad():
        for index in range(len(sequences)):
            first = pixels_to_normalized(sequences[index, :1], SIZE)
            action = torch.tensor([actions.index(names[int(labels[index])])]) if actions else None
            futures = [generator.sample(first, action, sequences.shape[1] - 1,
                                        generator=torch.Generator().manual_seed(seed))[0]
                       for seed in range(SAMPLES)]
            samples = torch.stack([torch.cat([first, future]) for future in futures])
            pixels = normalized_to_pixels(samples, SIZE).numpy()
            records.append(score_samples(pixels, sequences[index].numpy(), int(labels[index]), classifier))
    return {key: float(np.mean([r[key] for r in records])) for key in records[0]}


def reference_scores(sequences: torch.Tensor, labels: torch.Tensor, classifier: Any) -> dict[str, dict[str, float]]:
    """The same scores of the true sequences and of the still first frame."""
    out: dict[str, dict[str, float]] = {}
    for name, make in (("ground truth", lambda s: s), ("still first frame", lambda s: s[:1].expand_as(s))):
        records = [score_samples(make(s)[None].numpy(), s.numpy(), int(label), classifier)
                   for s, label in zip(sequences, labels, strict=True)]
        out[name] = {key: float(np.mean([r[key] for r in records])) for key in ("action_accuracy", "error_best")}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="kpvp-synthetic-puppets-64")
    parser.add_argument("--train-videos", type=int, default=400)
    parser.add_argument("--test-videos", type=int, default=100)
    parser.add_argument("--steps", type=int, default=None, help="motion generator steps [default: the config's]")
    args = parse_with_threads(parser, ROOT / "benchmarks" / "results" / "kpvp_motion.json")
    experiment = load_experiment(args.config)
    assert isinstance(experiment, KPVPExperiment)
    frames = experiment.motion_params.num_frames + 1
    train, train_labels, names = ground_truth_sequences("puppets", "train", args.train_videos, frames, SIZE)
    test, test_labels, _ = ground_truth_sequences("puppets", "test", args.test_videos, frames - 1, SIZE)
    labels = PseudoLabels([pixels_to_normalized(s, SIZE).numpy() for s in train],
                          [f"gt-{i}" for i in range(len(train))], [names[int(i)] for i in train_labels])
    classifier = load_action_classifier(bundled_evaluator_path("actions", "puppets"))
    results: dict[str, Any] = {"references": reference_scores(test, test_labels, classifier), "variants": {},
                               "minutes": {}}
    for title, conditional in (("with the action condition", True), ("w/o action condition", False)):
        config = variant(experiment, train.shape[2], conditional)
        start = time.perf_counter()
        trained = train_motion_generator(config, labels, steps=args.steps)
        results["minutes"][title] = (time.perf_counter() - start) / 60
        results["variants"][title] = {**score(trained.generator, config, test, test_labels, names, classifier),
                                      "final_kl": trained.history[-1]["kl"],
                                      "final_l1": trained.history[-1]["l1"] / config.motion_params.loss_weights.l1}
    results["settings"] = {"config": args.config, "train_videos": args.train_videos, "test_videos": args.test_videos,
                           "steps": args.steps or experiment.motion_params.num_steps, "frames": frames,
                           "samples": SAMPLES, "torch": torch.__version__,
                           "machine": describe_machine()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))


def markdown(results: dict[str, Any]) -> str:
    """The table, as Markdown."""
    lines = ["| motion from | action accuracy | diversity (px) | error best / mean (px) | final KL (nats) |",
             "|---|---|---|---|---|"]
    for name, s in results["variants"].items():
        lines.append(f"| cVAE {name} | {s['action_accuracy']:.3f} | {s['diversity']:.2f} | "
                     f"{s['error_best']:.2f} / {s['error_mean']:.2f} | {s['final_kl']:.2f} |")
    for name, s in results["references"].items():
        lines.append(f"| {name} | {s['action_accuracy']:.3f} | - | {s['error_best']:.2f} | - |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
