"""How well keypoint-space transfer rules predict the cross-identity ground truth (why puppets' cross-identity L1
stays further from its ground truth than faces').

The cross protocol animates test video 2i's identity (its frame 0 is the source) with test video 2i + 1's motion;
the procedural renderer draws the ground truth, the source identity performing that motion relative to each
video's first frame. This measures, without rendering any prediction, how far each transfer rule puts the keypoints
from the ground truth's, in pixels (mean over keypoints and frames):

* **learned keypoints** of a bundled FOMM model (detected on the source frame, the driving frames and the
  ground-truth frames): FOMM's relative transfer (Eq. 14), with its convex-hull movement scale (``adapt_scale``),
  with a least-squares linear map from the initial driving keypoints to the source's applied to the displacements,
  absolute transfer, and no motion at all;
* **the renderer's joints** (puppets: its 15 skeleton points): relative transfer against articulated transfer on the
  puppet's skeleton, each bone of the source turned by the angle its driving bone turned (the root moves as in
  relative transfer). The puppets' ground truth is made that way (joint angles applied to the source's limbs, see
  ``Family.relative_pose``), while relative transfer adds the driving limbs' displacements, which are those of
  other limb lengths.

It then renders: the model's cross-identity L1, as a reduction against copying the source, when its renderer is
given the shipped transfer (relative keypoints and Jacobians, Eqs. 14-15) or motion taken partly from the ground
truth (its detected keypoints, its Jacobians, or the best per-keypoint linear map of the driving displacements
fitted to it). These oracles bound what any transfer rule on the learned motion can reach.

Usage:
    python benchmarks/transfer_error.py [--families faces puppets] [--pairs 12] [--threads N]
        [--json benchmarks/results/transfer_error.json]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from machine import describe_machine, parse_with_threads

import motiontransfer as mt
from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec
from motiontransfer.data.synthetic.puppets import KEYPOINT_NAMES
from motiontransfer.families.fomm.animator import KeypointMotion
from motiontransfer.fileio import atomic_write_text
from motiontransfer.ops.keypoints import convex_hull_scale, relative_keypoints

ROOT = Path(__file__).resolve().parents[1]

PUPPET_PARENTS = {"head": "neck", "neck": "pelvis", "pelvis": None, "l_shoulder": "neck", "l_elbow": "l_shoulder",
                  "l_hand": "l_elbow", "r_shoulder": "neck", "r_elbow": "r_shoulder", "r_hand": "r_elbow",
                  "l_hip": "pelvis", "l_knee": "l_hip", "l_foot": "l_knee", "r_hip": "pelvis", "r_knee": "r_hip",
                  "r_foot": "r_knee"}
"""The procedural puppet's skeleton: each joint's parent (the pelvis is the root)."""

Rule = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def linear_map(points_from: torch.Tensor, points_to: torch.Tensor) -> torch.Tensor:
    """The least-squares 2x2 L with ``points_to - mean ~ (points_from - mean) @ L^T``: (K, 2), (K, 2) -> (2, 2)."""
    centred_from = points_from - points_from.mean(0)
    centred_to = points_to - points_to.mean(0)
    return torch.linalg.lstsq(centred_from, centred_to).solution.T


def per_keypoint_linear_maps(displacements: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """For each keypoint k the least-squares 2x2 L_k with ``targets[:, k] ~ displacements[:, k] @ L_k^T``.

    Args:
        displacements, targets: (T, K, 2).

    Returns:
        (K, 2, 2).
    """
    return torch.linalg.lstsq(displacements.transpose(0, 1), targets.transpose(0, 1)).solution.transpose(1, 2)


def articulated(source: torch.Tensor, driving: torch.Tensor, parents: tuple[int, ...]) -> torch.Tensor:
    """Articulated transfer: the root moves as in relative transfer; each other joint c with parent p is placed at
    ``new_p + R(theta) (s_c - s_p)``, theta the angle by which the driving bone ``d_c - d_p`` turned since the first
    driving frame (the source's bone lengths kept).

    Args:
        source: (K, 2) source joints. driving: (T, K, 2) driving joints, frame 0 the initial one.
        parents: each joint's parent index, -1 for the root; a parent's index may be larger than its child's.

    Returns:
        (T, K, 2).
    """
    placed: dict[int, torch.Tensor] = {}

    def place(index: int) -> torch.Tensor:
        if index in placed:
            return placed[index]
        parent = parents[index]
        if parent < 0:
            position = source[index] + driving[:, index] - driving[:1, index]
        else:
            before = driving[:1, index] - driving[:1, parent]
            after = driving[:, index] - driving[:, parent]
            turn = torch.atan2(after[:, 1], after[:, 0]) - torch.atan2(before[:, 1], before[:, 0])
            bone = source[index] - source[parent]
            cos, sin = torch.cos(turn)[:, None], torch.sin(turn)[:, None]
            turned = torch.cat([cos * bone[0] - sin * bone[1], sin * bone[0] + cos * bone[1]], dim=1)
            position = place(parent) + turned
        placed[index] = position
        return position

    return torch.stack([place(index) for index in range(len(parents))], dim=1)


def learned_rules(scale_source: torch.Tensor, scale_initial: torch.Tensor) -> dict[str, Rule]:
    """The transfer rules on learned keypoints, each (source (1, K, 2), driving (T, K, 2), initial (1, K, 2)) ->
    (T, K, 2); ``scale_source`` and ``scale_initial`` give adapt-scale's factor."""
    return {
        "relative (FOMM Eq. 14)": lambda s, d, i: relative_keypoints(s, d, i),
        "relative, adapt-scale": lambda s, d, i: relative_keypoints(s, d, i, convex_hull_scale(scale_source,
                                                                                               scale_initial)),
        "relative, fitted linear map": lambda s, d, i: s + (d - i) @ linear_map(i[0], s[0]).T,
        "absolute": lambda s, d, i: d,
        "no motion": lambda s, d, i: s.expand_as(d),
    }


@dataclass(frozen=True)
class Pair:
    """One cross-identity pair, rendered and detected once for both measurements.

    Attributes:
        image: (1, 3, H, W) the source (frame 0 of the identity's video).
        truth_frames: (T, 3, H, W) the ground truth (the source's subject performing the driving motion).
        source, driving, truth: the model's motion of the source (batch 1), the driving frames and the ground
            truth (batch T).
        joints: the renderer's keypoints (source (K, 2), driving (T, K, 2), ground truth (T, K, 2), float64
            pixels), for puppets only.
    """

    image: torch.Tensor
    truth_frames: torch.Tensor
    source: KeypointMotion
    driving: KeypointMotion
    truth: KeypointMotion
    joints: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None


def load_pair(model: Any, source: ProceduralSource, identity: int, motion: int) -> Pair:
    """Video ``identity``'s subject driven by video ``motion``: frames rendered, motion detected."""
    source_frame = source.frame(identity, 0)
    driving_frames = list(source.frames(motion))
    truth_frames = list(source.transfer_frames(identity, motion))
    image = source_frame.tensor()[None]
    truth_images = torch.stack([f.tensor() for f in truth_frames])
    with torch.no_grad():
        motions = [model.extract_motion(frames) for frames in
                   (image, torch.stack([f.tensor() for f in driving_frames]), truth_images)]
    joints = None
    if source.spec.family == "puppets":
        joints = tuple(torch.tensor(np.asarray(points), dtype=torch.float64) for points in
                       (source_frame.keypoints, [f.keypoints for f in driving_frames],
                        [f.keypoints for f in truth_frames]))
    return Pair(image, truth_images, *motions, joints)


def pair_errors(pair: Pair, size: int) -> dict[str, float]:
    """Mean keypoint error (pixels, frames of ``size`` px) of every rule for ``pair``."""
    learned_source, learned_driving, learned_truth = pair.source.value, pair.driving.value, pair.truth.value
    pixels = size / 2  # normalised [-1, 1] units to pixels
    errors = {}
    initial = learned_driving[:1]
    for name, rule in learned_rules(learned_source, initial).items():
        moved = rule(learned_source, learned_driving, initial)
        errors[f"learned keypoints: {name}"] = float((moved - learned_truth).norm(dim=-1).mean()) * pixels
    if pair.joints is not None:
        joints_source, joints_driving, joints_truth = pair.joints
        parents = tuple(-1 if PUPPET_PARENTS[n] is None else KEYPOINT_NAMES.index(PUPPET_PARENTS[n])
                        for n in KEYPOINT_NAMES)
        relative = relative_keypoints(joints_source[None], joints_driving, joints_driving[:1])
        errors["true joints: relative"] = float((relative - joints_truth).norm(dim=-1).mean())
        errors["true joints: no motion"] = float((joints_source - joints_truth).norm(dim=-1).mean())
        turned = articulated(joints_source, joints_driving, parents)
        errors["true joints: articulated on the skeleton"] = float((turned - joints_truth).norm(dim=-1).mean())
    return errors


def oracle_motions(source: KeypointMotion, driving: KeypointMotion, truth: KeypointMotion,
                   shipped: KeypointMotion) -> dict[str, KeypointMotion]:
    """The motions the renderer is given for the rendered comparison, each of batch T.

    Args:
        source: batch 1. driving, truth: batch T (the driving frames and the ground-truth frames, detected).
        shipped: batch T, the shipped relative transfer of ``driving`` onto ``source`` (Eqs. 14-15).
    """
    displacements = driving.value - driving.value[:1]
    maps = per_keypoint_linear_maps(displacements, truth.value - source.value)
    fitted = source.value + torch.einsum("kij,tkj->tki", maps, displacements)
    return {
        "no motion (the source's own keypoints and Jacobians)": source.expand(truth.batch_size),
        "relative keypoints and Jacobians (shipped, Eqs. 14-15)": shipped,
        "relative keypoints, ground truth's Jacobians": KeypointMotion(shipped.value, truth.jacobian),
        "per-keypoint linear map fitted to the ground truth, relative Jacobians": KeypointMotion(fitted,
                                                                                                 shipped.jacobian),
        "ground truth's keypoints, relative Jacobians": KeypointMotion(truth.value, shipped.jacobian),
        "ground truth's keypoints and Jacobians": truth,
    }


def pair_renders(model: Any, pair: Pair) -> dict[str, float]:
    """Cross-identity L1 of every oracle motion's prediction against ``pair``'s ground truth, and copy-source's L1
    (key ``"copy source"``); means over frames."""
    with torch.no_grad():
        state = model.encode_source(pair.image)
        shipped = model.relative_motion(pair.source, pair.driving, pair.driving.select(slice(0, 1)), 1.0)
        l1 = {name: float((model.render(state, given)["prediction"] - pair.truth_frames).abs().mean())
              for name, given in oracle_motions(pair.source, pair.driving, pair.truth, shipped).items()}
    return {"copy source": float((pair.image - pair.truth_frames).abs().mean()), **l1}


def measure(family: str, pairs: int) -> dict[str, Any]:
    """Mean keypoint errors and rendered L1 reductions over ``pairs`` cross-identity pairs of the bundled
    ``fomm-<family>`` on the default test set."""
    model = mt.load(f"fomm-{family}").model.eval()
    source = ProceduralSource(ProceduralSpec.test_split(f"procedural:{family}", model.size))
    count = min(pairs, len(source) // 2)
    loaded = [load_pair(model, source, 2 * k, 2 * k + 1) for k in range(count)]
    per_pair = [pair_errors(pair, model.size) for pair in loaded]
    renders = [pair_renders(model, pair) for pair in loaded]
    mean_l1 = {name: float(np.mean([r[name] for r in renders])) for name in renders[0]}
    copy = mean_l1.pop("copy source")
    return {"family": family, "model": f"fomm-{family}", "pairs": count, "size": model.size,
            "errors_px": {name: float(np.mean([p[name] for p in per_pair])) for name in per_pair[0]},
            "copy_source_l1": copy,
            "l1_reduction_percent": {name: 100.0 * (1.0 - value / copy) for name, value in mean_l1.items()}}


def markdown(rows: list[dict[str, Any]]) -> str:
    """The two tables (keypoint errors, rendered L1 reductions), as Markdown."""
    lines = ["| set | keypoints and rule | error to the ground truth (px) |", "|---|---|---|"]
    for row in rows:
        lines += [f"| {row['family']} | {name} | {value:.2f} |" for name, value in row["errors_px"].items()]
    rendered = [row for row in rows if "l1_reduction_percent" in row]
    if rendered:
        lines += ["", "| set | motion given to the renderer | cross-identity L1 below copy-source |", "|---|---|---|"]
    for row in rendered:
        lines += [f"| {row['family']} | {name} | {value:.1f}% |" for name, value in row["l1_reduction_percent"].items()]
    sizes = sorted({row["size"] for row in rows})
    return "\n".join(lines) + f"\n\n({', '.join(map(str, sizes))}-px frames, default test sets, cross-identity pairs.)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["faces", "puppets"], choices=["faces", "puppets"])
    parser.add_argument("--pairs", type=int, default=12, help="cross-identity pairs per set")
    args = parse_with_threads(parser, ROOT / "benchmarks" / "results" / "transfer_error.json")
    rows = [measure(family, args.pairs) for family in args.families]
    settings = {"pairs": args.pairs, "torch": torch.__version__, "machine": describe_machine()}
    atomic_write_text(args.json, json.dumps({"settings": settings, "results": rows}, indent=2) + "\n")
    print(markdown(rows))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
