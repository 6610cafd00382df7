"""Data-parallel training over several processes, as started by ``torchrun --nproc_per_node N``.

Each process trains on its shard of every epoch. The trainable part of the model is wrapped in
torch's DistributedDataParallel, which averages the gradients in buckets while backward runs.
A recipe freezes, unfreezes and trains the head alone from cached activations within one run,
and DDP fixes its parameters when it wraps, so the learner wraps again whenever that set changes
(as fastai's DistributedTrainer wraps per fit). Losses and metrics are averaged too, so all
processes take the same decisions (lr_find stops, divergence, a stop asked of any one of them)
and hold the same weights.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.errors import GuiClassifierError
from guiclassifier.core.text import plural

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    # Set to ask for a stop (Ctrl-C in this process): acted on at the next training step,
    # validation or recipe stage, where every process learns of it and all stop there together
    # (Learner.stop_agreed and its callers).
    stop_request: CancelToken = field(default_factory=CancelToken, compare=False, repr=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device_spec: str = "auto") -> tuple[DistInfo, str]:
    """Join the process group torchrun set up; returns the info and the device this process uses."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_spec in ("auto", "cuda")
    if use_cuda:
        gpus = torch.cuda.device_count()
        if local_rank >= gpus:  # NCCL cannot share one GPU between processes
            per_node = os.environ.get("LOCAL_WORLD_SIZE", str(local_rank + 1))
            raise GuiClassifierError(
                f"torchrun started {per_node} processes on this machine, but it has {plural(gpus, 'GPU')}: "
                f"use --nproc_per_node {gpus}, or --device cpu to train on the processor")
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    info = DistInfo(dist.get_rank(), dist.get_world_size(), local_rank)
    return info, (f"cuda:{local_rank}" if use_cuda else ("cpu" if device_spec == "auto" else device_spec))


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def shard(items: Sequence[T], info: DistInfo | None) -> list[T]:
    """This process's equal share of `items` (padded by wrapping around, as DistributedSampler)."""
    items = list(items)
    if info is None or info.world_size == 1 or not items:
        return items
    per_rank = -(-len(items) // info.world_size)
    padded = (items * (info.world_size * per_rank // len(items) + 1))[: info.world_size * per_rank]
    return padded[info.rank::info.world_size]


def data_parallel(module: nn.Module, info: DistInfo, device: torch.device) -> DistributedDataParallel:
    """`module` wrapped for data-parallel training of the parameters that require a gradient now.
    Buffers (BatchNorm statistics) are not sent at every step: broadcast_state does that after
    each epoch, before validation."""
    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None,
                                   broadcast_buffers=False)


def sum_across(values: Sequence[float], info: DistInfo | None, device: torch.device) -> list[float]:
    if info is None or info.world_size == 1:
        return list(values)
    t = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def broadcast_state(module: torch.nn.Module, info: DistInfo | None, buffers_only: bool = False) -> None:
    """Copy rank 0's parameters and buffers (BatchNorm statistics) to every process."""
    if info is None or info.world_size == 1:
        return
    tensors = list(module.buffers()) if buffers_only else list(module.state_dict().values())
    for tensor in tensors:
        dist.broadcast(tensor, src=0)


def barrier(info: DistInfo | None) -> None:
    if info is not None and info.world_size > 1:
        dist.barrier()
