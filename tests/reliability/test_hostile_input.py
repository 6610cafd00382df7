"""Folders the app cannot read, and recipe files that try to be more than data."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from guiclassifier.core.data import scan_folder
from guiclassifier.core.recipe import Recipe, RecipeError
from tests.conftest import make_image


def test_an_unreadable_folder_is_reported_and_the_rest_is_used(dataset: Path, monkeypatch) -> None:
    locked = dataset / "train" / "cat" / "locked"
    for i in range(3):
        make_image(locked / f"x{i}.png", (0, 0, 0), i)
    real_scandir = os.scandir

    def scandir(path=".", *args, **kwargs):
        if Path(os.fsdecode(path)) == locked:  # what a folder without read permission raises
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))
        return real_scandir(path, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", scandir)
    report = scan_folder(dataset)
    assert report.counts() == {"cat": (12, 4), "dog": (12, 4)}
    assert [(s.path, s.reason) for s in report.skipped] == \
        [(str(locked), "folder cannot be read (Permission denied)")]


@pytest.mark.parametrize("text, problem", [
    ('{"name": "x", "stages": [{"stage": "__import__(\'os\').system(\'touch PWNED\')"}]}', "is not one of"),
    ("!!python/object/apply:os.system ['touch PWNED']", "not valid JSON"),
    ('{"name": "x", "stages": "rm -rf /"}', "must be a non-empty list"),
])
def test_recipe_files_are_data_only(tmp_path: Path, monkeypatch, text: str, problem: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.json").write_text(text)
    with pytest.raises(RecipeError, match=problem):
        Recipe.load(tmp_path / "r.json")
    assert not (tmp_path / "PWNED").exists()
