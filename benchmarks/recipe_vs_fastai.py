"""The whole lesson-1 recipe, ours vs fastai v2, side by side: wall time and accuracy (issue 19).

For each dataset, PAIRS times: our `guiclassifier train DATA` recipe (lesson1, no flags: what
benchmarks/recipe_quality.py's auto column runs) on a cold activation cache, then the real fastai
package (benchmarks/peer_fastai.py, its own venv) on the lesson recipe with lr=1e-2 (fit_sgdr(1,1),
fit_sgdr(2,1), unfreeze, fit_sgdr(3,1,cycle_mult=2, lr_max=slice(lr/9, lr)), TTA). Same folders,
MobileNetV2 with the same ImageNet weights, 64 px, bs 64, seed = pair number. Reported: the median
of each side's wall times, their ratio (the bar: ours <= 0.5x fastai's) and mean TTA accuracy
(the bar: ours >= fastai's).

Run: .venv/bin/python benchmarks/recipe_vs_fastai.py [--datasets demo,fm-large4] [--pairs 3]
     [--json-out FILE]
Run nothing else meanwhile (both sides use every core).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import bench_dir, build  # noqa: E402
from recipe_quality import BS, SIZE, run_auto, run_fastai  # noqa: E402

from common import machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="demo,fm-large4")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    out = args.json_out or bench_dir() / f"recipe_vs_fastai-{time.strftime('%Y%m%d-%H%M%S')}.json"
    print(machine(), f"- MobileNetV2, {SIZE} px, bs {BS}", flush=True)
    runs: list[dict[str, Any]] = []
    for name in args.datasets.split(","):
        data_dir = build(name)
        for seed in range(args.pairs):
            for side in ("ours", "fastai"):
                result = run_auto(data_dir, seed, {}) if side == "ours" else run_fastai(data_dir, seed)
                accuracy = result["accuracy"] if side == "ours" else result["accuracy_tta"]
                epochs = result.get("epochs")
                epochs = len(epochs) if side == "fastai" and isinstance(epochs, list) else epochs  # one dict each
                runs.append({"dataset": name, "seed": seed, "side": side, "accuracy": accuracy,
                             "seconds": result["seconds"], "epochs": epochs})
                print(f"{name:<12} pair {seed}  {side:<6} {result['seconds']:6.1f} s  TTA accuracy {accuracy:6.1%}  "
                      f"epochs {epochs}", flush=True)
                out.write_text(json.dumps({"machine": machine(), "runs": runs}, indent=1))
    print(f"\nMedian wall time and mean TTA accuracy over {args.pairs} pairs. Details: {out}")
    print(f"{'dataset':<12}{'ours':>10}{'fastai':>10}{'ratio':>8}{'ours acc':>10}{'fastai acc':>12}")
    for name in args.datasets.split(","):
        side = {s: [r for r in runs if r["dataset"] == name and r["side"] == s] for s in ("ours", "fastai")}
        time_of = {s: statistics.median(r["seconds"] for r in rs) for s, rs in side.items()}
        acc_of = {s: statistics.mean(r["accuracy"] for r in rs) for s, rs in side.items()}
        print(f"{name:<12}{time_of['ours']:9.1f}s{time_of['fastai']:9.1f}s{time_of['ours'] / time_of['fastai']:7.2f}x"
              f"{acc_of['ours']:10.1%}{acc_of['fastai']:12.1%}")


if __name__ == "__main__":
    main()
