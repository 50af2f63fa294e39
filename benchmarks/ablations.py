"""Ablation studies (Monkey-Net's Table 2, LIA's Tables 4-5) on the procedural sets, at a stated CPU budget.

Each study in ``benchmarks/ablations.yaml`` names a base config, a procedural set, a step budget and variants,
each a set of dotted-key changes to the config (``model_params.generator_params.dense_motion_params: null``). Every
variant is trained from scratch for the budget (run folders under ``--runs`` are reused or resumed), then scored on
the reconstruction protocol of held-out test identities; the paper's numbers sit next to ours. Adding a study means
adding an entry, not code.

A study with ``prediction: true`` (image-to-video families) also builds each variant's image-to-video part (KPVP:
stages 2 and 3) and adds the prediction protocol's ``action_accuracy`` and ``diversity`` (4 samples of 32 frames
per test video) to the metrics it may list.

Results go to ``benchmarks/results/ablations.json``; ``benchmarks/quality.py`` puts the tables in docs/results.md.

Usage:
    python benchmarks/ablations.py [--studies monkeynet lia] [--videos 16] [--frames 32] [--runs runs/ablations]
        [--json benchmarks/results/ablations.json] [--threads N] [--variants NAME ...]

``--variants`` runs only the named variants and merges their scores into the stored study, so two processes
(for example one thread each on a two-core machine) can share a study's variants; the JSON is re-read just before
it is written.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import time
from pathlib import Path
from typing import Any

import yaml
from machine import describe_machine, parse_with_threads

from motiontransfer.api import load
from motiontransfer.config import load_yaml
from motiontransfer.evaluation.runner import evaluate, evaluate_prediction
from motiontransfer.experiment import experiment_from_dict, resolve_config
from motiontransfer.fileio import atomic_write_text
from motiontransfer.training import train_to_steps
from motiontransfer.training.checkpoints import read_latest

ROOT = Path(__file__).resolve().parents[1]
METRIC_TITLES = {"l1": "L1", "akd": "AKD", "mkr": "MKR", "aed": "AED", "psnr": "PSNR", "ssim": "SSIM",
                 "action_accuracy": "action accuracy", "diversity": "diversity (px)"}
PREDICTION_METRICS = ("action_accuracy", "diversity")


def apply_changes(config: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with each dotted key set (``a.b.c: value``); the parents must exist.

    Raises:
        KeyError: a dotted key whose parent is missing (a typo in the study).
    """
    changed = copy.deepcopy(config)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = changed
        for key in parents:
            if not isinstance(node.get(key), dict):
                raise KeyError(f"{dotted}: {key} is not a section of the base config")
            node = node[key]
        node[leaf] = value
    return changed


def slug(name: str) -> str:
    """A folder name for a variant."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def variant_run(study: dict[str, Any], variant: dict[str, Any], runs: Path) -> Path:
    """The run folder of one variant."""
    return runs / study["name"] / slug(variant["name"])


def train_variant(study: dict[str, Any], variant: dict[str, Any], runs: Path) -> tuple[Path, float | None]:
    """Train (or resume, or reuse) one variant: (model file, minutes spent training now, or None when the run
    already had the study's steps and was only reused)."""
    config = apply_changes(load_yaml(resolve_config(study["base"])), variant.get("set", {}))
    run = variant_run(study, variant, runs)
    before = read_latest(run) if run.exists() else None
    start = time.perf_counter()
    model = train_to_steps(experiment_from_dict(config), run, study["steps"])
    if before is not None and before.step >= study["steps"]:
        return model, None
    return model, (time.perf_counter() - start) / 60


def score_variant(study: dict[str, Any], model_path: Path, run: Path, videos: int, frames: int) -> dict[str, float]:
    """The study's metrics of one trained variant (and ``copy_l1``): reconstruction, plus the prediction
    protocol with ``prediction: true``."""
    from quality import with_predictor  # a sibling script of this one

    model = load(model_path, device="cpu").model
    data = f"procedural:{study['data']}:videos={videos},frames={frames}"
    metrics = [m for m in study["metrics"] if m not in PREDICTION_METRICS]
    summary = evaluate(model, data, "reconstruction", metrics, batch_size=16).summary
    scores = {key: summary[key] for key in (*metrics, "copy_l1")}
    if study.get("prediction"):
        predictor = with_predictor(model, run, {})
        prediction = evaluate_prediction(predictor, f"procedural:{study['data']}:videos={videos},frames=32",
                                         samples=4).summary
        scores.update({key: prediction[key] for key in PREDICTION_METRICS})
    return scores


def _cell(value: float | None, key: str) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if key in ("akd", "psnr", "diversity") else f"{value:.3f}" if key != "l1" else f"{value:.4f}"


def markdown(study: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """One study's table (ours next to the paper's) as Markdown lines."""
    metrics = study["metrics"]
    ours = " | ".join(METRIC_TITLES[m] for m in metrics)
    paper = " | ".join(f"{METRIC_TITLES[m]} (paper)" for m in metrics)
    lines = [f"### {study['title']}", "", f"| variant | {ours} | {paper} |",
             "|---|" + "---|" * (2 * len(metrics))]
    for variant in study["variants"]:
        scores = result.get("variants", {}).get(variant["name"])
        if scores is None:
            continue
        mine = " | ".join(_cell(scores[m], m) for m in metrics)
        theirs = " | ".join(_cell(v, m) for v, m in zip(variant.get("paper", [None] * len(metrics)), metrics,
                                                          strict=True))
        lines.append(f"| {variant['name']} | {mine} | {theirs} |")
    copy_l1 = next(iter(result.get("variants", {}).values()), {}).get("copy_l1")
    lines += ["", f"Ours: procedural {study['data']}, each variant trained from scratch for {study['steps']} steps "
              f"(config {study['base']}); reconstruction of {result['videos']} held-out test videos x "
              f"{result['frames']} frames (copy-the-source L1 {_cell(copy_l1, 'l1')})"
              + ("; action accuracy and diversity from the prediction protocol (4 samples x 32 frames per test "
                 "video)" if study.get("prediction") else "")
              + f"; {result['machine']}. Paper columns: {study['paper_title']}, its full training.", ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", nargs="+", default=None, help="study names [default: all]")
    parser.add_argument("--config", type=Path, default=ROOT / "benchmarks" / "ablations.yaml")
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "ablations")
    parser.add_argument("--variants", nargs="+", default=None,
                        help="only these variants (by name); their scores are merged into the stored study")
    args = parse_with_threads(parser, ROOT / "benchmarks" / "results" / "ablations.json")
    studies = yaml.safe_load(args.config.read_text())["studies"]
    known = {variant["name"] for study in studies for variant in study["variants"]}
    unknown = sorted(set(args.variants or ()) - known)
    if unknown:
        parser.error(f"unknown variants {unknown}; the studies have {sorted(known)}")
    for study in studies:
        if args.studies is not None and study["name"] not in args.studies:
            continue
        result = {"videos": args.videos, "frames": args.frames, "steps": study["steps"], "variants": {},
                  "minutes": {}, "machine": describe_machine()}
        for variant in study["variants"]:
            if args.variants is not None and variant["name"] not in args.variants:
                continue
            model_path, minutes = train_variant(study, variant, args.runs)
            result["variants"][variant["name"]] = score_variant(study, model_path,
                                                                variant_run(study, variant, args.runs),
                                                                args.videos, args.frames)
            if minutes is not None:  # a reused run's stored minutes stand
                result["minutes"][variant["name"]] = minutes
            print(f"{study['name']} / {variant['name']}: {result['variants'][variant['name']]}")
            store(args.json, study["name"], result, merge=args.variants is not None)
        print("\n".join(markdown(study, result)))


def store(path: Path, name: str, result: dict[str, Any], merge: bool) -> None:
    """Write one study's result into the JSON at ``path`` (re-read now, so processes sharing it keep each other's
    variants), atomically; called after every variant, so a stopped run keeps what it scored. With ``merge`` the
    variants join the stored ones, otherwise they replace them; a variant's stored training minutes stay unless
    ``result`` has new ones."""
    stored = json.loads(path.read_text()) if path.is_file() else {}
    previous = stored.get(name, {})
    variants = {**previous.get("variants", {}), **result["variants"]} if merge else result["variants"]
    minutes = {key: value for key, value in {**previous.get("minutes", {}), **result["minutes"]}.items()
               if key in variants}
    stored[name] = {**result, "variants": variants, "minutes": minutes}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(stored, indent=2) + "\n")


if __name__ == "__main__":
    main()
