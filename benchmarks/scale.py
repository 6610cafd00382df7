"""Scale: time and memory of scanning and precomputing as the dataset grows (1k, 10k, 50k images).

Each size is a folder of small PNGs (the demo's 28 px images, copied to distinct files) in the
class-folder layout, measured in a fresh process: scan_folder (every file decoded once), then
the frozen body's activations for train and valid (the activation cache, on disk), then one head
epoch from them. Memory is the process's own (loading processes apart), sampled every 20 ms:
anonymous memory (heap: what cannot be given back) and file-backed pages of the memory-mapped
activation cache (the kernel drops those under memory pressure and reads them again).
Target: time roughly linear in the number of images, memory flat.
Run: .venv/bin/python benchmarks/scale.py [--sizes 1000,10000,50000] [--size 64]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEMO, fresh_cache, machine  # noqa: E402

ARCH = "mobilenet_v2"


def make_folder(n: int) -> Path:
    """n distinct files (same pictures, different names and bytes on disk), 4 class folders."""
    root = Path(tempfile.mkdtemp(prefix=f"gc-scale-{n}-"))
    sources = sorted(DEMO.glob("train/*/*.png")) + sorted(DEMO.glob("valid/*/*.png"))
    blobs = [(p.parent.name, p.read_bytes()) for p in sources]
    for i in range(n):
        label, blob = blobs[i % len(blobs)]
        folder = root / label
        folder.mkdir(exist_ok=True)
        (folder / f"{i:06d}.png").write_bytes(blob)
    return root


class MemorySampler:
    """Peak RssAnon and RssFile of this process (Linux /proc), sampled on a thread."""

    def __init__(self) -> None:
        self.peak = {"RssAnon": 0, "RssFile": 0}
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def sample(self) -> dict[str, int]:
        now = {}
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in self.peak:
                now[key] = int(value.split()[0]) // 1024  # MB
                self.peak[key] = max(self.peak[key], now[key])
        return now

    def _run(self) -> None:
        while self.running:
            self.sample()
            time.sleep(0.02)

    def stop(self) -> dict[str, int]:
        self.running = False
        self.thread.join()
        self.sample()
        return self.peak


def child(folder: str, size: int) -> None:
    from guiclassifier.core.data import ImageData
    from guiclassifier.core.events import PrecomputeEnded
    from guiclassifier.core.learner import Learner

    fresh_cache()
    memory = MemorySampler()
    start = time.perf_counter()
    data = ImageData.from_folder(folder, size=size, bs=64, seed=42, augment="none")
    scan = time.perf_counter() - start
    scan_anon = memory.sample()["RssAnon"]
    learner = Learner.pretrained(ARCH, data, precompute=True, device="cpu")
    precompute: dict[str, float] = {}

    def on_event(event) -> None:
        if isinstance(event, PrecomputeEnded):
            precompute[event.split] = event.elapsed

    start = time.perf_counter()
    learner.fit(1e-2, 1, callbacks=on_event)
    total = time.perf_counter() - start
    peak = memory.stop()
    print(json.dumps({"scan": scan, "precompute": sum(precompute.values()),
                      "head_epoch": total - sum(precompute.values()), "anon_after_scan": scan_anon,
                      "anon_peak": peak["RssAnon"], "file_peak": peak["RssFile"],
                      "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.size)
        return
    print(machine())
    print(f"{ARCH} at {args.size} px, class folders of 28 px PNGs, 20% held out")
    print(f"{'images':>7} {'scan s':>8} {'per 1k':>7} {'precompute s':>13} {'per 1k':>7} "
          f"{'head epoch s':>13} {'heap MB: scanned':>17} {'peak':>6} {'mapped cache MB':>16} {'max RSS MB':>11}")
    for n in (int(s) for s in args.sizes.split(",")):
        folder = make_folder(n)
        try:
            out = subprocess.run([sys.executable, __file__, "--child", str(folder), "--size", str(args.size)],
                                 capture_output=True, text=True, check=True)
        finally:
            shutil.rmtree(folder)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{n:>7} {r['scan']:>8.1f} {r['scan'] / n * 1000:>7.2f} {r['precompute']:>13.1f} "
              f"{r['precompute'] / n * 1000:>7.2f} {r['head_epoch']:>13.2f} {r['anon_after_scan']:>17} "
              f"{r['anon_peak']:>6} {r['file_peak']:>16} {r['maxrss']:>11.0f}", flush=True)


if __name__ == "__main__":
    main()
