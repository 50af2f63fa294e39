"""Rendering speed of the procedural datasets (frames per second, one thread), per family and size.

Usage: python benchmarks/synthetic_speed.py [--frames N] [--json benchmarks/results/synthetic_speed.json]
Prints a table and writes JSON. A "frame" is what on-the-fly training consumes: identity and motion sampled,
pose evaluated, frame rendered with its ground truth, for a fresh random video each time.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from motiontransfer.data.synthetic import FAMILIES, ProceduralSource, ProceduralSpec


def measure(family: str, size: int, frames: int, videos: int) -> dict[str, float]:
    """Frames per second for random-access rendering (fresh video each frame) and for whole clips."""
    source = ProceduralSource(ProceduralSpec(family, size=size, videos=videos, frames=64, seed=0))
    source.frame(0, 0)  # warm caches and imports
    start = time.perf_counter()
    for i in range(frames):
        source.frame(i % videos, (i * 7) % 64)
    random_access = frames / (time.perf_counter() - start)
    start = time.perf_counter()
    count = 0
    for _ in source.frames(1):
        count += 1
    clip = count / (time.perf_counter() - start)
    return {"random_access_fps": random_access, "clip_fps": clip}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600, help="frames rendered per measurement")
    parser.add_argument("--videos", type=int, default=50, help="distinct random videos cycled through")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/synthetic_speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    print(f"{'family':<10}{'size':>6}{'random-access fps':>20}{'clip fps':>12}")
    for family in sorted(FAMILIES):
        for size in args.sizes:
            frames = max(50, args.frames * 64 * 64 // (size * size))
            result = measure(family, size, frames, args.videos)
            rows.append({"family": family, "size": size, **result})
            print(f"{family:<10}{size:>6}{result['random_access_fps']:>20.0f}{result['clip_fps']:>12.0f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": platform.processor() or platform.machine(),
                                     "python": platform.python_version(), "results": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
