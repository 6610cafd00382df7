"""How good is the model the automatic recipe makes? lesson1 (no flags) vs an oracle vs fastai v2.

Columns, per dataset and seed (MobileNetV2 pretrained, 64 px, bs 64, TTA accuracy):
- auto: `run_recipe(lesson1())`, exactly what `guiclassifier train DATA` runs;
- oracle: the same stages with fixed learning rates, the best of a grid per stage, chosen by
  looking at the validation set (a bound an lr rule should come close to): each head lr of the
  grid for both head stages, then from the best head each top lr of the grid (earlier groups
  divided by the recipe's ratios) for the unfrozen stage;
- fastai: the real `fastai` package in its own venv (benchmarks/peer_fastai.py), the lesson
  recipe with lr=1e-2: fit_sgdr(1,1), fit_sgdr(2,1), unfreeze, fit_sgdr(3,1,cycle_mult=2,
  lr_max=slice(lr/9, lr)), TTA.

`--config` runs the auto column with other engine defaults (optimizer, BatchNorm handling), for
choosing them. Every run's details (curves, chosen lrs, cycles) go to a JSON file for later study.

Run: .venv/bin/python benchmarks/recipe_quality.py [--datasets demo,fm-shoes3,...] [--seeds 0,1,2]
     [--columns auto,oracle,fastai] [--config NAME ...] [--json-out FILE]
Run nothing else meanwhile: two trainings on one 2-core machine slow each other down many times.
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
from common import fresh_cache, machine  # noqa: E402
from datasets import SUBSETS, bench_dir, build  # noqa: E402

from guiclassifier import ImageData, Learner  # noqa: E402
from guiclassifier.core.lr_finder import LRFindResult  # noqa: E402
from guiclassifier.core.recipe import DIVISORS, Recipe, SetPrecompute, Train, lesson1  # noqa: E402
from guiclassifier.core.recipe_runner import run_recipe  # noqa: E402

ARCH, SIZE, BS = "mobilenet_v2", 64, 64
GRID = (1e-3, 3e-3, 1e-2)  # AdamW: 3e-2 was far worse for the head on every set tried (README)
# Engine settings compared by --config (keyword arguments of Learner.pretrained).
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "sgd-bnfreeze": {"opt": "sgd", "bn_freeze": True, "train_bn": False},
    "sgd": {"opt": "sgd", "bn_freeze": False, "train_bn": False},
    "adamw": {"opt": "adamw", "wd": 1e-2, "bn_freeze": False, "train_bn": False},
    "adamw-trainbn": {"opt": "adamw", "wd": 1e-2, "bn_freeze": False, "train_bn": True},
    "adamw-bnfreeze": {"opt": "adamw", "wd": 1e-2, "bn_freeze": True, "train_bn": False},
}


def _learner(data_dir: Path, seed: int, config: dict[str, Any]) -> Learner:
    fresh_cache()
    data = ImageData.from_folder(data_dir, size=SIZE, bs=BS, seed=seed)
    return Learner.pretrained(ARCH, data, seed=seed, **config)


def _curve(result: LRFindResult) -> dict[str, Any]:
    return {"lrs": list(result.lrs), "losses": list(result.losses), "suggestions": dict(result.suggestions)}


def run_auto(data_dir: Path, seed: int, config: dict[str, Any]) -> dict[str, Any]:
    learner = _learner(data_dir, seed, config)
    curves: list[dict[str, Any]] = []
    original = learner.lr_find

    def recording_lr_find(*args: Any, **kwargs: Any) -> LRFindResult:
        result = original(*args, **kwargs)
        curves.append(_curve(result))
        return result

    learner.lr_find = recording_lr_find  # type: ignore[method-assign]
    start = time.perf_counter()
    result = run_recipe(learner, lesson1())
    seconds = time.perf_counter() - start
    fits = [r for r in result.ran if r["stage"] == "Train"]
    return {"accuracy": result.evaluation.accuracy if result.evaluation else None, "seconds": seconds,
            "lrs": [f.get("lrs_used") for f in fits], "kept_cycle": fits[-1].get("kept_cycle") if fits else None,
            "epochs": [len(e["epochs"]) for e in learner.history if e.get("kind") == "fit"],
            "last_fit": [{k: e[k] for k in ("accuracy", "valid_loss", "train_loss")}
                         for e in [h for h in learner.history if h.get("kind") == "fit"][-1]["epochs"]],
            "curves": curves, "stopped": result.stopped_reason}


def _head_recipe(lr: float) -> Recipe:
    stages = lesson1().stages
    return Recipe("oracle-head", (SetPrecompute(True), Train(lr, n_cycle=stages[2].n_cycle), SetPrecompute(False),
                                  Train(lr, n_cycle=stages[4].n_cycle, cycle_len=stages[4].cycle_len)))


def run_oracle(data_dir: Path, seed: int, config: dict[str, Any], grid: tuple[float, ...]) -> dict[str, Any]:
    """Best head lr by validation accuracy after both head stages, then the best unfrozen lr by
    TTA accuracy after the last stage (same stage shapes as lesson1)."""
    start = time.perf_counter()
    head: dict[float, tuple[float, float]] = {}
    best_head: tuple[tuple[float, float], float, Any] | None = None
    for lr in grid:
        learner = _learner(data_dir, seed, config)
        run_recipe(learner, _head_recipe(lr))
        last = learner.history[-2]["epochs"][-1]  # the last fit's last epoch ([-1] is the recipe)
        head[lr] = (last["accuracy"], last["valid_loss"])
        score = (last["accuracy"], -last["valid_loss"])
        if best_head is None or score > best_head[0]:
            best_head = (score, lr, learner)
    assert best_head is not None
    _, head_lr, base = best_head
    snapshot = base.snapshot()
    final = [s for s in lesson1().stages if isinstance(s, Train)][-1]
    unfrozen: dict[float, float] = {}
    for lr in grid:
        base.restore(snapshot)
        base.freeze()
        base.precompute = False
        base.unfreeze()
        base.fit(tuple(lr / d for d in DIVISORS), final.n_cycle, final.cycle_len, final.cycle_mult,
                 until_overfit=final.until_overfit)
        unfrozen[lr] = base.evaluate(tta=True).accuracy
    best_lr = max(unfrozen, key=lambda k: unfrozen[k])
    return {"accuracy": unfrozen[best_lr], "seconds": time.perf_counter() - start, "head_lr": head_lr,
            "unfrozen_lr": best_lr, "head_grid": {str(k): v for k, v in head.items()},
            "unfrozen_grid": {str(k): v for k, v in unfrozen.items()}}


def run_fastai(data_dir: Path, seed: int) -> dict[str, Any]:
    from peer_fastai import ensure_fastai_venv, run_fastai_lesson1

    return run_fastai_lesson1(ensure_fastai_venv(), data_dir, seed, size=SIZE, bs=BS, lr=1e-2)


def _summary(values: list[float]) -> str:
    return f"{statistics.mean(values):6.1%} (min {min(values):6.1%})" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(("demo", *SUBSETS)))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--columns", default="auto,oracle,fastai")
    parser.add_argument("--config", action="append", choices=sorted(CONFIGS),
                        help="engine settings for auto/oracle (repeat to compare; default: the engine's defaults)")
    parser.add_argument("--grid", default=",".join(map(str, GRID)), help="the oracle's learning rates")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    datasets = args.datasets.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    columns = args.columns.split(",")
    configs = args.config or ["default"]
    grid = tuple(float(x) for x in args.grid.split(","))
    out = args.json_out or bench_dir() / f"recipe_quality-{time.strftime('%Y%m%d-%H%M%S')}.json"
    print(machine(), flush=True)
    runs: list[dict[str, Any]] = []
    for name in datasets:
        data_dir = build(name)
        for seed in seeds:
            for column in columns:
                for config in (configs if column != "fastai" else ["fastai"]):
                    label = column if column == "fastai" or config == "default" else f"{column}[{config}]"
                    if column == "auto":
                        result = run_auto(data_dir, seed, CONFIGS[config])
                    elif column == "oracle":
                        result = run_oracle(data_dir, seed, CONFIGS[config], grid)
                    else:
                        result = run_fastai(data_dir, seed)
                        result["accuracy"] = result["accuracy_tta"]
                    runs.append({"dataset": name, "seed": seed, "column": label, **result})
                    print(f"{name:<20} seed {seed}  {label:<22} TTA accuracy {result['accuracy']:6.1%}  "
                          f"{result['seconds']:6.1f} s  "
                          f"{json.dumps({k: result[k] for k in ('lrs', 'kept_cycle', 'head_lr', 'unfrozen_lr') if k in result})}",
                          flush=True)
                    out.write_text(json.dumps({"machine": machine(), "runs": runs}, indent=1))
    print(f"\nMean (min) TTA accuracy over seeds {seeds}; mean seconds. Details: {out}")
    labels = list(dict.fromkeys(r["column"] for r in runs))
    print(f"{'dataset':<20}" + "".join(f"{label:>30}" for label in labels))
    for name in datasets:
        row = f"{name:<20}"
        for label in labels:
            mine = [r for r in runs if r["dataset"] == name and r["column"] == label]
            seconds = statistics.mean(r["seconds"] for r in mine) if mine else 0
            row += f"{_summary([r['accuracy'] for r in mine]):>22} {seconds:5.0f} s"
        print(row)


if __name__ == "__main__":
    main()
