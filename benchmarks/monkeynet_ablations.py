"""Monkey-Net's ablation study (the paper's Table 2) on procedural puppets, at a stated CPU budget.

Each variant is ``monkeynet-synthetic-puppets-64`` with one switch flipped, trained from scratch for ``--steps``
steps (run folders under ``--runs`` are reused or resumed), then scored on the reconstruction protocol of held-out
test identities with L1, (AKD, MKR) and AED, as the paper's table:

* No F: no dense motion network (``generator_params.dense_motion_params: null``): unwarped features;
* No F_residual: part masks only (``use_correction: false``);
* No F_coarse: residual flow only (``use_mask: false``);
* No Sigma_k: a fixed isotropic variance 0.01 instead of the detected covariances (``kp_variance: 0.01``);
* No x: the motion network does not see the source image (``use_deformed_source_image: false``);
* Full: the config as is.

The table goes to ``benchmarks/results/monkeynet_ablations.json``; ``benchmarks/quality.py`` puts it in
docs/results.md next to the paper's numbers.

Usage:
    python benchmarks/monkeynet_ablations.py [--steps 400] [--variants full no-f ...] [--videos 16] [--frames 32]
        [--runs runs/monkeynet-ablations] [--json benchmarks/results/monkeynet_ablations.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from motiontransfer.api import load
from motiontransfer.config import load_yaml
from motiontransfer.evaluation.runner import evaluate
from motiontransfer.experiment import experiment_from_dict, resolve_config
from motiontransfer.training import train
from motiontransfer.training.checkpoints import read_latest

ROOT = Path(__file__).resolve().parents[1]
BASE_CONFIG = "monkeynet-synthetic-puppets-64"
METRICS = ("l1", "akd", "mkr", "aed")
PAPER_TABLE_2 = {  # Tai-Chi, 64 x 64: L1, (AKD, MKR), AED
    "no-f": (0.057, 3.11, 0.238, 0.24), "no-f-residual": (0.051, 2.81, 0.180, 0.22),
    "no-f-coarse": (0.052, 2.75, 0.197, 0.22), "no-sigma": (0.054, 2.86, 0.206, 0.23),
    "no-x": (0.051, 2.71, 0.193, 0.21), "full": (0.050, 2.53, 0.174, 0.21),
}
TITLES = {"no-f": "No F", "no-f-residual": "No F_residual", "no-f-coarse": "No F_coarse",
          "no-sigma": "No Sigma_k", "no-x": "No x", "full": "Full"}


def _dense(config: dict[str, Any]) -> dict[str, Any]:
    return config["model_params"]["generator_params"]["dense_motion_params"]


def _no_flow(config: dict[str, Any]) -> None:
    config["model_params"]["generator_params"]["dense_motion_params"] = None


def _no_residual(config: dict[str, Any]) -> None:
    _dense(config)["use_correction"] = False


def _no_coarse(config: dict[str, Any]) -> None:
    _dense(config)["use_mask"] = False


def _no_covariance(config: dict[str, Any]) -> None:
    config["model_params"]["common_params"]["kp_variance"] = 0.01
    config["model_params"]["kp_detector_params"]["clip_variance"] = None


def _no_source(config: dict[str, Any]) -> None:
    _dense(config)["mask_embedding_params"]["use_deformed_source_image"] = False


VARIANTS: dict[str, Callable[[dict[str, Any]], None] | None] = {
    "no-f": _no_flow, "no-f-residual": _no_residual, "no-f-coarse": _no_coarse, "no-sigma": _no_covariance,
    "no-x": _no_source, "full": None,
}


def variant_config(name: str) -> dict[str, Any]:
    """The base config as plain data with variant ``name``'s switch applied."""
    config = copy.deepcopy(load_yaml(resolve_config(BASE_CONFIG)))
    change = VARIANTS[name]
    if change is not None:
        change(config)
    return config


def train_variant(name: str, steps: int, runs: Path) -> tuple[Path, float]:
    """Train (or resume, or reuse) variant ``name`` to ``steps`` steps: (model file, minutes spent now)."""
    run = runs / name
    record = read_latest(run) if run.exists() else None
    start = time.perf_counter()
    if record is None:
        train(experiment_from_dict(variant_config(name)), out_dir=run, steps=steps)
    elif record.step < steps:
        train(resume=run, steps=steps)
    record = read_latest(run)
    assert record is not None
    return record.model, (time.perf_counter() - start) / 60


def markdown(results: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """The ablation table next to the paper's Table 2, as Markdown lines."""
    lines = ["| variant | L1 | (AKD, MKR) | AED | paper (Tai-Chi): L1 | (AKD, MKR) | AED |",
             "|---|---|---|---|---|---|---|"]
    for name, title in TITLES.items():
        if name not in results:
            continue
        s = results[name]["scores"]
        p = PAPER_TABLE_2[name]
        lines.append(f"| {title} | {s['l1']:.4f} | ({s['akd']:.2f}, {s['mkr']:.3f}) | {s['aed']:.3f} | "
                     f"{p[0]:.3f} | ({p[1]:.2f}, {p[2]:.3f}) | {p[3]:.2f} |")
    lines += ["", f"Ours: procedural puppets, 64 px, each variant trained from scratch for {settings['steps']} steps "
              f"(batch 8) on {settings['machine']}; reconstruction of {settings['videos']} held-out test videos x "
              f"{settings['frames']} frames. Paper: Tai-Chi, 64 px, its full training schedule."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="training steps per variant (the budget)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "monkeynet-ablations")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "monkeynet_ablations.json")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    previous = json.loads(args.json.read_text()) if args.json.is_file() else {}
    results: dict[str, Any] = previous.get("results", {}) if previous.get("settings", {}).get("steps") == args.steps \
        else {}
    data = f"procedural:puppets:videos={args.videos},frames={args.frames}"
    for name in args.variants:
        model_path, minutes = train_variant(name, args.steps, args.runs)
        model = load(model_path, device="cpu").model
        scores = evaluate(model, data, "reconstruction", METRICS, batch_size=16).summary
        results[name] = {"scores": {key: scores[key] for key in (*METRICS, "copy_l1")},
                         "train_minutes": minutes or results.get(name, {}).get("train_minutes", 0.0)}
        print(f"{TITLES[name]}: " + json.dumps({k: round(v, 4) for k, v in results[name]["scores"].items()}))
    settings = {"steps": args.steps, "videos": args.videos, "frames": args.frames, "torch": torch.__version__,
                "machine": f"{platform.machine()}, {torch.get_num_threads()} threads"}
    print("\n".join(markdown(results, settings)))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"settings": settings, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
