"""Train the procedural evaluators (keypoint regressor for AKD / MKR, identity embedder for AED, action classifier
for the prediction protocol) and report their accuracy on held-out evaluator identities.

Usage:
    python benchmarks/evaluators.py [--families faces puppets] [--kinds keypoints identity actions] [--steps 500]
        [--json benchmarks/results/evaluators.json] [--export]
With ``--export`` the networks are written (float16) into the package as its bundled evaluators.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from machine import parse_with_threads

from motiontransfer.evaluation.actions import (
    classification_accuracy,
    ground_truth_sequences,
    save_action_classifier,
    train_action_classifier,
)
from motiontransfer.evaluation.procedural import (
    keypoint_accuracy,
    save_evaluator,
    train_identity_embedder,
    train_keypoint_regressor,
    verification_accuracy,
)
from motiontransfer.pretrained import bundled_evaluator_path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["faces", "puppets"], choices=["faces", "puppets"])
    parser.add_argument("--kinds", nargs="+", default=["keypoints", "identity", "actions"],
                        choices=["keypoints", "identity", "actions"])
    parser.add_argument("--steps", type=int, default=500, help="training steps per evaluator")
    parser.add_argument("--export", action="store_true", help="write the networks into the package")
    args = parse_with_threads(parser, ROOT / "benchmarks" / "results" / "evaluators.json")
    results = json.loads(args.json.read_text()) if args.json.is_file() else {}
    for family in args.families:
        for kind in args.kinds:
            start = time.perf_counter()
            target = bundled_evaluator_path(kind, family, must_exist=False)
            if kind == "actions":
                classifier, losses = train_action_classifier(family)
                sequences, labels, _ = ground_truth_sequences(family, "test", videos=270, frames=32)
                accuracy = {"accuracy": classification_accuracy(classifier, sequences, labels), "videos": 270}
                minutes = (time.perf_counter() - start) / 60
                results[f"{kind}-{family}"] = {**accuracy, "epochs": len(losses), "train_minutes": minutes,
                                               "loss_first": losses[0], "loss_last": losses[-1]}
                print(f"{kind:>9} {family:>7}: {json.dumps(accuracy)} ({minutes:.1f} min)")
                if args.export:
                    print(f"exported {save_action_classifier(target, classifier, family, accuracy['accuracy'])}")
                continue
            if kind == "keypoints":
                model, log = train_keypoint_regressor(family, steps=args.steps)
                accuracy = keypoint_accuracy(model, family)
            else:
                model, log = train_identity_embedder(family, steps=args.steps)
                accuracy = verification_accuracy(model, family)
            minutes = (time.perf_counter() - start) / 60
            results[f"{kind}-{family}"] = {**accuracy, "steps": args.steps, "train_minutes": minutes,
                                           "loss_first": log.losses[0], "loss_last": log.losses[-1]}
            print(f"{kind:>9} {family:>7}: {json.dumps(accuracy)} ({minutes:.1f} min)")
            if args.export:
                print(f"exported {save_evaluator(target, model, family, accuracy)}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
