"""What the benchmark scripts record about the machine they ran on."""

from __future__ import annotations

import platform

import torch


def describe_machine() -> str:
    """The processor (or architecture) and torch's thread count, e.g. ``"x86_64, 1 thread"``."""
    threads = torch.get_num_threads()
    return f"{platform.processor() or platform.machine()}, {threads} thread{'s' * (threads != 1)}"
