"""Numeric precision of the arithmetic: float32, or bfloat16/float16 autocast where the hardware has it.

"auto" picks per device what the benchmarks measured (benchmarks/README.md, sections 10 and 14):
float16 autocast with loss scaling on CUDA; float32 on CPUs and MPS, as bfloat16 autocast made the
training step of MobileNetV2 and resnet34 slower on the one CPU with AVX512-BF16 measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from guiclassifier.core.errors import GuiClassifierError

if TYPE_CHECKING:
    import torch

# The names and labels are read by the window and the command line before torch is imported.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PRECISION_LABELS = {"auto": "Automatic", "fp32": "float32", "bf16": "bfloat16 (mixed)", "fp16": "float16 (mixed)"}


@dataclass(frozen=True)
class Precision:
    """A resolved precision: `name` is fp32, bf16 or fp16; `asked` what the user chose."""

    name: str
    asked: str = "auto"

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype, None for plain float32."""
        import torch

        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.name]

    @property
    def mixed(self) -> bool:
        return self.name != "fp32"

    @property
    def scales_loss(self) -> bool:
        """float16's narrow range needs loss scaling; bfloat16 has float32's range and does not."""
        return self.name == "fp16"

    def autocast(self, device: torch.device) -> torch.autocast:
        """The context the forward passes run in."""
        import torch

        return torch.autocast(device.type, dtype=self.dtype or torch.float32, enabled=self.mixed)

    def describe(self) -> str:
        chosen = PRECISION_LABELS[self.name]
        return f"{chosen} (automatic)" if self.asked == "auto" else chosen


FLOAT32 = Precision("fp32", "fp32")


def resolve_precision(asked: str, device: torch.device) -> Precision:
    """What `asked` means on `device`; a precision the device cannot run raises a clear error."""
    if asked not in PRECISIONS:
        raise GuiClassifierError(f"unknown precision {asked!r}: choose one of {', '.join(PRECISIONS)}")
    if asked == "auto":
        return Precision("fp16" if device.type == "cuda" else "fp32", asked)
    if asked == "fp16" and device.type == "cpu":
        raise GuiClassifierError("float16 is for GPUs: on a CPU choose bf16 or fp32")
    import torch

    if asked == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise GuiClassifierError(f"this GPU ({torch.cuda.get_device_name(device)}) has no bfloat16: "
                                 "choose fp16 or fp32")
    return Precision(asked, asked)

