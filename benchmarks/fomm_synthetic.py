"""FOMM learning on the procedural sets: train the small CPU configs, then measure on held-out identities.

For each family (faces, puppets) this trains ``synthetic-<family>-64`` for a fixed number of steps (the budget),
then reports on test identities, which no training video shows:

* reconstruction (the papers' proxy task: source = first frame, driving = the same video): L1, PSNR and AKD;
* cross-identity transfer (ours): identity A driven by identity B's clip (relative motion), against the
  ground-truth render of A performing B's motion: L1, PSNR and AKD;

each next to the "copy the source frame" baseline, scored by the library's evaluation runner (what
``motiontransfer evaluate --num-videos N`` prints), on the default test set and on its ``motion=large`` variant;
plus the warp-only L1, frame 0's L1 (source = driving) and the learned keypoints' spread next to the ground
truth's. With ``--export`` the trained models (keypoint detector and generator, float16) become the package's
bundled models and an animation GIF is written to docs/images.

Usage:
    python benchmarks/fomm_synthetic.py [--families faces puppets] [--steps 1500] [--epochs N]
        [--runs runs/fomm-synthetic] [--eval-videos 24] [--json benchmarks/results/fomm_synthetic.json]
        [--markdown docs/fomm-synthetic.md] [--export]
A run folder that already holds a checkpoint is resumed (or reused when it has reached ``--steps``).

``--epochs N`` trains a longer (or shorter) schedule of the same recipe: N epochs, the learning rates divided by 10
at 60% and 90% of them (the official configs' proportions), and a budget of N epochs' steps unless ``--steps`` is
given. The 60-epoch results (4x the bundled budget) were written with
``--epochs 60 --runs runs/fomm-60-epochs --json benchmarks/results/fomm_synthetic_60_epochs.json
--markdown docs/fomm-synthetic-60-epochs.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from machine import describe_machine, parse_with_threads
from motion_size import spread as frame_spread

from motiontransfer.api import Animator, load
from motiontransfer.checkpoint import ModelFile, load_model_file, save_model_file
from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec
from motiontransfer.demo import run_demo
from motiontransfer.evaluation.metrics import l1_error, psnr
from motiontransfer.evaluation.runner import evaluate
from motiontransfer.experiment import load_experiment
from motiontransfer.families.fomm.config import FommExperiment
from motiontransfer.fileio import atomic_write_text
from motiontransfer.inference import pipeline
from motiontransfer.pretrained import BUNDLED_MODELS, weights_dir
from motiontransfer.training import train_to_steps
from motiontransfer.training.checkpoints import read_latest
from motiontransfer.video.io import VideoReader, VideoWriter

ROOT = Path(__file__).resolve().parents[1]
INFERENCE_NETWORKS = ("kp_detector", "generator")
DEFAULT_COMMAND = "python benchmarks/fomm_synthetic.py --export --markdown docs/fomm-synthetic.md"
DEFAULT_JSON = "benchmarks/results/fomm_synthetic.json"
TARGET_L1_REDUCTION = 0.4
"""The goal: FOMM's L1 at least 40% below the copy-the-source baseline's."""
TARGET_FRAME0_L1 = 0.008
"""The goal for frame 0 of reconstruction (source = driving): L1 below this."""
TARGET_SPREAD_RATIO = 0.5
"""The goal: learned keypoints spread at least half as far from their centroid as the ground-truth keypoints."""
EVAL_METRICS = ("l1", "psnr", "akd")
MOTIONS = ("default", "large")


@dataclass
class Scores:
    """Mean per-frame metrics of a model and of the copy-the-source baseline. ``warp_l1``: the L1 of the source
    warped by the model's dense motion alone (the generator's ``deformed`` output), which separates the error of the
    motion from the error of the generator's synthesis."""

    l1: float
    psnr: float
    copy_l1: float
    copy_psnr: float
    warp_l1: float
    frames: int


def frames_of(source: ProceduralSource, index: int) -> Iterator[torch.Tensor]:
    """Video ``index`` of ``source`` as (3, H, W) float tensors."""
    return (f.tensor() for f in source.frames(index))


def score(items: Iterator[tuple[torch.Tensor, ...]]) -> Scores:
    """Average metrics over (prediction, target, source, warped source) tuples."""
    rows = [(l1_error(p, t), psnr(p, t), l1_error(s, t), psnr(s, t), l1_error(w, t)) for p, t, s, w in items]
    mean = np.mean(np.asarray(rows), axis=0)
    return Scores(*map(float, mean), frames=len(rows))


def reconstruction_triples(model: Animator, test: ProceduralSource) -> Iterator[tuple[torch.Tensor, ...]]:
    """(prediction, frame, first frame, warped first frame) for every frame of every test video."""
    for index in range(len(test)):
        first = next(frames_of(test, index))
        for item in pipeline.reconstruct(model.model, frames_of(test, index), batch_size=16):
            yield item["prediction"], item["driving"], first, item["deformed"]


def transfer_triples(model: Animator, test: ProceduralSource) -> Iterator[tuple[torch.Tensor, ...]]:
    """(prediction, ground truth, source, warped source) for identity 2i driven by video 2i + 1, relative
    motion."""
    for a in range(0, len(test) - 1, 2):
        source = next(frames_of(test, a))
        truth = (f.tensor() for f in test.transfer_frames(a, a + 1))
        items = pipeline.animate(model.model, source, frames_of(test, a + 1), mode="relative", batch_size=16)
        for item, target in zip(items, truth, strict=True):
            yield item["prediction"], target, source, item["deformed"]


def self_reconstruction_l1(model: Animator, test: ProceduralSource) -> float:
    """Mean L1 of the first frame of each test video driven by itself: identity motion, so an exact identity warp
    with our corner policy, and what is left is the generator's own synthesis error."""
    errors = [next(pipeline.reconstruct(model.model, iter([next(frames_of(test, index))])))["l1"]
              for index in range(len(test))]
    return float(np.mean(errors))


@torch.no_grad()
def keypoint_spread(model: Animator, test: ProceduralSource) -> float:
    """Mean distance (pixels) of the model's keypoints from their centroid on the first frame of each test video."""
    frames = torch.stack([next(frames_of(test, index)) for index in range(len(test))])
    keypoints = model.model.kp_detector(frames.to(next(model.model.parameters()).device))["value"]
    spread = (keypoints - keypoints.mean(dim=1, keepdim=True)).norm(dim=-1).mean()
    return float(spread) * frames.shape[-1] / 2


def ground_truth_spread(test: ProceduralSource) -> float:
    """Mean distance (pixels) of the ground-truth keypoints (visible ones) from their centroid on the first frame of
    each test video: the scale :func:`keypoint_spread` is compared with."""
    spreads = []
    for index in range(len(test)):
        frame = test.frame(index, 0)
        spreads.append(frame_spread(frame.keypoints[frame.visibility > 0]))
    return float(np.mean(spreads))


def evaluation_scores(model: Animator, family: str, videos: int, frames: int, motion: str) -> dict[str, dict]:
    """Reconstruction and cross-identity scores of ``model`` on ``videos`` test videos (``motion`` set), as
    ``motiontransfer evaluate`` computes them: model and copy-source L1, PSNR and AKD per protocol, and for
    reconstruction also ``frame0_l1``, the L1 of frame 0 (source = driving)."""
    data = f"procedural:{family}:frames={frames}" + ("" if motion == "default" else f",motion={motion}")
    scores: dict[str, dict] = {}
    for protocol in ("reconstruction", "cross"):
        report = evaluate(model.model, data, protocol, names=EVAL_METRICS, num_videos=videos, batch_size=16)
        keys = [key for name in EVAL_METRICS for key in (name, f"copy_{name}")]
        scores[protocol] = {key: report.summary[key] for key in keys}
        if protocol == "reconstruction":
            scores[protocol]["frame0_l1"] = float(np.mean([r["l1"] for r in report.records if r["index"] == 0]))
    return scores


def with_epochs(experiment: FommExperiment, epochs: int) -> FommExperiment:
    """``experiment`` trained for ``epochs`` epochs, its learning rates divided by 10 at 60% and 90% of them (the
    official configs' proportions, e.g. vox-256's 100 epochs with milestones 60 and 90)."""
    milestones = sorted({max(1, round(epochs * 0.6)), max(1, round(epochs * 0.9))})
    params = dataclasses.replace(experiment.train_params, num_epochs=epochs, epoch_milestones=milestones)
    return dataclasses.replace(experiment, train_params=params)


def steps_per_epoch(experiment: FommExperiment) -> int:
    """Optimisation steps in one epoch of a procedural-data config: videos x num_repeats // batch_size."""
    params = experiment.train_params
    videos = ProceduralSpec.parse(experiment.dataset_params.root_dir).videos
    return videos * params.num_repeats // params.batch_size


def logged_training_minutes(run: Path) -> float:
    """Wall time of a run from its TensorBoard scalars: the sum of the logged seconds per step times the logging
    interval. It covers every session of a resumed run, not only the one this script ran."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    scalars = events.Scalars("time/seconds_per_step")
    total, previous = 0.0, 0
    for event in scalars:
        total += event.value * (event.step - previous)
        previous = event.step
    return total / 60


def export(model_path: Path, family: str) -> Path:
    """Write the inference networks of ``model_path`` as the bundled model of ``family`` (float16)."""
    name = f"fomm-{family}"
    model = load_model_file(model_path)
    networks = {key: model.networks[key] for key in INFERENCE_NETWORKS}
    metadata = {**model.metadata, "bundled_name": name, "trained_on": f"procedural:{family}"}
    target = weights_dir() / BUNDLED_MODELS[name][0]
    return save_model_file(target, ModelFile(model.family, networks, metadata), float_dtype=torch.float16)


def write_gif(family: str, out: Path, frames: int = 48) -> Path:
    """The demo's visualisation (source | driving | occlusion | prediction | truth) as a GIF, 2x size."""
    with tempfile.TemporaryDirectory() as folder:
        result = run_demo(folder, f"fomm-{family}", frames=frames, seed=1, display_scale=2)
        with VideoReader(result.visualization) as reader, VideoWriter(out, fps=12.5) as writer:
            for index, frame in enumerate(reader):
                if index % 2 == 0:
                    writer.write(frame)
    return out


def per_family(results: dict[str, dict], key: str, value_format: str) -> str:
    """``"faces <value>, puppets <value>"`` for the families whose results hold ``key`` ('' when none does)."""
    return ", ".join(f"{family} {value_format.format(r[key])}" for family, r in results.items() if key in r)


def schedule(result: dict) -> str:
    """`` (60 epochs, lr / 10 at epochs 36 and 54)`` for a result that records its schedule, else ''."""
    if "epochs" not in result:
        return ""
    milestones = " and ".join(str(epoch) for epoch in result["epoch_milestones"])
    return f" ({result['epochs']} epochs, lr / 10 at epochs {milestones})"


def of_schedule(result: dict) -> str:
    """`` of 8000`` for a result scored before the end of its schedule, else ''."""
    planned = result.get("schedule_steps")
    return f" of {planned}" if planned is not None and result["steps"] < planned else ""


def keypoint_counts(results: dict[str, dict]) -> str:
    """``"10 keypoints"``, or ``"10 (faces) and 15 (puppets) keypoints"`` when the families differ (results without
    a recorded count are from 10-keypoint models)."""
    counts = {family: r.get("num_kp", 10) for family, r in results.items()}
    if len(set(counts.values())) <= 1:
        return f"{next(iter(counts.values()), 10)} keypoints"
    return " and ".join(f"{count} ({family})" for family, count in counts.items()) + " keypoints"


def recipe_lines(results: dict[str, dict]) -> list[str]:
    """What the configs are: parameter counts (when recorded) and the options of ours they use."""
    counts = [f"{family} {r['parameters']['kp_detector'] / 1e6:.2f}M + {r['parameters']['generator'] / 1e6:.2f}M"
              for family, r in results.items() if "parameters" in r]
    sizes = f" ({', '.join(counts)} parameters: keypoint detector + generator with dense motion)" if counts else ""
    return [f"The configs `synthetic-faces-64` and `synthetic-puppets-64`{sizes} have FOMM's networks at 64 px with",
            f"{keypoint_counts(results)} and Jacobians, no GAN and a pixel-L1 pyramid in place of VGG (whose",
            "weights cannot be downloaded here), plus two generator options of ours after TPSMM, off in every official",
            "config: the prediction blends the synthesis with the warped source by the occlusion map (`image_blend`),",
            "and the encoder features are warped and masked at every resolution (`multi_scale_occlusion`); a keypoint",
            "separation prior keeps the keypoints apart (docs/training.md). They are trained from scratch on the CPU,",
            "then evaluated on test identities that no training video shows."]


def evaluation_table(results: dict[str, dict]) -> list[str]:
    """The table of ``motiontransfer evaluate``'s scores on the default and the ``motion=large`` test sets."""
    rows = [(family, motion, protocol, scores) for family, r in results.items()
            for motion, by_protocol in r.get("evaluate", {}).items() for protocol, scores in by_protocol.items()]
    if not rows:
        return []
    lines = ["As `motiontransfer evaluate --num-videos N` scores them (AKD: pixels, from the bundled procedural "
             "keypoint regressor); `motion=large` is the same test identities with larger motions "
             "(docs/datasets.md), which the models never trained on:", "",
             "| set | test motion | protocol | L1 | copy-source L1 | L1 reduction | AKD | copy-source AKD |",
             "|---|---|---|---|---|---|---|---|"]
    for family, motion, protocol, s in rows:
        lines.append(f"| {family} | {motion} | {protocol} | {s['l1']:.4f} | {s['copy_l1']:.4f} | "
                     f"{1 - s['l1'] / s['copy_l1']:.0%} | {s['akd']:.2f} | {s['copy_akd']:.2f} |")
    return [*lines, ""]


def target_lines(results: dict[str, dict]) -> list[str]:
    """Each goal of the bundled models, met or not, from the default test set's scores."""
    checks: list[tuple[str, bool]] = []
    for family, r in results.items():
        scored = r.get("evaluate", {}).get("default")
        if scored is None:
            continue
        for protocol, s in scored.items():
            gain = 1 - s["l1"] / s["copy_l1"]
            checks.append((f"{family} {protocol}: L1 {gain:.0%} below copy-source (goal {TARGET_L1_REDUCTION:.0%})",
                           gain >= TARGET_L1_REDUCTION))
            checks.append((f"{family} {protocol}: AKD {s['akd']:.2f} vs copy-source {s['copy_akd']:.2f}",
                           s["akd"] < s["copy_akd"]))
        frame0 = scored["reconstruction"]["frame0_l1"]
        checks.append((f"{family}: frame 0 L1 {frame0:.4f} (goal below {TARGET_FRAME0_L1})", frame0 < TARGET_FRAME0_L1))
        if "ground_truth_spread_px" in r:
            ratio = r["keypoint_spread_px"] / r["ground_truth_spread_px"]
            checks.append((f"{family}: keypoint spread {r['keypoint_spread_px']:.1f} px, {ratio:.0%} of the ground "
                           f"truth's {r['ground_truth_spread_px']:.1f} px (goal {TARGET_SPREAD_RATIO:.0%})",
                           ratio >= TARGET_SPREAD_RATIO))
    if not checks:
        return []
    return ["Goals (default test set):", "", *(f"* {'met' if ok else '**not met**'}: {text}" for text, ok in checks),
            ""]


def markdown(results: dict[str, dict], settings: dict) -> str:
    """The results page (docs/fomm-synthetic.md) as Markdown."""
    lines = [
        settings.get("title", "# FOMM on the procedural sets"),
        "",
        f"Written by `{settings.get('command', DEFAULT_COMMAND)}`; the numbers",
        f"are in `{settings.get('json', DEFAULT_JSON)}`.",
        *recipe_lines(results),
        *settings.get("about", ["The trained models are the package's bundled models `fomm-faces` and "
                                "`fomm-puppets` (float16)."]),
        "",
        "* reconstruction: the papers' proxy task; the first frame of a test video is animated by every frame of",
        "  the same video (absolute motion) and compared with that frame.",
        "* transfer (cross): identity A animated by the clip of identity B (relative motion, FOMM Sec. 3.4) and",
        "  compared with the ground-truth render of A performing B's motion, which the procedural generator provides.",
        "* copy-source: the baseline that outputs the source image unchanged.",
        "* warp only: the source warped by the model's dense motion (the generator's `deformed` output), with no",
        "  synthesis; it measures the motion alone.",
        "",
        "| set | task | FOMM L1 | copy-source L1 | L1 reduction | warp-only L1 | FOMM PSNR (dB) | "
        "copy-source PSNR (dB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for family, result in results.items():
        for task in ("reconstruction", "transfer"):
            s = result[task]
            gain = 1.0 - s["l1"] / s["copy_l1"]
            warp = f"{s['warp_l1']:.4f}" if "warp_l1" in s else "-"
            lines.append(f"| {family} | {task} | {s['l1']:.4f} | {s['copy_l1']:.4f} | {100 * gain:.0f}% | {warp} | "
                         f"{s['psnr']:.2f} | {s['copy_psnr']:.2f} |")
    budget = ", ".join(f"{f}: {r['steps']}{of_schedule(r)} steps{schedule(r)} in {r['train_minutes']:.0f} min"
                       for f, r in results.items())
    lines += ["", f"Budget: {budget} (batch 8, 64x64, {settings['machine']}, torch {settings['torch']}).",
              f"Evaluation: {settings['eval_videos']} held-out test videos of {settings['frames']} frames per set "
              "(transfer: pairs of them).", ""]
    lines += evaluation_table(results)
    lines += target_lines(results)
    if listed := per_family(results, "self_reconstruction_l1", "{:.4f}"):
        lines += [f"Frame 0 (the first frame of each test video driven by itself: identity motion, an exact identity "
                  f"warp): L1 {listed}.", ""]
    if listed := per_family(results, "keypoint_spread_px", "{:.1f} px"):
        truth = per_family(results, "ground_truth_spread_px", "{:.1f} px")
        lines += [f"Keypoint spread (mean distance of the detected keypoints from their centroid, first frames of the "
                  f"test videos, 64-px frames): {listed}" + (f"; ground-truth keypoints: {truth}" if truth else "")
                  + ". Below a few pixels the keypoints have collapsed onto one spot, and the motion model is close "
                  "to a single local affine transform.", ""]
    if settings.get("gifs", True):
        lines += [f"![FOMM on procedural {family}](images/fomm-{family}.gif)" for family in results]
        lines += ["", "Each GIF: source with keypoints | driving with keypoints | occlusion | prediction | "
                  "ground truth."]
    return "\n".join(lines) + "\n"


def page_settings_for_epochs(epochs: int, arguments: list[str], json_path: Path) -> dict:
    """The results page's title, command, JSON path and model sentence for a run with ``--epochs``."""
    shown = json_path.resolve().relative_to(ROOT) if json_path.resolve().is_relative_to(ROOT) else json_path
    return {"title": f"# FOMM on the procedural sets, {epochs} epochs",
            "command": " ".join(["python benchmarks/fomm_synthetic.py", *arguments]),
            "json": str(shown),
            "gifs": False,  # docs/images holds the bundled models' animations
            "about": [f"This page is the same recipe trained for {epochs} epochs; the bundled models and the "
                      "equal-budget comparison with the other families use the configs' 15 epochs "
                      "([fomm-synthetic.md](fomm-synthetic.md))."]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["faces", "puppets"], choices=["faces", "puppets"])
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps per family (the budget) [default: the whole schedule, the config's "
                             "epochs of 100 steps]; a run already past it is scored at its latest checkpoint")
    parser.add_argument("--epochs", type=int, default=None,
                        help="train this many epochs, lr / 10 at 60%% and 90%% of them [default: the config's]")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "fomm-synthetic", help="run folders")
    parser.add_argument("--eval-videos", type=int, default=24, help="held-out test videos per family")
    parser.add_argument("--frames", type=int, default=64, help="frames per test video")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    parser.add_argument("--export", action="store_true", help="bundle the trained models and write GIFs")
    args = parse_with_threads(parser, ROOT / DEFAULT_JSON)
    previous = json.loads(args.json.read_text()) if args.json.is_file() else {}
    results: dict[str, dict] = previous.get("results", {})
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    for family in args.families:
        experiment = load_experiment(f"synthetic-{family}-64")
        if args.epochs is not None:
            experiment = with_epochs(experiment, args.epochs)
        steps = args.steps or experiment.train_params.num_epochs * steps_per_epoch(experiment)
        model_path = train_to_steps(experiment, args.runs / family, steps)
        record = read_latest(args.runs / family)
        assert record is not None
        model = load(model_path, device="cpu")
        spec = ProceduralSpec(family, size=model.size, videos=args.eval_videos, frames=args.frames, split="test")
        test = ProceduralSource(spec)
        networks = model.model
        results[family] = {
            "parameters": {name: sum(p.numel() for p in getattr(networks, name).parameters())
                           for name in INFERENCE_NETWORKS},
            "steps": record.step,
            "num_kp": networks.experiment.model_params.common_params.num_kp,
            "schedule_steps": experiment.train_params.num_epochs * steps_per_epoch(experiment),
            "epochs": experiment.train_params.num_epochs,
            "epoch_milestones": list(experiment.train_params.epoch_milestones),
            "train_minutes": logged_training_minutes(args.runs / family),
            "reconstruction": {**asdict(score(reconstruction_triples(model, test)))},
            "transfer": {**asdict(score(transfer_triples(model, test)))},
            "keypoint_spread_px": keypoint_spread(model, test),
            "ground_truth_spread_px": ground_truth_spread(test),
            "self_reconstruction_l1": self_reconstruction_l1(model, test),
            "evaluate": {motion: evaluation_scores(model, family, args.eval_videos, args.frames, motion)
                         for motion in MOTIONS},
        }
        if args.export:
            print(f"exported {export(model_path, family)}")
            print(f"wrote {write_gif(family, ROOT / 'docs' / 'images' / f'fomm-{family}.gif')}")
    settings = {"machine": describe_machine(),
                "eval_videos": args.eval_videos, "frames": args.frames, "torch": torch.__version__}
    if args.epochs is not None:
        settings.update(page_settings_for_epochs(args.epochs, sys.argv[1:], args.json))
    table = markdown(results, settings)
    print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.json, json.dumps({"settings": settings, "results": results}, indent=2) + "\n")
    if args.markdown is not None:
        atomic_write_text(args.markdown, table)


if __name__ == "__main__":
    main()
