"""The data audit (issue 17) on larger datasets with planted problems: copies found, false groups,
leaks flagged, label errors ranked near the top, and how long the audit takes after precompute.

Datasets (benchmarks/datasets.py, AUDIT_SUBSETS; none uses the bundled demo's classes bag, coat,
dress, trouser): made from Debian's `dataset-fashion-mnist` package (`apt-get download`, `dpkg -x`,
the helper scripts/make_demo_dataset.py and benchmarks/datasets.py already use), the first N images
of each class in the package's training split to train/, the first 100 of its test split to
valid/, 28x28 grayscale PNGs:
  - fm-audit-shoes4: sandal, sneaker, ankle boot, shirt (labels 5, 7, 9, 6), 450 + 100 per class
    = 2,200 images; the planted label errors are ankle boots moved into sandal/;
  - fm-audit-tops3: T-shirt, pullover, shirt (0, 2, 6), 600 + 100 per class = 2,100 images, three
    look-alike tops; the planted label errors are pullovers moved into shirt/ (the harder case).
Each is copied and planted with tests/planted.py `plant` per seed (different copies and moves):
N_LEAKS valid images copied into train under other names and formats (half the same pixels as
BMP/TIFF/lossless WebP, half near: resized 1.5x, cropped 4%, brightened 15%, JPEG q85), N_NEAR near
copies of training images inside train, and 5% of the first class's training images moved to the
second class.

Per dataset and seed: MobileNetV2 with the ImageNet weights (weights="auto", offline from the
installed package), 64 px, precompute on, CPU; the body's activations of train and valid are
built first on a cold cache (`learner.split_activations`, timed as "precompute"), then `audit`
runs on the warm cache (timed as "audit": its wall time, and AuditReport.seconds' reading /
duplicates / labels parts). Scored as tests/core/test_audit.py scores the small planted demo:
  - a planted copy group is found when it is a subset of a reported copy group (kinds leak,
    conflicting_labels, exact_duplicates, near_duplicates); bar >= 95% of planted groups;
  - false groups: reported copy groups holding no planted group; bar <= 5% of reported groups;
  - every planted leak inside a reported "leak" group spanning train and valid; bar: all;
  - label errors: planted moved files among the top 2x-planted-count label_error findings by
    score; bar >= 70%.
The bars hold for the totals over all runs and for each run (a run's misses are listed by kind:
exact/near copy and how it was made, label error with the out-of-fold probability of its given
label). Exits 1 when a bar is missed.

The planted copies and the activation cache live in ~/.cache/guiclassifier-bench/audit_planted
(GUICLASSIFIER_BENCH_DIR moves the root), wiped at the start; GUICLASSIFIER_CACHE_DIR points there,
so precompute starts cold and the user's own cache is not touched. The figures go to a JSON file
beside that folder (kept). Timings depend on the load: run nothing else meanwhile.

Run: .venv/bin/python benchmarks/audit_planted.py [--datasets fm-audit-shoes4,fm-audit-tops3]
     [--seeds 0,1,2] [--leaks 40] [--near 80] [--json-out FILE]
     .venv/bin/python benchmarks/audit_planted.py --quick    # smoke run: 1 small set, 1 seed
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import machine  # noqa: E402
from datasets import AUDIT_SUBSETS, bench_dir, build  # noqa: E402

from tests.planted import EXACT_FORMATS, NEAR, Planted, plant  # noqa: E402

ARCH, SIZE, BS = "mobilenet_v2", 64, 64
COPY_KINDS = ("leak", "conflicting_labels", "exact_duplicates", "near_duplicates")
ERROR_SHARE = 0.05
BARS = {"copies found": 0.95, "false groups": 0.05, "leaks flagged": 1.0, "label errors in top 2x": 0.70}


def _shrink(source: Path, out: Path, n_train: int, n_valid: int) -> Path:
    """The first n_train / n_valid files of each class of `source` (the --quick smoke run)."""
    for split, n in (("train", n_train), ("valid", n_valid)):
        for folder in sorted((source / split).iterdir()):
            (out / split / folder.name).mkdir(parents=True, exist_ok=True)
            for f in sorted(folder.iterdir())[:n]:
                shutil.copy(f, out / split / folder.name / f.name)
    return out


def _how(copy: str) -> str:
    """How tests/planted.py made a planted copy, from its file name."""
    stem = Path(copy).stem
    kind, i = stem.split("_")[0], int(stem.split("_")[1])
    if kind == "leak":
        if i % 2 == 0:
            return f"leak, exact ({EXACT_FORMATS[i // 2 % len(EXACT_FORMATS)]})"
        return f"leak, near ({NEAR[i // 2 % len(NEAR)][0]})"
    return f"near ({NEAR[i % len(NEAR)][0]})"


def _why_missed(group: frozenset[str], features: dict[str, Any]) -> str:
    """The two numbers the audit's copy search (core.duplicates) decides on, for a missed pair:
    the thumbnails' likeness (copies need NEAR_LIKENESS) and where each lies among the other's
    nearest neighbours by pooled features (only the NEIGHBOURS nearest are compared)."""
    import numpy as np

    from guiclassifier.core.duplicates import NEAR_LIKENESS, NEIGHBOURS
    from guiclassifier.core.fingerprints import fingerprint, likeness

    a, b = sorted(group)
    paths = list(features)
    f = np.stack([features[p] for p in paths])
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    ranks = []
    for one, other in ((a, b), (b, a)):
        sims = f @ f[paths.index(one)]
        sims[paths.index(one)] = -2.0
        ranks.append(int((sims > sims[paths.index(other)]).sum()) + 1)
    return (f"likeness {likeness(fingerprint(a), fingerprint(b)):.4f} (needs {NEAR_LIKENESS}), feature-neighbour "
            f"rank {min(ranks)} (compared: the {NEIGHBOURS} nearest)")


def score(truth: Planted, report: Any, features: dict[str, Any] | None = None) -> dict[str, Any]:
    """The figures of tests/core/test_audit.py, with what was missed (`features`: each path's pooled
    features, to say why a copy was missed)."""
    copy_findings = [f for f in report.findings if f.kind in COPY_KINDS]
    found = [frozenset(f.files) for f in copy_findings]
    missed_groups = [g for g in truth.groups if not any(g <= f for f in found)]
    false = [f for f, files in zip(copy_findings, found) if not any(g <= files for g in truth.groups)]
    leak_sets = [frozenset(f.files) for f in report.of_kind("leak") if set(f.splits) == {"train", "valid"}]
    missed_leaks = [g for g in truth.leaks if not any(g <= f for f in leak_sets)]
    label = sorted(report.of_kind("label_error"), key=lambda f: -f.score)
    ranked = [f.files[0] for f in label]
    top = set(ranked[:2 * len(truth.label_errors)])
    missed_errors = []
    for path in truth.label_errors:
        if path in top:
            continue
        if path in ranked:
            rank = ranked.index(path)
            missed_errors.append(f"{Path(path).name}: rank {rank + 1} of {len(ranked)} suspects, "
                                 f"p(given label) {1 - label[rank].score:.2f}")
        else:
            missed_errors.append(f"{Path(path).name}: not flagged (a held-out head prefers its given label)")
    return {
        "groups": len(truth.groups), "groups_found": len(truth.groups) - len(missed_groups),
        "reported_groups": len(found), "false_groups": len(false),
        "leaks": len(truth.leaks), "leaks_flagged": len(truth.leaks) - len(missed_leaks),
        "label_errors": len(truth.label_errors), "label_errors_top": len(truth.label_errors) - len(missed_errors),
        "label_suspects": len(ranked),
        "missed_groups": [f"{_how(max(g, key=lambda p: Path(p).name.startswith(('leak_', 'near_'))))}: "
                          f"{', '.join(sorted(Path(p).name for p in g))}"
                          + (f": {_why_missed(g, features)}" if features else "") for g in missed_groups],
        "false_group_details": [f"{f.kind}: {f.detail}: " + ", ".join(
            f"{s}/{c}/{Path(p).name}" for p, c, s in zip(f.files, f.classes, f.splits)) for f in false],
        "missed_leaks": [", ".join(sorted(Path(p).name for p in g)) for g in missed_leaks],
        "missed_label_errors": missed_errors,
    }


def run_one(name: str, source: Path, seed: int, n_leaks: int, n_near: int, work: Path) -> dict[str, Any]:
    import torch

    from guiclassifier import ImageData, Learner
    from guiclassifier.core.audit import audit
    from guiclassifier.core.threads import adapt_threads

    truth = plant(source, work / f"{name}-seed{seed}", n_leaks=n_leaks, n_near=n_near,
                  error_share=ERROR_SHARE, seed=seed)
    threads = adapt_threads()  # as `guiclassifier audit` does: the cores other programs leave free
    start = time.perf_counter()
    data = ImageData.from_folder(truth.root, size=SIZE, bs=BS, seed=seed)
    scan = time.perf_counter() - start
    learner = Learner.pretrained(ARCH, data, weights="auto", precompute=True, device="cpu")
    start = time.perf_counter()
    acts = {split: learner.split_activations(split) for split in ("train", "valid")}
    precompute = time.perf_counter() - start
    start = time.perf_counter()
    report = audit(learner)
    audit_wall = time.perf_counter() - start
    assert not report.cancelled
    features = {item.path: acts["train"].features[i] for i, item in enumerate(data.train_items)}
    features |= {item.path: acts["valid"].features[i] for i, item in enumerate(data.valid_items)}
    return {"dataset": name, "seed": seed, "images": report.n_images, "threads": threads,
            "torch_threads": torch.get_num_threads(), "scan_s": scan, "precompute_s": precompute,
            "audit_s": audit_wall, "audit_parts_s": dict(report.seconds),
            "findings": {k: len(report.of_kind(k)) for k in sorted({f.kind for f in report.findings})},
            **score(truth, report, features)}


def _ratios(r: dict[str, Any]) -> dict[str, float]:
    return {"copies found": r["groups_found"] / r["groups"],
            "false groups": r["false_groups"] / max(1, r["reported_groups"]),
            "leaks flagged": r["leaks_flagged"] / r["leaks"],
            "label errors in top 2x": r["label_errors_top"] / r["label_errors"]}


def _missed(ratios: dict[str, float]) -> list[str]:
    return [k for k, v in ratios.items() if (v > BARS[k] if k == "false groups" else v < BARS[k])]


def _row(label: str, r: dict[str, Any]) -> str:
    return (f"| {label} | {r['images']:,} | {r['groups_found']}/{r['groups']} | "
            f"{r['false_groups']}/{r['reported_groups']} | {r['leaks_flagged']}/{r['leaks']} | "
            f"{r['label_errors_top']}/{r['label_errors']} | {r['precompute_s']:.1f} s | {r['audit_s']:.1f} s "
            f"({r['audit_parts_s'].get('reading', 0):.1f} / {r['audit_parts_s'].get('duplicates', 0):.1f} / "
            f"{r['audit_parts_s'].get('labels', 0):.1f}) |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(AUDIT_SUBSETS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--leaks", type=int, default=40, help="planted valid->train copies per run")
    parser.add_argument("--near", type=int, default=80, help="planted near copies inside train per run")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: the first dataset cut to 100 + 30 per class, seed 0, 10 leaks, 20 near copies")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    datasets = args.datasets.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.quick:
        datasets, seeds, args.leaks, args.near = datasets[:1], [0], 10, 20

    work = bench_dir() / "audit_planted"
    sources = {name: build(name) for name in datasets}  # before the wipe: the datasets live elsewhere
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ["GUICLASSIFIER_CACHE_DIR"] = str(work / "cache")  # cold, and not the user's cache
    if args.quick:
        sources = {name: _shrink(src, work / f"{name}-small", 100, 30) for name, src in sources.items()}
    out = args.json_out or bench_dir() / f"audit_planted-{time.strftime('%Y%m%d-%H%M%S')}.json"  # kept: work is wiped
    print(machine(), flush=True)
    print(f"{ARCH} (ImageNet weights), {SIZE} px, precompute, CPU; {args.leaks} leaks + {args.near} near copies "
          f"planted per run, {ERROR_SHARE:.0%} of the first class moved; work folder {work}", flush=True)

    runs: list[dict[str, Any]] = []
    for name, source in sources.items():
        for seed in seeds:
            r = run_one(name, source, seed, args.leaks, args.near, work)
            runs.append(r)
            missed = _missed(_ratios(r))
            print(f"{name} seed {seed}: {r['images']} images, copies {r['groups_found']}/{r['groups']}, "
                  f"false {r['false_groups']}/{r['reported_groups']}, leaks {r['leaks_flagged']}/{r['leaks']}, "
                  f"label errors {r['label_errors_top']}/{r['label_errors']} in top 2x "
                  f"({r['label_suspects']} suspects); scan {r['scan_s']:.1f} s, precompute {r['precompute_s']:.1f} s, "
                  f"audit {r['audit_s']:.1f} s {json.dumps({k: round(v, 2) for k, v in r['audit_parts_s'].items()})}, "
                  f"{r['threads']} threads; load {os.getloadavg()[0]:.2f}"
                  + (f"; MISSED: {', '.join(missed)}" if missed else ""), flush=True)
            for key in ("missed_groups", "false_group_details", "missed_leaks", "missed_label_errors"):
                for line in r[key]:
                    print(f"    {key.replace('_', ' ')}: {line}", flush=True)
            out.write_text(json.dumps({"machine": machine(), "args": vars(args) | {"json_out": str(out)},
                                       "runs": runs}, indent=1))

    total = {k: sum(r[k] for r in runs) for k in ("images", "groups", "groups_found", "reported_groups",
                                                   "false_groups", "leaks", "leaks_flagged", "label_errors",
                                                   "label_errors_top", "precompute_s", "audit_s")}
    total["audit_parts_s"] = {k: sum(r["audit_parts_s"].get(k, 0) for r in runs)
                              for k in ("reading", "duplicates", "labels")}
    print("\n| dataset, seed | images | planted copy groups found | false groups / reported | leaks flagged "
          "| label errors in top 2x / planted | precompute | audit (reading / duplicates / labels) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in runs:
        print(_row(f"{r['dataset']}, {r['seed']}", r))
    print(_row("**total**", total))
    ratios = _ratios(total)
    print(f"\nTotals: copies found {ratios['copies found']:.1%} (bar >= 95%), false groups "
          f"{ratios['false groups']:.1%} (bar <= 5%), leaks flagged {ratios['leaks flagged']:.0%} (bar 100%), "
          f"label errors in top 2x {ratios['label errors in top 2x']:.1%} (bar >= 70%); audit "
          f"median {statistics.median(r['audit_s'] for r in runs):.1f} s, precompute median "
          f"{statistics.median(r['precompute_s'] for r in runs):.1f} s. Details: {out}")
    missed_runs = {f"{r['dataset']} seed {r['seed']}": m for r in runs if (m := _missed(_ratios(r)))}
    missed_total = _missed(ratios)
    if missed_total or missed_runs:
        print(f"BARS MISSED: totals {missed_total or 'none'}; runs {missed_runs or 'none'}")
        return 1
    print("Every bar met, in the totals and in each run.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
