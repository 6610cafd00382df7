"""The classifier: a torchvision body cut before its pooling, fastai's head, three layer groups.

Layer groups (fastai's resnet split, applied to every architecture at its stride-8 boundary):
0 = normalisation + the body's early layers, 1 = the rest of the body, 2 = pooling + head.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.models import get_model

from guiclassifier.core.archs import N_GROUPS, PREFERENCE
from guiclassifier.core.errors import WeightsError
from guiclassifier.core.weights import WeightsSource, find_local_weights, read_state_dict, resolve_pretrained

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ArchSpec:
    """How to cut one torchvision architecture into the two body groups."""

    name: str
    cut: Callable[[nn.Module], tuple[list[nn.Module], list[nn.Module]]]
    classifier_attr: str  # torchvision's own classification layers, discarded by the cut


def _resnet_cut(m: nn.Module) -> tuple[list[nn.Module], list[nn.Module]]:
    return [m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2], [m.layer3, m.layer4]


def _features_cut(split: int) -> Callable[[nn.Module], tuple[list[nn.Module], list[nn.Module]]]:
    def cut(m: nn.Module) -> tuple[list[nn.Module], list[nn.Module]]:
        blocks = list(m.features.children())
        return blocks[:split], blocks[split:]
    return cut


ARCHS: dict[str, ArchSpec] = {spec.name: spec for spec in (
    ArchSpec("resnet18", _resnet_cut, "fc"),
    ArchSpec("resnet34", _resnet_cut, "fc"),
    ArchSpec("resnet50", _resnet_cut, "fc"),
    ArchSpec("mobilenet_v2", _features_cut(7), "classifier"),
    ArchSpec("mobilenet_v3_large", _features_cut(7), "classifier"),
    ArchSpec("efficientnet_b0", _features_cut(4), "classifier"),
    ArchSpec("convnext_tiny", _features_cut(4), "classifier"),
)}


def arch_spec(name: str) -> ArchSpec:
    try:
        return ARCHS[name]
    except KeyError:
        raise WeightsError(f"Unknown architecture {name!r}. Available: {', '.join(ARCHS)}.") from None


class Normalize(nn.Module):
    """Per-channel (x - mean) / std, so the model takes plain [0, 1] RGB."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class AdaptiveConcatPool2d(nn.Module):
    """Max and average pooling side by side: twice the features of either (fastai). Written as
    reductions: torch 2.11's ONNX exporter has no adaptive_max_pool2d, and for a 1x1 output the
    result is the same."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.amax(dim=(2, 3), keepdim=True), x.mean(dim=(2, 3), keepdim=True)], dim=1)


def create_head(n_features: int, n_classes: int, hidden: int = 512,
                dropouts: tuple[float, float] = (0.25, 0.5)) -> nn.Sequential:
    """fastai's head, after pooling: BN, dropout, linear, ReLU, BN, dropout, linear."""
    return nn.Sequential(
        nn.BatchNorm1d(n_features), nn.Dropout(dropouts[0]), nn.Linear(n_features, hidden), nn.ReLU(inplace=True),
        nn.BatchNorm1d(hidden), nn.Dropout(dropouts[1]), nn.Linear(hidden, n_classes))


class Classifier(nn.Module):
    """normalize -> stem -> trunk -> pool -> head, with freezing by layer group."""

    def __init__(self, stem: nn.Module, trunk: nn.Module, n_classes: int,
                 mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.stem = stem
        self.trunk = trunk
        self.pool = nn.Sequential(AdaptiveConcatPool2d(), nn.Flatten())
        with torch.no_grad():
            was_training = trunk.training
            stem.eval(), trunk.eval()
            n_features = 2 * self.trunk(self.stem(torch.zeros(1, 3, 64, 64))).shape[1]
            stem.train(was_training), trunk.train(was_training)
        self.n_features = n_features
        self.head = create_head(n_features, n_classes)
        self.frozen_groups = 0
        # fastai 0.7's bn_freeze: the body's BatchNorm keeps its ImageNet statistics even when
        # unfrozen. On small datasets re-estimating them from batches costs accuracy (see README).
        self.bn_freeze = False
        # fastai v2's train_bn: the BatchNorm layers of frozen groups still train (weights and
        # statistics), so the body adapts its normalisation to the new images while frozen.
        self.train_bn = False

    @property
    def layer_groups(self) -> tuple[nn.ModuleList, ...]:
        return (nn.ModuleList([self.normalize, self.stem]), nn.ModuleList([self.trunk]),
                nn.ModuleList([self.pool, self.head]))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled activations of the body: what precompute caches."""
        return self.pool(self.trunk(self.stem(self.normalize(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def freeze_to(self, n: int) -> None:
        """Groups before `n` get no gradient and keep their BatchNorm statistics fixed."""
        if not 0 <= n < N_GROUPS:
            raise ValueError(f"freeze_to takes 0..{N_GROUPS - 1} (got {n})")
        for i, group in enumerate(self.layer_groups):
            for m in group.modules():
                trains = i >= n or (self.train_bn and isinstance(m, nn.modules.batchnorm._BatchNorm))
                for p in m.parameters(recurse=False):
                    p.requires_grad_(trains)
        self.frozen_groups = n
        self.train(self.training)

    def set_bn_modes(self, bn_freeze: bool, train_bn: bool) -> None:
        """Change bn_freeze / train_bn; which parameters train and BatchNorm modes follow."""
        self.bn_freeze, self.train_bn = bool(bn_freeze), bool(train_bn)
        self.freeze_to(self.frozen_groups)

    @property
    def body_trains(self) -> bool:
        """Whether a training step can change the body (so its cached activations)."""
        return self.frozen_groups < N_GROUPS - 1 or self.train_bn

    def train(self, mode: bool = True) -> Classifier:
        super().train(mode)
        if mode:
            for i, group in enumerate(self.layer_groups[:N_GROUPS - 1]):
                # Frozen groups keep their statistics unless train_bn; unfrozen ones with bn_freeze.
                fixed = not self.train_bn if i < self.frozen_groups else self.bn_freeze
                if fixed:
                    for m in group.modules():
                        if isinstance(m, nn.modules.batchnorm._BatchNorm):
                            m.eval()
        return self


def _load_body_weights(tv_model: nn.Module, state: Mapping[str, torch.Tensor], spec: ArchSpec,
                       source_name: str) -> None:
    """Load `state` into the torchvision model; only its own classifier may differ or be absent."""
    expected = tv_model.state_dict()
    prefix = spec.classifier_attr + "."
    body_state = {k: v for k, v in state.items() if not k.startswith(prefix)}
    missing = sorted(k for k in expected if not k.startswith(prefix) and k not in body_state)
    unexpected = sorted(k for k in body_state if k not in expected)
    mismatched = sorted(k for k in body_state if k in expected and body_state[k].shape != expected[k].shape)
    if missing or unexpected or mismatched:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
            if keys:
                more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
                parts.append(f"{label}: {', '.join(keys[:5])}{more}")
        raise WeightsError(f"{source_name} does not fit {spec.name} ({'; '.join(parts)}). "
                           f"Choose a weights file made for {spec.name}.")
    tv_model.load_state_dict(body_state, strict=False)


def build_classifier(arch: str, n_classes: int, weights: str | Path | None = "auto"
                     ) -> tuple[Classifier, WeightsSource]:
    """The classifier for `arch` with `n_classes` outputs.

    weights: "auto" (ImageNet weights found or downloaded), a path to a torchvision .pth file, or
    None for random initialisation (only when asked for explicitly).
    """
    spec = arch_spec(arch)
    if n_classes < 2:
        raise ValueError("a classifier needs at least two classes")
    tv_model = get_model(arch, weights=None)
    if weights is None:
        source = WeightsSource("random", "random")
    elif isinstance(weights, str) and weights == "auto":
        state, source = resolve_pretrained(arch)
        _load_body_weights(tv_model, state, spec, source.describe())
    else:
        path = Path(weights)
        _load_body_weights(tv_model, read_state_dict(path), spec, str(path))
        source = WeightsSource("file", path.name, str(path))
    stem, trunk = spec.cut(tv_model)
    return Classifier(nn.Sequential(*stem), nn.Sequential(*trunk), n_classes), source


def has_local_weights(arch: str) -> bool:
    """True when ImageNet weights for `arch` are on this machine (no download needed)."""
    return find_local_weights(arch) is not None


def best_available_arch() -> str:
    """The most preferred architecture whose weights are here; resnet34 if none are."""
    return next((a for a in PREFERENCE if has_local_weights(a)), "resnet34")
