"""`guiclassifier train` under torchrun: two CPU processes (gloo, DistributedDataParallel) give one
model and the same kind of metrics as a single process; a stop asked of one process stops them all
at one batch, and --resume goes on from there."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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


STOP_AND_RESUME = r"""
import hashlib, json, sys
from pathlib import Path
from guiclassifier import ImageData, Learner
from guiclassifier.core.checkpoint import CheckpointConfig, latest_checkpoint
from guiclassifier.core.distributed import barrier, init_from_env, shutdown
from guiclassifier.core.events import BatchEnded
info, device = init_from_env("cpu")
folder = Path(sys.argv[2])

def data():
    return ImageData.from_folder(sys.argv[1], size=32, bs=4, num_workers=0, seed=0)

def head_first():  # the wrappings a recipe goes through: the head on cached features, on images, all
    learner = Learner.pretrained("resnet18", data(), weights=None, device=device, dist_info=info)
    learner.precompute = True
    learner.fit(0.01, 1)
    learner.precompute = False
    learner.fit(0.01, 1)
    learner.unfreeze()
    return learner

def digest(learner):
    h = hashlib.sha256()
    for v in learner.model.state_dict().values():
        h.update(v.numpy().tobytes())
    return h.hexdigest()

whole = head_first()
fitted = whole.fit(0.01, 3)
report = {"whole": digest(whole), "wrapper": type(whole._trainable()).__name__}
for name, asked_after in (("step", 5), ("validation", 6)):
    batches = []

    def rank_1_asks_to_stop(event):
        if isinstance(event, BatchEnded):
            batches.append((event.epoch, event.batch))
            if info.rank == 1 and len(batches) == asked_after:
                info.stop_request.cancel()

    cut = head_first()
    stopped = cut.fit(0.01, 3, callbacks=rank_1_asks_to_stop, checkpoints=CheckpointConfig(folder / name))
    barrier(info)
    info.stop_request.reset()
    resumed, _ = Learner.resume(latest_checkpoint(folder / name), data(), device=device, dist_info=info)
    report[name] = {"batches": batches, "cancelled": stopped.cancelled, "epochs": len(stopped.epochs),
                    "resumed": digest(resumed)}
(folder / f"rank{info.rank}.json").write_text(json.dumps(report))
shutdown()
"""


@pytest.mark.timeout(300)
def test_processes_hold_identical_weights_stop_together_and_resume(dataset: Path, tmp_path: Path) -> None:
    script = tmp_path / "stop.py"
    script.write_text(STOP_AND_RESUME)
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", str(script), str(dataset),
                             str(tmp_path)], capture_output=True, text=True, timeout=280,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["wrapper"] == ranks[1]["wrapper"] == "DistributedDataParallel"
    # Every process holds the same weights after the head (cached and not) and the whole network.
    assert ranks[0]["whole"] == ranks[1]["whole"]
    # 3 batches an epoch (24 images / 2 processes / bs 4). Rank 1 asks after its 5th batch: both
    # stop before the 6th (at its training step); after its 6th, the last of epoch 2: both stop
    # in that epoch's validation. Epoch 1 is kept either way.
    first = [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1]]
    assert ranks[0]["step"]["batches"] == ranks[1]["step"]["batches"] == first
    assert ranks[0]["validation"]["batches"] == ranks[1]["validation"]["batches"] == first + [[1, 2]]
    assert all(r[name]["cancelled"] and r[name]["epochs"] == 1 for r in ranks for name in ("step", "validation"))
    # From the checkpoint rank 0 wrote after epoch 1, every process goes on to the weights an
    # uninterrupted run ends with.
    assert {r[name]["resumed"] for r in ranks for name in ("step", "validation")} == {ranks[0]["whole"]}


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


def _workers(launcher: int) -> list[int]:
    """The processes torchrun started (Linux: /proc lists each task's children)."""
    found = []
    for task in Path(f"/proc/{launcher}/task").iterdir():
        found += [int(pid) for pid in (task / "children").read_text().split()]
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds torchrun's processes through /proc")
@pytest.mark.timeout(300)
def test_ctrl_c_in_one_process_stops_the_run_and_resume_goes_on_under_torchrun(dataset: Path, tmp_path: Path) -> None:
    from guiclassifier.core.checkpoint import checkpoint_paths, latest_checkpoint
    from guiclassifier.core.recipe import Evaluate, Recipe, Train

    recipe = tmp_path / "long.json"
    Recipe("long", (Train(0.05, n_cycle=12), Evaluate(False))).save(recipe)
    out, folder = tmp_path / "m.gcm", tmp_path / "m.gcm.checkpoints"
    command = [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node", "2",
               "-m", "guiclassifier", "train", str(dataset), *ARGS[:-3], "--quiet", "--recipe", str(recipe), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                cwd=tmp_path)
    try:
        deadline = time.time() + 200
        while latest_checkpoint(folder) is None:
            assert launcher.poll() is None and time.time() < deadline, launcher.communicate()
            time.sleep(0.02)
        os.kill(_workers(launcher.pid)[-1], signal.SIGINT)  # one process, as a stray signal would
        stdout, stderr = launcher.communicate(timeout=120)
    finally:
        launcher.kill()
    assert "stopping every process at the next training step" in stderr, stderr[-3000:]
    assert "stopped after 0 of 2 stages" in stdout and "Stopped by the user after 1 of 12" in stdout, stdout[-3000:]
    assert checkpoint_paths(folder)

    log = tmp_path / "log.jsonl"
    again = subprocess.run([*command, "--resume", "--json-log", str(log)], capture_output=True, text=True,
                           timeout=240, env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "resuming from" in again.stdout and "model saved to" in again.stdout
    epochs = [e["epoch"] for e in map(json.loads, log.read_text().splitlines()) if e["event"] == "EpochEnded"]
    assert epochs[-1] == 11 and epochs[0] >= 1  # went on from the stopped run's last checkpoint
    assert checkpoint_paths(folder) == []
