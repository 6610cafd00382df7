"""Choosing the compute device: CUDA, then Apple MPS, then CPU, unless the user says otherwise."""

from __future__ import annotations

import torch

from guiclassifier.core.errors import GuiClassifierError


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """Turn "auto", "cpu", "cuda", "cuda:1" or "mps" into a device that exists here."""
    if isinstance(spec, torch.device):
        return spec
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise GuiClassifierError(f"unknown device {spec!r}: use auto, cpu, cuda, cuda:N or mps") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GuiClassifierError("CUDA was asked for but no CUDA GPU is available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise GuiClassifierError(
                f"there is no GPU {device.index}: this machine has {torch.cuda.device_count()}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise GuiClassifierError("MPS was asked for but is not available here")
    return device


def uses_channels_last(device: torch.device) -> bool:
    """Whether models and image batches on `device` are kept channels-last (NHWC). On CPU that made
    MobileNetV2 1.4-1.6x faster and resnet34 up to 1.1x (benchmarks/README.md); on CUDA it is what
    tensor cores want under mixed precision. MPS is left as it is."""
    return device.type in ("cpu", "cuda")


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch moved to `device`: image batches in the layout the model's convolutions use."""
    if x.dim() == 4 and uses_channels_last(device):
        return x.to(device, non_blocking=True, memory_format=torch.channels_last)
    return x.to(device, non_blocking=True)


def describe_device(device: torch.device) -> str:
    """A short human name such as 'CPU' or 'CUDA: NVIDIA H100'."""
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    return device.type.upper()


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, Python's MemoryError, or a CPU allocator that could not allocate."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text
