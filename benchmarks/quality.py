"""The results table: every model family, trained (or loaded) at a stated CPU budget, scored on the procedural
sets with the papers' metrics and ours, written to docs/results.md.

Models are listed in ``benchmarks/quality.yaml``: each entry names a family row and, per procedural set, either a
checkpoint (a bundled model name or a model file) or a config to train for ``steps`` steps (run folders under
``--runs`` are reused). A set may add ``prediction: {epochs: N}`` for image-to-video models: the keypoint
predictor is trained on the model's training videos (once; kept in the run folder) and the prediction protocol is
scored (KPVP: ``prediction: {}`` runs its stages 2 and 3). Adding a family means adding an entry, not code.

Usage:
    python benchmarks/quality.py [--models benchmarks/quality.yaml] [--sets faces puppets] [--videos 16]
        [--frames 64] [--runs runs/quality] [--json benchmarks/results/quality.json] [--markdown docs/results.md]
        [--only NAME[/SET] ...]   (score these, keep the other stored results)
        [--markdown-only]         (rewrite docs/results.md from the stored JSON)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
import yaml
from machine import describe_machine, parse_with_threads

from motiontransfer.api import load
from motiontransfer.checkpoint import save_model_file
from motiontransfer.evaluation.runner import evaluate, evaluate_prediction
from motiontransfer.training import train_to_steps

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("l1", "psnr", "ssim", "akd", "mkr", "aed")


def model_path(entry: dict[str, Any], family: str, runs: Path) -> tuple[str, str]:
    """(checkpoint to load, budget description) for ``entry`` on the procedural set ``family``."""
    spec = entry["sets"][family]
    if "checkpoint" in spec:
        return spec["checkpoint"], spec.get("budget", "bundled model")
    model = train_to_steps(spec["config"], runs / entry["name"] / family, spec["steps"])
    return str(model), spec.get("budget", f"{spec['config']}, {spec['steps']} steps")


def with_predictor(model: Any, run: Path, spec: dict[str, Any]) -> Any:
    """The model with its image-to-video part, trained once and kept in the run folder ``run``.

    Monkey-Net: the keypoint predictor, trained on its own training videos' keypoints for ``spec['epochs']``
    epochs (``run/predictor.mt``). KPVP: stages 2 and 3 on the run's latest checkpoint (``run/kpvp.mt``; the motion
    generator's steps are the config's ``motion_params.num_steps``).
    """
    if model.family == "kpvp":
        from motiontransfer.families.kpvp.stages import MODEL_NAME
        from motiontransfer.training.stages import run_stages

        if not (run / MODEL_NAME).is_file():
            run_stages(resume=run, stages=[2, 3], device="cpu")
        return load(run / MODEL_NAME, device="cpu").model
    from motiontransfer.families.monkeynet.predictor import fit_keypoint_predictor

    path = run / "predictor.mt"
    if path.is_file():
        return load(path, device="cpu").model
    fit_keypoint_predictor(model, epochs=spec["epochs"])
    save_model_file(path, model.to_model_file())
    return model


def prediction_lines(results: dict[str, Any]) -> list[str]:
    """The prediction protocol's table (image-to-video), as Markdown."""
    rows = [(name, family, r["prediction"]) for name, per_set in results.items() for family, r in per_set.items()
            if "prediction" in r]
    if not rows:
        return []
    lines = ["## Image-to-video (prediction protocol)", "",
             "| set | model | action accuracy | diversity (px) | error best / mean (px) |", "|---|---|---|---|---|"]
    for family in dict.fromkeys(family for _, family, _ in rows):
        per_set = [(name, s) for name, f, s in rows if f == family]
        for name, s in per_set:
            lines.append(f"| {family} | {name} | {s['action_accuracy']:.3f} | {s['diversity']:.2f} | "
                         f"{s['error_best']:.2f} / {s['error_mean']:.2f} |")
        s = per_set[0][1]  # every model is scored on the same test videos, so the baselines are shared
        lines.append(f"| {family} | ground truth | {s['truth_action_accuracy']:.3f} | - | "
                     f"{s['truth_error_best']:.2f} / {s['truth_error_mean']:.2f} |")
        lines.append(f"| {family} | still first frame | {s['still_action_accuracy']:.3f} | - | "
                     f"{s['still_error_best']:.2f} / {s['still_error_mean']:.2f} |")
    return [*lines, "", "From the first frame of each test video, 4 samples of 32 frames; keypoints by the bundled "
            "regressor, actions by the bundled classifier trained on ground-truth sequences (docs/evaluation.md). "
            "Monkey-Net's predictor is deterministic (diversity 0); KPVP draws z per sample and is conditioned on the "
            "test video's action.", ""]


def row(name: str, summary: dict[str, float], prefix: str = "") -> str:
    """One Markdown table row: L1, PSNR, SSIM, (AKD, MKR), AED."""
    def value(key: str, digits: int = 4) -> str:
        number = summary.get(prefix + key)
        return "n/a" if number is None or number != number else f"{number:.{digits}f}"

    return (f"| {name} | {value('l1')} | {value('psnr', 2)} | {value('ssim', 3)} | "
            f"({value('akd', 2)}, {value('mkr', 3)}) | {value('aed', 3)} |")


def evaluator_lines(path: Path) -> list[str]:
    """The evaluators' own accuracy on held-out evaluator identities (from benchmarks/evaluators.py), as Markdown."""
    if not path.is_file():
        return []
    scores = json.loads(path.read_text())

    def cell(key: str, field: str, digits: int = 3) -> str:
        value = scores.get(key, {}).get(field)
        return "n/a" if value is None else f"{value:.{digits}f}"

    lines = ["## The evaluators behind AKD, MKR, AED and action accuracy", "",
             "| set | keypoint error (px, mean / median) | visibility accuracy | identity verification accuracy | "
             "action accuracy (GT sequences) |", "|---|---|---|---|---|"]
    for family in ("faces", "puppets"):
        lines.append(f"| {family} | {cell(f'keypoints-{family}', 'pixel_error', 2)} / "
                     f"{cell(f'keypoints-{family}', 'pixel_error_median', 2)} | "
                     f"{cell(f'keypoints-{family}', 'visibility_accuracy')} | "
                     f"{cell(f'identity-{family}', 'accuracy')} | {cell(f'actions-{family}', 'accuracy')} |")
    return [*lines, "", "Held-out evaluator identities (seed 90210, disjoint from every animation model's data), "
            "64 px; `python benchmarks/evaluators.py` (numbers in `benchmarks/results/evaluators.json`).", ""]


def ablation_lines(path: Path) -> list[str]:
    """The ablation studies' tables (from benchmarks/ablations.py) next to the papers', as Markdown."""
    if not path.is_file():
        return []
    from ablations import markdown as study_table  # a sibling script of this one

    stored = json.loads(path.read_text())
    studies = yaml.safe_load((ROOT / "benchmarks" / "ablations.yaml").read_text())["studies"]
    lines = ["## Ablations", ""]
    for study in studies:
        if study["name"] in stored:
            lines += study_table(study, stored[study["name"]])
    return [*lines, "`python benchmarks/ablations.py` (numbers in `benchmarks/results/ablations.json`).", ""]


def markdown(results: dict[str, Any], settings: dict[str, Any]) -> str:
    """docs/results.md."""
    lines = ["# Results on the procedural sets", ""]
    if settings.get("notes"):
        lines += [settings["notes"], ""]
    lines += ["Written by `python benchmarks/quality.py`; numbers in `benchmarks/results/quality.json`. Test",
              "identities never appear in any model's training data. L1 on the [0, 1] scale (lower is better); PSNR",
              "in dB and SSIM (higher is better); AKD in pixels and MKR as a fraction, from the project's procedural",
              "keypoint regressor (the papers' \"pretrained detector\"); AED is the distance between the project's",
              "procedural identity embeddings (unit vectors) of generated and ground-truth frames. See",
              "docs/evaluation.md.", ""]
    for protocol, title in (("reconstruction", "Reconstruction (source = first frame, driving = the same video)"),
                            ("cross", "Cross-identity transfer (A driven by B, against the ground truth of A "
                                      "performing B's motion)")):
        for family in settings["sets"]:
            lines += [f"## {title}: {family}", "", "| model | L1 | PSNR | SSIM | (AKD, MKR) | AED |",
                      "|---|---|---|---|---|---|"]
            copy_summary = None
            for name, per_set in results.items():
                if family in per_set:
                    summary = per_set[family][protocol]
                    lines.append(row(name, summary))
                    copy_summary = copy_summary or summary
            if copy_summary is not None:
                lines.append(row("copy the source frame", copy_summary, "copy_"))
            lines.append("")
    lines += prediction_lines(results)
    lines += ablation_lines(ROOT / "benchmarks" / "results" / "ablations.json")
    lines += evaluator_lines(ROOT / "benchmarks" / "results" / "evaluators.json")
    lines += ["## Budgets and settings", ""]
    for name, per_set in results.items():
        for family, result in per_set.items():
            lines.append(f"- {name} on {family}: {result['budget']}")
    lines += [f"- Evaluation: {settings['videos']} test videos x {settings['frames']} frames per set (cross: pairs "
              f"of them), procedural spec seed 0, test split; {settings['machine']}, torch {settings['torch']}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=ROOT / "benchmarks" / "quality.yaml")
    parser.add_argument("--sets", nargs="+", default=["faces", "puppets"], choices=["faces", "puppets"])
    parser.add_argument("--videos", type=int, default=16, help="test videos per set")
    parser.add_argument("--frames", type=int, default=64, help="frames per test video")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "quality")
    parser.add_argument("--markdown", type=Path, default=ROOT / "docs" / "results.md")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME[/SET]",
                        help="score only these models (or model/set pairs) and keep the others' stored results")
    parser.add_argument("--markdown-only", action="store_true",
                        help="rewrite the Markdown from the stored JSON (notes and budgets from --models), no scoring")
    args = parse_with_threads(parser, ROOT / "benchmarks" / "results" / "quality.json")
    document = yaml.safe_load(args.models.read_text())
    if args.markdown_only:
        stored = json.loads(args.json.read_text())
        settings, results = stored["settings"], stored["results"]
        settings["notes"] = document.get("notes", "")
        for entry in document["models"]:
            for family, spec in entry["sets"].items():
                if "budget" in spec and family in results.get(entry["name"], {}):
                    results[entry["name"]][family]["budget"] = spec["budget"]
        args.json.write_text(json.dumps({"settings": settings, "results": results}, indent=2) + "\n")
        args.markdown.write_text(markdown(results, settings))
        print(f"wrote {args.markdown}")
        return
    entries = document["models"]
    results: dict[str, Any] = {}
    if args.only is not None:
        results = json.loads(args.json.read_text())["results"]
    for entry in entries:
        for family in args.sets:
            if family not in entry["sets"]:
                continue
            if args.only is not None and not {entry["name"], f"{entry['name']}/{family}"} & set(args.only):
                if family in results.get(entry["name"], {}):
                    results[entry["name"]][family]["budget"] = entry["sets"][family].get("budget", "")
                continue
            checkpoint, budget = model_path(entry, family, args.runs)
            model = load(checkpoint, device="cpu").model
            data = f"procedural:{family}:videos={args.videos},frames={args.frames}"
            scores = {protocol: evaluate(model, data, protocol, METRICS, batch_size=16).summary
                      for protocol in ("reconstruction", "cross")}
            results.setdefault(entry["name"], {})[family] = {**scores, "budget": budget}
            prediction = entry["sets"][family].get("prediction")
            if prediction is not None:
                predictor = with_predictor(model, args.runs / entry["name"] / family, prediction)
                results[entry["name"]][family]["prediction"] = evaluate_prediction(
                    predictor, f"procedural:{family}:videos={args.videos},frames=32", samples=4).summary
            print(f"{entry['name']} {family}: " + json.dumps({p: {k: round(v, 4) for k, v in s.items()}
                                                           for p, s in scores.items()}))
    settings = {"notes": document.get("notes", ""), "sets": args.sets, "videos": args.videos,
                "frames": args.frames, "torch": torch.__version__,
                "machine": describe_machine()}
    if args.only is not None:  # keep the stored settings (they describe every row); the evaluation is the same
        settings = {**json.loads(args.json.read_text())["settings"], "notes": settings["notes"]}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"settings": settings, "results": results}, indent=2) + "\n")
    args.markdown.write_text(markdown(results, settings))
    print(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
