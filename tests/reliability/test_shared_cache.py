"""Two processes of the app building the same activation cache at the same time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

BUILD = """
import json, pathlib, sys, time, numpy as np
from guiclassifier import ImageData, Learner
from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.events import Emitter
data = ImageData.from_folder(sys.argv[1], size=32, bs=8, num_workers=0, seed=0)
learner = Learner.pretrained("resnet18", data, weights=None, device="cpu", precompute=True)
# Start building together, so both write the same entry at the same time.
pathlib.Path(sys.argv[2], sys.argv[3]).touch()
while len(list(pathlib.Path(sys.argv[2]).iterdir())) < 2:
    time.sleep(0.01)
acts = learner._split_activations("train", Emitter(None), CancelToken())
print(json.dumps({"entry": acts.path.name, "sum": float(np.asarray(acts.features).sum()), "rows": len(acts)}))
"""


def test_two_processes_share_one_cache_without_corrupting_it(dataset: Path, tmp_path: Path) -> None:
    cache = tmp_path / "shared-cache"
    env = {**os.environ, "GUICLASSIFIER_CACHE_DIR": str(cache)}
    ready = tmp_path / "ready"
    ready.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", BUILD, str(dataset), str(ready), str(i)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    # Same weights (same seed), same images: the same entry, whoever renamed it into place first.
    assert results[0]["entry"] == results[1]["entry"]
    assert results[0]["rows"] == results[1]["rows"] == 24
    assert np.isclose(results[0]["sum"], results[1]["sum"])
    activations = cache / "activations"
    entries = [p.name for p in activations.iterdir()]
    assert entries == [results[0]["entry"]]  # no half-written or temporary folder left behind
    assert {f.name for f in (activations / entries[0]).iterdir()} >= {"features.npy", "meta.json", "rows.npy"}


HOLD = """
import json, pathlib, sys, time, numpy as np
from guiclassifier import ImageData, Learner
from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.events import Emitter
data = ImageData.from_folder(sys.argv[1], size=32, bs=8, num_workers=0, seed=0)
learner = Learner.pretrained("resnet18", data, weights=None, device="cpu", precompute=True)
acts = learner._split_activations("train", Emitter(None), CancelToken())
before = float(np.asarray(acts.features).sum())
pathlib.Path(sys.argv[2], sys.argv[3]).touch()  # built; now wait while the other one builds and trims
while len(list(pathlib.Path(sys.argv[2]).iterdir())) < 2:
    time.sleep(0.01)
time.sleep(1.0)
learner.fit(1e-2, 1)  # trims again at the end, with the other's entries in use
print(json.dumps({"entry": acts.path.name, "there": acts.path.is_dir(), "same": float(np.asarray(acts.features).sum()) == before,
                  "cached": learner._split_activations("train", Emitter(None), CancelToken()).path == acts.path}))
"""


def test_with_a_limit_of_nothing_two_running_jobs_keep_their_entries(dataset_factory, tmp_path: Path) -> None:
    from guiclassifier.core.cache_limit import choose_limit

    cache = tmp_path / "shared-cache"
    choose_limit(cache, 0)  # every trim removes all it may
    env = {**os.environ, "GUICLASSIFIER_CACHE_DIR": str(cache)}
    ready = tmp_path / "ready"
    ready.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", HOLD, str(dataset_factory()), str(ready), str(i)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert results[0]["entry"] != results[1]["entry"]
    assert all(r["there"] and r["same"] and r["cached"] for r in results), results
    # Both processes have ended: nothing holds the entries now, and the next trim removes them all.
    from guiclassifier.core.cache_dirs import cache_entries, trim_caches

    trim_caches(cache)
    assert cache_entries(cache) == []
