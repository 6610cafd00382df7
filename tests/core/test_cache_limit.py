"""The caches' size limit: least recently used entries go first, entries in use stay, two processes
trimming or clearing at once lose nothing valid, and a later run still finds its entries."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from guiclassifier.core.cache_dirs import (
    cache_entries,
    cache_report,
    cache_root,
    clear_caches,
    trim_caches,
)
from guiclassifier.core.cache_lease import REMOVING_PREFIX, hold
from guiclassifier.core.cache_limit import automatic_limit, choose_limit, chosen_limit

ENTRY_BYTES = 1000


def fake_entry(root: Path, name: str, used: float, size: int = ENTRY_BYTES) -> Path:
    """An activation entry's files (the sizes matter here, not the numbers), last used at `used`."""
    folder = root / "activations" / name
    folder.mkdir(parents=True)
    (folder / "features.npy").write_bytes(b"f" * (size - 20))
    (folder / "meta.json").write_text("{}".ljust(20))
    os.utime(folder / "meta.json", (used, used))
    return folder


def fake_copy(root: Path, name: str, used: float, size: int = ENTRY_BYTES) -> Path:
    path = root / "resized" / "64" / name[:2] / f"{name}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"j" * size)
    os.utime(path, (used, used))
    return path


def names(root: Path) -> set[str]:
    return {e.name for e in cache_entries(root)}


def test_trim_keeps_the_cache_under_its_limit_removing_the_least_recently_used() -> None:
    root = cache_root()
    now = time.time()
    for i in range(30):  # entry i last used i minutes after the first; copies and folders interleaved
        (fake_entry if i % 2 else fake_copy)(root, f"e{i:02d}", now - 3600 + 60 * i)
    choose_limit(root, 10 * ENTRY_BYTES + 500)
    removal = trim_caches(root)
    assert (removal.removed, removal.freed_bytes, removal.kept_in_use) == (20, 20 * ENTRY_BYTES, 0)
    assert names(root) == {f"e{i:02d}" for i in range(20, 30) if i % 2} | {f"e{i:02d}.jpg" for i in range(20, 30)
                                                                           if not i % 2}
    report = cache_report(root)
    assert report.total_bytes == 10 * ENTRY_BYTES <= report.limit_bytes and not report.limit_automatic
    assert trim_caches(root).removed == 0  # under the limit: nothing more goes


def test_an_entry_read_again_is_kept_over_newer_ones_never_read_since() -> None:
    from guiclassifier.core.precompute import _open_entry

    root = cache_root()
    now = time.time()
    old = fake_entry(root, "old-but-read", now - 7200)
    for i in range(4):
        fake_entry(root, f"newer{i}", now - 3600 + i)
    import numpy as np

    for name in ("features.npy", "labels.npy", "rows.npy"):
        np.save(old / name, np.zeros(2, dtype=np.float32 if name == "features.npy" else np.int64))
    entry = _open_entry(old)  # what a run does when it finds its entry: marks it used
    del entry
    choose_limit(root, 3 * ENTRY_BYTES)
    trim_caches(root)
    assert names(root) == {"old-but-read", "newer2", "newer3"}


def test_an_entry_in_use_survives_trim_and_clear_until_released() -> None:
    root = cache_root()
    now = time.time()
    in_use = fake_entry(root, "in-use", now - 9999)  # the oldest: first in line
    fake_entry(root, "idle", now)
    lease = hold(in_use)
    choose_limit(root, 0)
    removal = trim_caches(root)
    assert (removal.removed, removal.kept_in_use) == (1, 1) and names(root) == {"in-use"}
    assert (in_use / "features.npy").read_bytes() == b"f" * (ENTRY_BYTES - 20)
    assert clear_caches(root).kept_in_use == 1 and in_use.is_dir()
    lease.close()
    assert clear_caches(root).removed == 1 and names(root) == set()


def test_a_lease_taken_after_a_removal_finds_the_entry_gone(tmp_path: Path) -> None:
    from guiclassifier.core.precompute import _open_entry

    entry = fake_entry(cache_root(), "x", time.time())
    clear_caches()
    with pytest.raises(FileNotFoundError):
        _open_entry(entry)


TRIM_SCRIPT = """
import sys, time
from pathlib import Path
from guiclassifier.core.cache_dirs import {what}
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
r = {what}(Path(sys.argv[1]))
print(r.removed, r.freed_bytes, r.kept_in_use)
"""


def run_together(what: str, root: Path, n: int = 2) -> list[tuple[int, int, int]]:
    go = root.parent / f"go-{what}"
    procs = [subprocess.Popen([sys.executable, "-c", TRIM_SCRIPT.format(what=what), str(root), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(n)]
    time.sleep(1.0)  # both waiting for the start signal
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(tuple(int(x) for x in out.split()))
    return results


def test_two_processes_trimming_at_once_remove_exactly_the_least_recently_used() -> None:
    root = cache_root()
    now = time.time()
    for i in range(300):
        (fake_entry if i % 3 else fake_copy)(root, f"e{i:03d}", now - 10_000 + i)
    leased = hold(root / "activations" / "e001")  # in use and among the oldest
    choose_limit(root, 100 * ENTRY_BYTES)
    results = run_together("trim_caches", root)
    assert sum(r[0] for r in results) == 200  # one trimmed, the other found the lock taken or nothing to do
    survivors = names(root)
    assert survivors == {"e001"} | {f"e{i:03d}" if i % 3 else f"e{i:03d}.jpg" for i in range(201, 300)}
    for entry in cache_entries(root):  # every survivor whole
        if entry.kind == "activations":
            assert (Path(entry.path) / "features.npy").stat().st_size == ENTRY_BYTES - 20
            assert (Path(entry.path) / "meta.json").is_file()
        else:
            assert os.stat(entry.path).st_size == ENTRY_BYTES
    assert not [p for p in (root / "activations").iterdir() if p.name.startswith(REMOVING_PREFIX)]
    leased.close()


def test_two_processes_clearing_at_once_remove_each_entry_once_and_keep_the_one_in_use() -> None:
    root = cache_root()
    now = time.time()
    for i in range(300):
        fake_entry(root, f"e{i:03d}", now - i)
    leased = hold(root / "activations" / "e150")
    results = run_together("clear_caches", root)
    assert sum(r[0] for r in results) == 299 and sum(r[1] for r in results) == 299 * ENTRY_BYTES
    assert names(root) == {"e150"} and (root / "activations" / "e150" / "meta.json").is_file()
    assert not [p for p in (root / "activations").iterdir() if p.name.startswith(".")]
    leased.close()


def test_leftovers_of_killed_processes_are_removed_once_stale() -> None:
    root = cache_root()
    activations = root / "activations"
    fresh, stale = activations / ".abc.123", activations / ".def.456"  # precompute's temporary folders
    for folder in (fresh, stale):
        folder.mkdir(parents=True)
        (folder / "features.npy").write_bytes(b"x")
    half_removed = activations / f"{REMOVING_PREFIX}ghi-1234"
    half_removed.mkdir()
    tmp_copy = fake_copy(root, "ab", time.time()).parent / ".ab.x.tmp"
    tmp_copy.write_bytes(b"x")
    three_days_ago = time.time() - 3 * 24 * 3600
    for path in (stale, tmp_copy):
        os.utime(path, (three_days_ago, three_days_ago))
    trim_caches(root)
    assert fresh.is_dir() and not stale.exists() and not half_removed.exists() and not tmp_copy.exists()


def test_the_limit_is_the_users_or_a_share_of_the_disk(tmp_path: Path) -> None:
    root = tmp_path / "new" / "cache"  # not there yet: the disk it would be on counts
    assert chosen_limit(root) is None
    assert 0 < automatic_limit(root, 0) <= 5_000_000_000
    choose_limit(root, 123)
    assert chosen_limit(root) == 123 and cache_report(root).limit_bytes == 123
    choose_limit(root, None)
    assert chosen_limit(root) is None
    (root / "settings.json").write_text("{not json")
    assert chosen_limit(root) is None  # a damaged settings file: automatic again
    with pytest.raises(ValueError):
        choose_limit(root, -1)


def test_sizes_are_read_as_people_write_them() -> None:
    from guiclassifier.core.text import parse_byte_size

    assert [parse_byte_size(t) for t in ("5GB", "500 MB", "2.5g", "1000", "0", "3 kB", "1TB")] == \
        [5 * 10**9, 500 * 10**6, 2_500_000_000, 1000, 0, 3000, 10**12]
    for bad in ("", "GB", "5 XB", "-1GB", "nan", "inf", "5 GB GB"):
        with pytest.raises(ValueError):
            parse_byte_size(bad)


def test_a_second_run_reuses_its_entries_after_other_entries_were_evicted(dataset_factory) -> None:
    from guiclassifier import ImageData, Learner
    from guiclassifier.core.events import PrecomputeEnded

    def fit(root: Path) -> dict[str, bool]:
        events: list = []
        data = ImageData.from_folder(root, size=32, bs=8, num_workers=0, seed=0)
        learner = Learner.pretrained("resnet18", data, weights=None, device="cpu", precompute=True)
        learner.fit(1e-2, 1, callbacks=events.append)
        return {e.split: e.from_cache for e in events if isinstance(e, PrecomputeEnded)}

    cache = cache_root()
    first, other = dataset_factory(), dataset_factory()
    assert fit(first) == {"train": False, "valid": False}
    mine = names(cache)
    now = time.time()
    for i in range(20):  # what older projects left, used before this run
        fake_entry(cache, f"older{i}", now - 86_400 + i, size=50_000)
    mine_bytes = sum(e.size_bytes for e in cache_entries(cache) if e.name in mine)
    choose_limit(cache, 2 * mine_bytes + 10_000)  # both datasets' entries (same sizes), none of the older
    assert fit(other) == {"train": False, "valid": False}  # writes two entries, trims the older ones
    assert not any(n.startswith("older") for n in names(cache))
    assert mine <= names(cache)
    assert fit(first) == {"train": True, "valid": True}
    assert cache_report(cache).total_bytes <= cache_report(cache).limit_bytes
