"""One process vs several under torchrun (DistributedDataParallel): the whole lesson1 recipe,
same data, arch, size and per-process batch size, cold activation cache, wall time and accuracy.

On a CPU the processes share the cores (each gets cores / N threads, gloo); on a GPU machine run
it with `--device cuda --procs 1,N` where N is the number of GPUs (nccl, one GPU a process).
The batch size is per process, so N processes step on N times as many images at the same lr.

Run: .venv/bin/python benchmarks/data_parallel.py [--data DIR] [--procs 1,2] [--size 64] [--bs 32]
     [--arch mobilenet_v2] [--device cpu] [--epochs-scale 1]
Run nothing else meanwhile.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEMO, machine  # noqa: E402


def threads_each(n: int, device: str) -> int:
    """The CPU's cores shared out between the processes (one thread a process on a GPU)."""
    return max(1, (os.cpu_count() or 1) // n) if device == "cpu" else 1


def train(n: int, args: argparse.Namespace, folder: Path) -> tuple[float, str, str]:
    """Wall seconds, the printed validation accuracy and the epochs of one `guiclassifier train`
    with n processes."""
    flags = ["train", str(args.data), "--size", str(args.size), "--bs", str(args.bs), "--arch", args.arch,
             "--device", args.device, "--epochs-scale", str(args.epochs_scale), "--seed", "0", "--quiet",
             "--out", str(folder / f"model-{n}.gcm")]
    if n == 1:
        command = [sys.executable, "-m", "guiclassifier", *flags]
    else:
        torchrun = Path(sys.executable).with_name("torchrun")
        command = [str(torchrun), "--standalone", "--nproc_per_node", str(n), "-m", "guiclassifier", *flags]
    threads = threads_each(n, args.device)
    env = {**os.environ, "GUICLASSIFIER_CACHE_DIR": str(folder / f"cache-{n}"),
           "GUICLASSIFIER_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{n} process(es) failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    found = re.search(r"validation accuracy: ([\d.]+%.*)", done.stdout)
    return seconds, found.group(1) if found else "?", epochs_trained(folder / f"model-{n}.gcm")


def epochs_trained(model: Path) -> str:
    """The epochs of each fit, as the model's history keeps them ("1+2+7": until-overfit may stop early)."""
    from guiclassifier import Learner

    fits = [h for h in Learner.load(model, device="cpu").history if h.get("kind") == "fit"]
    return "+".join(str(len(f["epochs"])) for f in fits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEMO)
    parser.add_argument("--procs", default="1,2")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--bs", type=int, default=32)
    parser.add_argument("--arch", default="mobilenet_v2")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs-scale", type=float, default=1.0)
    args = parser.parse_args()
    print(machine())
    print(f"{args.data}, {args.arch}, {args.size} px, bs {args.bs} a process, lesson1 x {args.epochs_scale}, "
          f"{args.device}")
    print("| processes | threads each | wall time | epochs (each fit) | validation accuracy |\n"
          "| ---: | ---: | ---: | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="gc-ddp-") as tmp:
        for n in (int(p) for p in args.procs.split(",")):
            seconds, accuracy, epochs = train(n, args, Path(tmp))
            print(f"| {n} | {threads_each(n, args.device)} | {seconds:.1f} s | {epochs} | {accuracy} |", flush=True)


if __name__ == "__main__":
    main()
