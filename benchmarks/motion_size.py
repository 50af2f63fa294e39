"""How far the procedural sets move: ground-truth keypoint displacement from the source frame, per set and motion.

For the test split of the procedural faces and puppets (the videos the FOMM benchmark evaluates on), this measures
from the ground-truth keypoints how far they move between the source frame (frame 0) and each driving frame (every
frame of the video, frame 0 included, as the reconstruction protocol drives with them): mean and 90th-percentile
displacement in pixels over the keypoints visible in both frames. Next to it: the ground-truth keypoint spread
(mean distance of a frame's keypoints from their centroid, the measure ``fomm_synthetic.keypoint_spread`` takes of
learned keypoints, here on the first frames), the "copy the source frame" L1 (mean |frame_t - frame_0|, the
baseline in benchmarks/fomm_synthetic.py), the share of keypoints that are visible and the share that lie off the
image. ``--motion default large`` adds the sets' ``motion=large`` variant (same identities and actions, wider
motion).

Usage:
    python benchmarks/motion_size.py [--families faces puppets] [--motion default large] [--videos 24]
        [--frames 64] [--size 64] [--seed 0] [--threads N] [--json benchmarks/results/motion_size.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from machine import describe_machine, parse_with_threads

from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec
from motiontransfer.fileio import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]


def displacements(keypoints: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """Distances (pixels) the keypoints have moved from frame 0, for every frame and every keypoint visible both in
    frame 0 and in that frame, flattened in (frame, keypoint) order.

    Args:
        keypoints: (T, K, 2) pixel coordinates of one video.
        visibility: (T, K) bool.
    """
    moved = np.linalg.norm(np.asarray(keypoints, dtype=np.float64) - keypoints[:1], axis=-1)
    return moved[np.asarray(visibility) & np.asarray(visibility)[:1]]


def spread(keypoints: np.ndarray) -> float:
    """Mean distance (pixels) of one frame's (K, 2) keypoints from their centroid."""
    points = np.asarray(keypoints, dtype=np.float64)
    return float(np.linalg.norm(points - points.mean(axis=0), axis=-1).mean())


def off_image(keypoints: np.ndarray, size: int) -> np.ndarray:
    """(..., K) bool: the keypoint lies outside the image (pixel centres are integers, so the image covers
    [-0.5, size - 0.5] on both axes)."""
    return np.any((keypoints < -0.5) | (keypoints > size - 0.5), axis=-1)


def measure(family: str, motion: str, videos: int, frames: int, size: int, seed: int) -> dict[str, Any]:
    """The statistics of one set (test split) over ``videos`` videos of ``frames`` frames."""
    source = ProceduralSource(ProceduralSpec(family, size=size, videos=videos, frames=frames, seed=seed,
                                             split="test", motion=motion))
    moved, spreads, copy_l1, visible, outside = [], [], [], [], []
    for index in range(len(source)):
        clip = list(source.frames(index))
        keypoints = np.stack([f.keypoints for f in clip])
        visibility = np.stack([f.visibility for f in clip])
        moved.append(displacements(keypoints, visibility))
        spreads.append(spread(keypoints[0]))
        copy_l1 += [float(np.abs(f.image - clip[0].image).mean()) for f in clip]
        visible.append(visibility.mean())
        outside.append(off_image(keypoints, size).mean())
    distances = np.concatenate(moved)
    return {"family": family, "motion": motion, "videos": videos, "frames": frames,
            "mean_displacement_px": float(distances.mean()),
            "p90_displacement_px": float(np.percentile(distances, 90)),
            "max_displacement_px": float(distances.max()),
            "keypoint_spread_px": float(np.mean(spreads)),
            "copy_l1": float(np.mean(copy_l1)),
            "visible_fraction": float(np.mean(visible)),
            "off_image_fraction": float(np.mean(outside))}


def markdown(rows: list[dict[str, Any]], size: int) -> str:
    """The table, as Markdown."""
    lines = ["| set | motion | mean displacement (px) | 90th pct (px) | GT keypoint spread (px) | mean / spread | "
             "copy-source L1 | visible | off the image |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['family']} | {r['motion']} | {r['mean_displacement_px']:.2f} | "
                     f"{r['p90_displacement_px']:.2f} | {r['keypoint_spread_px']:.2f} | "
                     f"{r['mean_displacement_px'] / r['keypoint_spread_px']:.2f} | {r['copy_l1']:.4f} | "
                     f"{100 * r['visible_fraction']:.1f}% | {100 * r['off_image_fraction']:.2f}% |")
    return "\n".join(lines) + f"\n\n({size}-px frames, test split.)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["faces", "puppets"], choices=["faces", "puppets"])
    parser.add_argument("--motion", nargs="+", default=["default", "large"], choices=["default", "large"])
    parser.add_argument("--videos", type=int, default=24, help="test videos per set")
    parser.add_argument("--frames", type=int, default=64, help="frames per video")
    parser.add_argument("--size", type=int, default=64, help="frame size in pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parse_with_threads(parser, ROOT / "benchmarks" / "results" / "motion_size.json")
    rows = [measure(family, motion, args.videos, args.frames, args.size, args.seed)
            for family in args.families for motion in args.motion]
    settings = {"videos": args.videos, "frames": args.frames, "size": args.size, "seed": args.seed, "split": "test",
                "torch": torch.__version__, "machine": describe_machine()}
    atomic_write_text(args.json, json.dumps({"settings": settings, "results": rows}, indent=2) + "\n")
    print(markdown(rows, args.size))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
