"""`guiclassifier train --resume` after the training process was killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from guiclassifier.core.checkpoint import checkpoint_paths, latest_checkpoint
from guiclassifier.core.recipe import Evaluate, Recipe, Train
from tests.cli.test_cli import TINY, run


def test_train_resumes_after_kill_9(dataset: Path, tmp_path: Path, capsys) -> None:
    recipe = tmp_path / "long.json"
    Recipe("long", (Train(0.05, n_cycle=12), Evaluate(False))).save(recipe)
    out = tmp_path / "m.gcm"
    argv = ["train", str(dataset), *TINY, "--recipe", str(recipe), "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "guiclassifier", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    folder = tmp_path / "m.gcm.checkpoints"
    deadline = time.time() + 120
    try:
        while latest_checkpoint(folder) is None:
            assert proc.poll() is None and time.time() < deadline, proc.communicate()
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL and not out.exists()

    code, stdout, stderr = run(capsys, *argv, "--resume", "--json-log", str(tmp_path / "log.jsonl"))
    assert code == 0, stdout + stderr
    assert "resuming from" in stdout and out.is_file()
    events = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    started = [e for e in events if e["event"] == "StageStarted"]
    assert [e["index"] for e in started] == [0, 1] and started[0]["description"].endswith("(resumed)")
    fit = next(e for e in events if e["event"] == "FitStarted")
    assert fit["total_epochs"] == 12
    epochs = [e["epoch"] for e in events if e["event"] == "EpochEnded"]
    assert epochs[-1] == 11 and epochs[0] >= 1  # went on from where the killed run was
    assert checkpoint_paths(folder) == []  # finished and saved: the checkpoints are gone


def test_resume_without_checkpoints_says_so(dataset: Path, tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "train", str(dataset), *TINY, "--out", str(tmp_path / "m.gcm"), "--resume")
    assert code == 2 and "Nothing to resume" in err
