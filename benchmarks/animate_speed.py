"""Animation speed of the streaming pipeline: milliseconds per output frame for a bundled FOMM config (random
weights), per batch size, with the source encoded once.

Usage: python benchmarks/animate_speed.py [--config vox-256] [--batch-sizes 1 4 8] [--frames 16] [--threads N]
    [--json benchmarks/results/animate_speed.json]
Timings include keypoint detection, relative transfer and rendering, not video decoding or encoding. Run it on an
otherwise idle machine: with other processes on the cores, torch's thread pool slows down several-fold.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
from machine import describe_machine, parse_with_threads

from motiontransfer.experiment import load_experiment
from motiontransfer.families.fomm.animator import FOMMAnimator
from motiontransfer.inference.pipeline import animate


def ms_per_frame(model: FOMMAnimator, batch_size: int, frames: int, repeats: int) -> float:
    """Best of ``repeats`` runs over ``frames`` random driving frames, after a warm-up batch."""
    generator = torch.Generator().manual_seed(0)
    source = torch.rand(3, model.size, model.size, generator=generator)
    driving = [torch.rand(3, model.size, model.size, generator=generator) for _ in range(frames)]
    for _ in animate(model, source, driving[:batch_size], batch_size=batch_size):
        pass
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in animate(model, source, driving, batch_size=batch_size):
            pass
        best = min(best, (time.perf_counter() - start) / frames)
    return 1000 * best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="vox-256", help="bundled config name or YAML path")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--frames", type=int, default=16, help="driving frames per run")
    parser.add_argument("--repeats", type=int, default=2, help="runs per batch size (the best is reported)")
    args = parse_with_threads(parser, None)
    torch.manual_seed(0)
    model = FOMMAnimator(load_experiment(args.config)).eval()
    results = {str(b): ms_per_frame(model, b, args.frames, args.repeats) for b in args.batch_sizes}
    print(f"{args.config}, {model.size}x{model.size}, {describe_machine()}, torch {torch.__version__}")
    for batch_size, ms in results.items():
        print(f"  batch {batch_size:>2}: {ms:7.0f} ms/frame")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "config": args.config, "size": model.size, "threads": torch.get_num_threads(),
            "torch": torch.__version__, "machine": platform.machine(), "ms_per_frame": results,
        }, indent=2) + "\n")


if __name__ == "__main__":
    main()
