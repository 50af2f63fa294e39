"""Single-process and ``torchrun`` training alike: process group, device, DDP wrapping, sampling.

A training script runs unchanged under ``torchrun --nproc-per-node N``: :func:`init_distributed` reads the
launcher's environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``) and joins the
process group (gloo on the CPU, nccl on CUDA, one GPU per local rank); without those variables it is a single
process with world size 1 and nothing distributed happens.

Policies (documented once, here):

- Each trainable network is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` with
  ``static_graph=True``. FOMM calls one network several times before a single backward (the keypoint detector on the
  source, the driving frame and its TPS-transformed copy; the discriminator on real and generated images). DDP
  documents the static-graph mode for such graphs (older versions fail in the default mode with "mark variable
  ready only once"; torch 2.13's default mode happened to accept FOMM's graph in our check, but that is not
  promised). It keeps the single-process semantics exactly (BatchNorm statistics per call, as the official code),
  where concatenating the calls into one batch would pool BatchNorm statistics over them. The graph must be the
  same at every step, which a fixed config guarantees.
- Frozen networks (no parameter requires a gradient, e.g. learning rate 0) are not wrapped: DDP refuses them.
- BatchNorm becomes SyncBatchNorm only on CUDA with more than one process. torch's SyncBatchNorm refuses CPU tensors
  ("SyncBatchNorm layers only work with GPU modules", checked with torch 2.13 and gloo), so on the CPU every process
  normalises with its own batch statistics, and the running averages are those of rank 0 (DDP broadcasts buffers
  from rank 0 before every forward; :func:`sync_buffers` does it once more at the end of training).
- Only rank 0 writes files and logs (:attr:`DistributedContext.is_main`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler

from motiontransfer.errors import ArgumentError, Term, UserError

__all__ = [
    "DistributedContext",
    "ResumableDistributedSampler",
    "barrier",
    "init_distributed",
    "make_sampler",
    "resolve_device",
    "shutdown_distributed",
    "sync_buffers",
    "wrap_module",
]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a (possibly one-process) training job.

    Attributes:
        rank: global rank (0 in a single process).
        local_rank: rank on this machine (selects the GPU).
        world_size: number of processes.
        device: the device this process trains on.
        owns_group: True when :func:`init_distributed` created the process group (and so destroys it).
        channels_last: networks and image batches use the channels-last (NHWC) memory format
            (``train_params.channels_last``).
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False
    channels_last: bool = False

    @property
    def enabled(self) -> bool:
        """True with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only process that writes files and logs."""
        return self.rank == 0


def resolve_device(name: str | None, local_rank: int = 0) -> torch.device:
    """The training device: ``name`` (``cpu``/``cuda``/``cuda:N``) or, when None, CUDA if available else the CPU.
    With CUDA and no explicit index, process ``local_rank`` uses GPU ``local_rank``.

    Raises:
        UserError: CUDA requested but not available, or an unknown device name.
    """
    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; use cpu or cuda") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ArgumentError(Term("device"), " cuda was requested but CUDA is not available on this machine")
        if device.index is None:
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
    elif device.type != "cpu":
        raise UserError(f"unsupported device {name!r}; use cpu or cuda")
    return device


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def init_distributed(device: str | None = None, timeout_seconds: float = 1800.0) -> DistributedContext:
    """Join the launcher's process group when there is one (see the module docstring).

    An already initialised default process group (e.g. made by a test harness) is used as it is and left alone
    at the end.

    Args:
        device: device name or None (see :func:`resolve_device`).
        timeout_seconds: collective-operation timeout.

    Returns:
        The process's :class:`DistributedContext`.
    """
    if dist.is_available() and dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
        local_rank = _env_int("LOCAL_RANK", rank)
        return DistributedContext(rank, local_rank, world_size, resolve_device(device, local_rank), False)
    world_size = _env_int("WORLD_SIZE", 1)
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    resolved = resolve_device(device, local_rank)
    if world_size <= 1:
        return DistributedContext(0, 0, 1, resolved, False)
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    backend = "nccl" if resolved.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=timeout_seconds))
    return DistributedContext(rank, local_rank, world_size, resolved, True)


def shutdown_distributed(context: DistributedContext) -> None:
    """Destroy the process group if :func:`init_distributed` created it."""
    if context.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: DistributedContext) -> None:
    """Wait for every process (no-op in a single process)."""
    if context.enabled:
        dist.barrier()


def to_channels_last(module: nn.Module) -> nn.Module:
    """Every 4-D parameter and buffer of ``module`` in the channels-last memory format, in place (other ranks are
    left alone: ``Module.to(memory_format=...)`` refuses the 5-D weights of modulated convolutions)."""
    return module._apply(lambda t: t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t)


def wrap_module(module: nn.Module, context: DistributedContext) -> nn.Module:
    """Prepare one network for (distributed) training: move it to the device (channels-last when the context says so)
    and, with several processes, convert
    BatchNorm to SyncBatchNorm (CUDA only) and wrap it in DDP with ``static_graph=True`` when it has trainable
    parameters. In a single process the module itself is returned (on the device)."""
    module = module.to(context.device)
    if context.channels_last:
        module = to_channels_last(module)
    if not context.enabled or not any(p.requires_grad for p in module.parameters()):
        return module
    if context.device.type == "cuda":
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return nn.parallel.DistributedDataParallel(module, device_ids=[context.device], static_graph=True)
    return nn.parallel.DistributedDataParallel(module, static_graph=True)


def sync_buffers(modules: Mapping[str, nn.Module], context: DistributedContext) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics, spectral-norm vectors) to every process."""
    if not context.enabled:
        return
    with torch.no_grad():
        for name in sorted(modules):
            for buffer in modules[name].buffers():
                dist.broadcast(buffer, src=0)


class ResumableDistributedSampler(DistributedSampler):
    """A :class:`~torch.utils.data.DistributedSampler` that can skip the first batches of an epoch, so that a run
    resumed in the middle of an epoch sees the rest of that epoch's order without loading the skipped items.

    ``skip`` (set with :meth:`set_skip`) counts indices of this process's share and applies to the current epoch
    only: :meth:`set_epoch` clears it. The shuffling is DistributedSampler's (seeded by ``seed + epoch``).
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int, shuffle: bool = True) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's order and clear any skip."""
        super().set_epoch(epoch)
        self.skip = 0

    def set_skip(self, count: int) -> None:
        """Leave out the first ``count`` indices of the current epoch (call after :meth:`set_epoch`)."""
        self.skip = max(0, int(count))

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.skip:])

    def __len__(self) -> int:
        return max(0, super().__len__() - self.skip)


def make_sampler(dataset: Dataset, context: DistributedContext, seed: int) -> ResumableDistributedSampler:
    """This process's shuffled share of ``dataset`` (the whole dataset in a single process)."""
    return ResumableDistributedSampler(dataset, num_replicas=context.world_size, rank=context.rank, seed=seed)
