"""Architecture registry, fastai head, layer groups, freezing, and weights resolution."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from torchvision.models import get_model

from guiclassifier.core import weights as weights_mod
from guiclassifier.core.errors import WeightsError
from guiclassifier.core.models import ARCHS, build_classifier


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_every_arch_builds_with_three_groups(arch: str) -> None:
    model, source = build_classifier(arch, 5, weights=None)
    assert source.kind == "random"
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 5)
    groups = model.layer_groups
    assert len(groups) == 3
    counts = [sum(p.numel() for p in g.parameters()) for g in groups]
    assert all(c > 0 for c in counts)
    assert sum(counts) == sum(p.numel() for p in model.parameters())


def test_head_is_fastais() -> None:
    model, _ = build_classifier("resnet34", 2, weights=None)
    kinds = [type(m).__name__ for m in model.head]
    assert kinds == ["BatchNorm1d", "Dropout", "Linear", "ReLU", "BatchNorm1d", "Dropout", "Linear"]
    assert model.head[0].num_features == 1024  # resnet34: 512 channels, avg ++ max
    assert model.head[1].p == 0.25 and model.head[5].p == 0.5
    assert model.head[2].out_features == 512


def test_resnet_split_after_layer2() -> None:
    model, _ = build_classifier("resnet34", 2, weights=None)
    tv = get_model("resnet34")
    assert model.stem[-1][0].conv1.weight.shape == tv.layer2[0].conv1.weight.shape
    assert model.trunk[0][0].conv1.weight.shape == tv.layer3[0].conv1.weight.shape


def test_freeze_sets_requires_grad_and_batchnorm_mode() -> None:
    model, _ = build_classifier("resnet18", 2, weights=None)
    model.freeze_to(2)
    model.train()
    body_bn = [m for m in model.stem.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(not m.training for m in body_bn)
    assert all(not p.requires_grad for p in model.stem.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    model.freeze_to(0)
    assert all(m.training for m in body_bn)
    assert all(p.requires_grad for p in model.parameters())


def test_auto_weights_come_from_the_offline_package() -> None:
    source = weights_mod.find_local_weights("mobilenet_v2")
    assert source is not None and source.kind == "offline_package"
    model, source = build_classifier("mobilenet_v2", 3, weights="auto")
    tv_state = weights_mod.read_state_dict(source.path)
    assert torch.equal(model.stem[0][0].weight, tv_state["features.0.0.weight"])


def test_hub_cache_is_preferred_and_checked(tmp_path: Path) -> None:
    offline = weights_mod.find_local_weights("mobilenet_v2")
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "mobilenet_v2-b0353104.pth").write_bytes(Path(offline.path).read_bytes())
    _, source = build_classifier("mobilenet_v2", 2)
    assert source.kind == "hub_cache"
    (hub / "mobilenet_v2-b0353104.pth").write_bytes(b"corrupted")
    with pytest.raises(WeightsError, match="damaged"):
        build_classifier("mobilenet_v2", 2)


def test_damaged_offline_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = weights_mod.OFFLINE_FILES["mobilenet_v2-b0353104.pth"]
    monkeypatch.setitem(weights_mod.OFFLINE_FILES, "mobilenet_v2-b0353104.pth",
                        weights_mod.OfflineFile(entry.package, entry.relpath, "0" * 64))
    with pytest.raises(WeightsError, match="sha256"):
        build_classifier("mobilenet_v2", 2)


def test_missing_weights_explain_what_to_do() -> None:
    with pytest.raises(WeightsError, match=r"resnet34.*weights file.*random"):
        build_classifier("resnet34", 2)


def test_user_weights_file_is_loaded(tmp_path: Path) -> None:
    tv = get_model("resnet18", num_classes=7)  # its own classifier may differ
    torch.save(tv.state_dict(), tmp_path / "mine.pth")
    model, source = build_classifier("resnet18", 2, weights=tmp_path / "mine.pth")
    assert source.kind == "file"
    assert torch.equal(model.stem[0].weight, tv.conv1.weight)


def test_user_weights_for_another_arch_name_the_keys(tmp_path: Path) -> None:
    torch.save(get_model("resnet18").state_dict(), tmp_path / "r18.pth")
    with pytest.raises(WeightsError) as info:
        build_classifier("resnet34", 2, weights=tmp_path / "r18.pth")
    assert "missing: layer1.2." in str(info.value)
    with pytest.raises(WeightsError, match=r"unexpected: .*features\.0\.0\.weight"):
        torch.save(get_model("mobilenet_v2").state_dict(), tmp_path / "m.pth")
        build_classifier("resnet18", 2, weights=tmp_path / "m.pth")


class _Evil:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_pickled_code_in_weights_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"conv1.weight": _Evil()}, f)
    torch.save({"x": _Evil()}, tmp_path / "evil2.pth")
    for name in ("evil.pth", "evil2.pth"):
        with pytest.raises(WeightsError, match="not a readable"):
            build_classifier("resnet18", 2, weights=tmp_path / name)
    assert not (tmp_path / "PWNED").exists()


def test_not_a_state_dict(tmp_path: Path) -> None:
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(WeightsError, match="state dict"):
        build_classifier("resnet18", 2, weights=tmp_path / "list.pth")


def test_unknown_arch() -> None:
    with pytest.raises(WeightsError, match="Available"):
        build_classifier("vgg99", 2, weights=None)


def test_bn_freeze_keeps_body_statistics_when_unfrozen() -> None:
    model, _ = build_classifier("resnet18", 2, weights=None)
    model.freeze_to(0)
    model.bn_freeze = True
    model.train()
    body_bn = [m for g in model.layer_groups[:2] for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    head_bn = [m for m in model.head if isinstance(m, torch.nn.BatchNorm1d)]
    assert body_bn and all(not m.training for m in body_bn)
    assert all(m.training for m in head_bn)
    assert all(p.requires_grad for p in model.parameters())  # the weights still train
    model.bn_freeze = False
    model.train()
    assert all(m.training for m in body_bn)


def test_the_torch_free_catalogue_lists_exactly_the_buildable_architectures() -> None:
    from guiclassifier.core.archs import DESCRIPTIONS, PREFERENCE

    assert set(DESCRIPTIONS) == set(ARCHS) == set(PREFERENCE)
    assert len(PREFERENCE) == len(set(PREFERENCE))
