"""`guiclassifier train` under torchrun: two CPU processes (gloo) give one model and the same kind
of metrics as a single process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from guiclassifier.core.distributed import DistInfo, shard

ARGS = ["--size", "32", "--bs", "4", "--workers", "0", "--arch", "resnet18", "--weights", "random",
        "--epochs-scale", "0.2", "--quiet"]


def test_shards_are_equal_and_cover_everything() -> None:
    items = list(range(7))
    parts = [shard(items, DistInfo(r, 3, r)) for r in range(3)]
    assert [len(p) for p in parts] == [3, 3, 3]
    assert set().union(*parts) == set(items)
    assert shard(items, None) == items


def _epoch_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.strip()[:1].isdigit() and "%" in line]


@pytest.mark.timeout(600)
def test_train_under_torchrun_two_processes(dataset: Path, tmp_path: Path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    multi = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "guiclassifier",
                            "train", str(dataset), *ARGS, "--out", str(tmp_path / "multi.gcm")],
                           capture_output=True, text=True, timeout=540, env=env, cwd=tmp_path)
    assert multi.returncode == 0, multi.stdout[-3000:] + multi.stderr[-3000:]
    single = subprocess.run([sys.executable, "-m", "guiclassifier", "train", str(dataset), *ARGS,
                             "--out", str(tmp_path / "single.gcm")],
                            capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.glob("*.gcm")) == ["multi.gcm", "single.gcm"]
    assert "x 2 processes" in multi.stdout and multi.stdout.count("validation accuracy") == 1
    assert len(_epoch_lines(multi.stdout)) == len(_epoch_lines(single.stdout)) == 3

    from guiclassifier import Learner

    model = Learner.load(tmp_path / "multi.gcm")
    fits = [h for h in model.history if h["kind"] == "fit"]
    assert len(fits) == 3 and all(len(f["epochs"]) == 1 for f in fits)
    assert all(0.0 <= f["epochs"][0]["accuracy"] <= 1.0 for f in fits)


SAME_WEIGHTS = r"""
import sys
from pathlib import Path
from guiclassifier import ImageData, Learner
from guiclassifier.core.distributed import init_from_env, shutdown
from guiclassifier.core.precompute import body_digest
import hashlib, torch
info, device = init_from_env("cpu")
data = ImageData.from_folder(sys.argv[1], size=32, bs=4, num_workers=0, seed=0)
learner = Learner.pretrained("resnet18", data, weights=None, device=device, dist_info=info)
learner.unfreeze()
result = learner.fit(0.01, 1)
h = hashlib.sha256()
for k, v in learner.model.state_dict().items():
    h.update(v.numpy().tobytes())
Path(sys.argv[2], f"rank{info.rank}.txt").write_text(f"{h.hexdigest()} {learner._n_train_batches(None, None)} "
                                                     f"{result.epochs[0].valid_loss:.6f}")
shutdown()
"""


@pytest.mark.timeout(300)
def test_processes_hold_identical_weights(dataset: Path, tmp_path: Path) -> None:
    script = tmp_path / "same.py"
    script.write_text(SAME_WEIGHTS)
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", str(script), str(dataset),
                             str(tmp_path)], capture_output=True, text=True, timeout=280,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (tmp_path / "rank0.txt").read_text().split(), (tmp_path / "rank1.txt").read_text().split()
    assert rank0 == rank1  # same weights, same batch count, same reduced valid loss
    assert int(rank0[1]) == 3  # 24 images / 2 processes / bs 4


def test_more_processes_than_gpus_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """NCCL cannot put two processes on one GPU: say so before joining the group."""
    import torch

    from guiclassifier.core.distributed import init_from_env
    from guiclassifier.core.errors import GuiClassifierError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    with pytest.raises(GuiClassifierError, match="started 2 processes .* has 1 GPU: use --nproc_per_node 1"):
        init_from_env("auto")
