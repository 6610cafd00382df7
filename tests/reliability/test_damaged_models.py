"""Damaged and crafted model files are refused with one line naming what is wrong, never loaded
into a model that answers "bag nan%" (issue 14, findings 1-3 for model files)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from guiclassifier import Learner
from guiclassifier.core.errors import ModelFileError
from guiclassifier.core.model_checks import DIGEST_KEY


@pytest.fixture
def saved(tiny_learner: Learner, tmp_path: Path) -> Path:
    return tiny_learner.save(tmp_path / "good.gcm")


def _crafted(saved: Path, change: Callable[[dict], None], keep_digest: bool = False) -> Path:
    """The saved file with `change` applied as a crafter would: the checksum dropped (an old
    file's) or left stale."""
    payload = torch.load(saved, weights_only=True)
    change(payload)
    if not keep_digest:
        payload.pop(DIGEST_KEY, None)
    out = saved.with_name("crafted.gcm")
    torch.save(payload, out)
    return out


def _set(key: str, value) -> Callable[[dict], None]:
    return lambda p: p.__setitem__(key, value)


def _head_nan(p: dict) -> None:
    name = next(k for k in p["state_dict"] if k.startswith("head") and k.endswith("weight"))
    p["state_dict"][name] = torch.full_like(p["state_dict"][name], math.nan)


def _std_zero(p: dict) -> None:
    p["state_dict"]["normalize.std"] = torch.zeros_like(p["state_dict"]["normalize.std"])


def _reference_nan(p: dict) -> None:
    p["reference_samples"] = torch.full((4, 8), math.nan)
    p["reference_threshold"] = 1.0


CASES = {
    "NaN head weights": (_head_nan, "NaN or infinite"),
    "normalisation std 0": (_std_zero, "divides by zero"),
    "image size 0": (_set("size", 0), "image size"),
    "image size 3.7": (_set("size", 3.7), "image size"),
    "image size as text": (_set("size", "224"), "image size"),
    "enormous image size": (_set("size", 10**12), "image size"),
    "classes as a string": (_set("classes", "ab"), "class names are not a list"),
    "classes None": (_set("classes", None), "class names are not a list"),
    "duplicate classes": (_set("classes", ["cat", "cat"]), "repeat"),
    "empty class name": (_set("classes", ["cat", " "]), "empty"),
    "arch a list": (_set("arch", ["resnet18"]), "architecture name is not text"),
    "history an int": (_set("history_json", 5), "history is not text"),
    "state_dict a string": (_set("state_dict", "weights"), "not a set of named tensors"),
    "frozen groups 7": (_set("frozen_groups", 7), "frozen layer groups"),
    "NaN familiarity samples": (_reference_nan, "familiarity reference"),
    "format version null (found by test_fuzz)": (_set("format_version", None), "format version is not a number"),
    "one class (found by test_fuzz)": (_set("classes", ["cat"]), "it has 1 class "),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_damaged_or_crafted_header_is_refused_in_one_line(saved: Path, name: str) -> None:
    change, words = CASES[name]
    with pytest.raises(ModelFileError, match=words) as info:
        Learner.load(_crafted(saved, change))
    assert "\n" not in str(info.value) and "is damaged" in str(info.value) or "unknown" in str(info.value)


def test_a_flipped_byte_is_damage_not_a_changed_weight(saved: Path) -> None:
    data = bytearray(saved.read_bytes())
    payload = torch.load(saved, weights_only=True)
    target = payload["state_dict"]["head.1.weight" if "head.1.weight" in payload["state_dict"] else
                                    next(iter(payload["state_dict"]))]
    # A byte inside a weight tensor's stored bytes: the zip reads fine, one value changes.
    needle = target.flatten()[:4].numpy().tobytes()
    at = data.find(needle)
    assert at > 0
    data[at + 1] ^= 0x10
    flipped = saved.with_name("flipped.gcm")
    flipped.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="do not match the checksum"):
        Learner.load(flipped)


def test_a_stale_checksum_is_refused_and_an_old_file_without_one_still_opens(saved: Path) -> None:
    with pytest.raises(ModelFileError, match="checksum"):
        Learner.load(_crafted(saved, _set("classes", ["dog", "cat"]), keep_digest=True))
    old = _crafted(saved, lambda p: None)  # as saved before checksums were written
    assert Learner.load(old).classes == ("cat", "dog")


def test_the_good_file_still_opens_and_predicts_finite(saved: Path, tiny_learner: Learner) -> None:
    model = Learner.load(saved)
    probs = model.predict([tiny_learner.data.valid_items[0].path])
    assert all(math.isfinite(p) for row in probs for p in row)
