"""What the benchmark scripts record about the machine they ran on."""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch


def describe_machine() -> str:
    """The processor (or architecture) and torch's thread count, e.g. ``"x86_64, 1 thread"``."""
    threads = torch.get_num_threads()
    return f"{platform.processor() or platform.machine()}, {threads} thread{'s' * (threads != 1)}"


def parse_with_threads(parser: argparse.ArgumentParser, json_default: Path | None) -> argparse.Namespace:
    """Add the ``--threads`` and ``--json`` options every benchmark has, parse, and apply ``--threads``.
    ``json_default`` None makes the JSON optional (written only when ``--json`` is given)."""
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's choice]")
    parser.add_argument("--json", type=Path, default=json_default,
                        help="where the results are written" if json_default else "also write the results here")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return args
