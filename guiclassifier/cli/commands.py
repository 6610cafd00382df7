"""The `guiclassifier` command. No subcommand: open the window. Subcommands: run headless.

Exit codes: 0 success, 1 failure (one-line error; --debug for the traceback), 2 bad usage.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guiclassifier.core.precision import PRECISIONS  # torch-free: the names only

if TYPE_CHECKING:  # imported where used: the CLI starts without torch until a command needs it
    from guiclassifier.cli.progress import ConsoleReporter
    from guiclassifier.core.cancel import CancelToken
    from guiclassifier.core.learner import Learner

EXAMPLES = """examples:
  guiclassifier                                   open the window
  guiclassifier resources/demo                    open the window on a dataset
  guiclassifier --debug                           the window, logging expected errors' tracebacks too
  guiclassifier scan resources/demo
  guiclassifier audit resources/demo --arch mobilenet_v2 --size 64
  guiclassifier lr-find resources/demo --arch mobilenet_v2 --size 64 --plot lr.png
  guiclassifier train resources/demo --arch mobilenet_v2 --size 64 --out demo.gcm
  guiclassifier predict demo.gcm photo.jpg more_photos/ --tta
  guiclassifier evaluate demo.gcm resources/demo --tta
  guiclassifier cache --clear                     how much the caches hold; empty them
"""


NEEDED_PACKAGES = {"torch": ("PyTorch (torch)", "torch"), "torchvision": ("torchvision", "torchvision"),
                   "PIL": ("Pillow", "pillow"), "numpy": ("NumPy", "numpy"),
                   "PySide6": ("Qt for Python (PySide6)", "PySide6-Essentials"), "pyqtgraph": ("pyqtgraph", "pyqtgraph")}
"""Packages a command may find missing in a broken install (what to call them, what to install):
named in a one-line error, never a traceback."""


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    p.add_argument("--seed", type=int, default=42, help="seed for the split, initialisation and batch order")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors")


def _add_precision(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="arithmetic: auto (float16 mixed precision on CUDA, float32 elsewhere), fp32, bf16 "
                        "(mixed; can pay on recent GPUs and CPUs with AMX), fp16 (mixed, GPUs)")


def _add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", type=Path, help="dataset folder (fast.ai layout or one folder of class folders)")
    p.add_argument("--size", type=int, default=224, help="image size in pixels (default 224)")
    p.add_argument("--bs", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--augment", default="side_on", choices=["side_on", "top_down", "none"])
    p.add_argument("--max-zoom", type=float, default=1.1)
    p.add_argument("--valid-pct", type=float, default=0.2, help="validation share when there is no valid/ folder")
    p.add_argument("--workers", type=int, default=None,
                   help="image loading processes; 0 loads in this process, keeping decoded images in memory "
                        "(default: 0 when they fit in memory, else cores - 1)")
    p.add_argument("--no-resized-cache", dest="resized_cache", action="store_false",
                   help="always decode the original files (default: keep shrunk copies of big photos)")


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", default="auto", help="architecture (default: the best one with weights here)")
    p.add_argument("--weights", default="auto", help="auto, a torchvision .pth file, or 'random'")


def _command(sub: Any, name: str, help: str, example: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, epilog=f"example: {example}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guiclassifier", description="Train an image classifier the fast.ai way.",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"guiclassifier {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("gui", help="open the window (the default)")
    p.add_argument("data", type=Path, nargs="?")
    p.add_argument("--debug", action="store_true", help="log details of expected errors (tracebacks) too")
    p.add_argument("--demo", action="store_true", help="open the demo dataset that comes with the app")
    p.add_argument("--install-desktop", action="store_true",
                   help="add guiclassifier to this Linux desktop's application menu (with its icon), then exit")

    p = _command(sub, "scan", "classes, counts per split and unusable files of a dataset",
                 "guiclassifier scan resources/demo --json")
    p.add_argument("data", type=Path)
    p.add_argument("--valid-pct", type=float, default=0.2)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _add_common(p)

    p = _command(sub, "audit", "what is wrong with a dataset: copies, train/valid leaks, labels that look wrong, "
                 "small or unequal classes, tiny images, images unlike their class",
                 "guiclassifier audit resources/demo --arch mobilenet_v2 --size 64 --json")
    _add_data(p)
    _add_model(p)
    p.add_argument("--json", action="store_true",
                   help="the report as JSON: {images, unreadable, cancelled, seconds, findings: [{kind, files, "
                        "classes, split, score, detail}]}")
    p.add_argument("--top", type=int, default=10, help="findings of each kind listed (default 10; --json: all)")
    _add_common(p)
    _add_precision(p)

    p = _command(sub, "lr-find", "the learning-rate finder's curve and suggestions",
                 "guiclassifier lr-find resources/demo --arch mobilenet_v2 --size 64 --plot lr.png")
    _add_data(p)
    _add_model(p)
    p.add_argument("--unfrozen", action="store_true", help="sweep with all layers trainable (default: head only)")
    p.add_argument("--no-precompute", action="store_true", help="sweep through the body even when frozen")
    p.add_argument("--start-lr", type=float, default=1e-7)
    p.add_argument("--end-lr", type=float, default=10.0)
    p.add_argument("--num-it", type=int, default=100)
    p.add_argument("--json", action="store_true", help="the curve and suggestions as JSON")
    p.add_argument("--plot", type=Path, help="write a PNG of loss against lr with the suggestions marked")
    _add_common(p)
    _add_precision(p)

    p = _command(sub, "train", "run a recipe (default: lesson1) and save the model",
                 "guiclassifier train resources/demo --arch mobilenet_v2 --size 64 --out demo.gcm --epochs-scale 0.5")
    _add_data(p)
    _add_model(p)
    p.add_argument("--recipe", default="lesson1", help="lesson1 or a recipe .json file")
    p.add_argument("--epochs-scale", type=float, default=1.0, help="shrink (<1) or stretch the recipe")
    p.add_argument("--until-overfit", action=argparse.BooleanOptionalAction, default=None,
                   help="every training stage stops after the first cycle that is worse than the best one and "
                        "keeps the best cycle's weights (default: as the recipe says; lesson1 does it in its "
                        "last stage)")
    p.add_argument("--out", type=Path, default=Path("model.gcm"), help="model file to write (default model.gcm)")
    p.add_argument("--json-log", type=Path, help="write every event as a JSON line to this file")
    p.add_argument("--tensorboard", type=Path, metavar="DIR",
                   help="also write TensorBoard event files of each epoch to DIR (needs the optional "
                        "tensorboard package: pip install 'guiclassifier[tensorboard]')")
    p.add_argument("--checkpoints", type=Path,
                   help="folder for checkpoints written at each epoch end (default: OUT.checkpoints)")
    p.add_argument("--resume", action="store_true",
                   help="go on from the newest checkpoint of an interrupted run (same data and --out)")
    _add_common(p)
    _add_precision(p)

    p = _command(sub, "predict", "class probabilities for image files or folders, with a .gcm model or an "
                 "exported .onnx/.pt2 file", "guiclassifier predict demo.gcm photos/ --csv out.csv\n"
                 "         guiclassifier predict demo.onnx photos/   (an export: read as a user's program would)")
    p.add_argument("model", type=Path)
    p.add_argument("paths", type=Path, nargs="+")
    p.add_argument("--tta", action="store_true", help="average over 4 augmented views too")
    p.add_argument("--json", action="store_true",
                   help="the results as JSON: {predictions: [{path, class (null when not sure), probability, "
                        "best_guess, not_sure, probabilities, warning}], skipped: [{path, reason}]}")
    p.add_argument("--csv", type=Path, help="write path, class and probabilities to this CSV file")
    p.add_argument("--heatmap", type=Path, metavar="DIR",
                   help="write each image with a Grad-CAM overlay (where the model looked for the class it "
                        "chose) as a PNG in this folder")
    _add_common(p)
    _add_precision(p)

    p = _command(sub, "export", "a model file that runs without guiclassifier (ONNX or torch.export)",
                 "guiclassifier export demo.gcm --format onnx --out demo.onnx\n"
                 "         (demo.onnx carries its classes and preprocessing; demo.onnx.json repeats them)")
    p.add_argument("model", type=Path)
    p.add_argument("--format", choices=["onnx", "pt2"], default="onnx")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data", type=Path, help="a dataset with the model's classes: the parity check (the exported "
                                             "file run on its own must answer like the app) uses its validation "
                                             "images instead of made-up ones")
    _add_common(p)

    p = _command(sub, "evaluate", "accuracy and confusion matrix of a model on a dataset's valid set",
                 "guiclassifier evaluate demo.gcm resources/demo --tta\n"
                 "         guiclassifier evaluate demo.gcm resources/demo --set-threshold 0.8")
    p.add_argument("model", type=Path)
    _add_data(p)
    p.add_argument("--tta", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("--set-threshold", type=_confidence, metavar="T",
                   help="save a confidence threshold in the model file: predictions below it say 'not sure' "
                        "(0 answers everything). The accuracy and share answered at common thresholds are printed")
    _add_common(p)
    _add_precision(p)
    p = _command(sub, "cache", "how much the activation and photo caches hold, and their limit; "
                 "--clear empties them", "guiclassifier cache --limit 10GB")
    p.add_argument("--clear", action="store_true",
                   help="remove every cached entry not in use by a running job (rebuilt when needed)")
    p.add_argument("--limit", type=_cache_limit, metavar="SIZE|auto", default=argparse.SUPPRESS,
                   help="most the caches may hold (e.g. 10GB); the entries used longest ago are removed "
                        "beyond it. auto (the default): 5GB, or a fifth of the free disk when that is less")
    p.add_argument("--json", action="store_true")
    return parser


def _reporter(args: argparse.Namespace) -> ConsoleReporter:
    """Progress for a command; with --json every line of it goes to stderr, so stdout is the JSON alone."""
    from guiclassifier.cli.progress import ConsoleReporter

    if getattr(args, "json", False):
        return ConsoleReporter(out=sys.stderr, quiet=True)
    return ConsoleReporter(quiet=args.quiet)


def _confidence(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a confidence between 0 and 1 (e.g. 0.8 or 80%)")
    return value


def _cache_limit(text: str) -> int | None:
    from guiclassifier.core.text import parse_byte_size

    if text.strip().lower() == "auto":
        return None
    try:
        return parse_byte_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _version() -> str:
    from guiclassifier import __version__

    return __version__


def _default_arch() -> str:
    from guiclassifier.core.models import best_available_arch

    return best_available_arch()


def _weights_arg(value: str) -> str | Path | None:
    if value == "random":
        return None
    return value if value == "auto" else Path(value)


def _install_sigint(token: Any, dist_info: Any = None) -> None:
    """Ctrl-C stops after this batch, a second one quits now. Under torchrun (which passes a Ctrl-C
    on to every process, then kills them 30 s later) it asks for a stop that all processes agree
    on at the next training step, validation or stage (Learner.stop_agreed), so none is left
    waiting for the others."""

    def handler(signum: int, frame: Any) -> None:
        request = dist_info.stop_request if dist_info is not None else token
        if request.cancelled:
            raise KeyboardInterrupt
        print("\nstopping " + ("every process at the next training step or validation" if dist_info is not None
                               else "after this batch") + " (Ctrl-C again to quit now)...", file=sys.stderr)
        request.cancel()

    signal.signal(signal.SIGINT, handler)


def cmd_scan(args: argparse.Namespace) -> int:
    from guiclassifier.core.data import scan_folder
    from guiclassifier.core.text import plural, printable

    from guiclassifier.cli.progress import ConsoleReporter

    reporter = ConsoleReporter(quiet=args.quiet)
    report = scan_folder(args.data, valid_pct=args.valid_pct, seed=args.seed, callbacks=reporter)
    reporter.close()
    counts = report.counts()
    if args.json:
        print(json.dumps({"root": report.root, "layout": report.layout, "classes": list(report.classes),
                          "counts": {k: {"train": t, "valid": v} for k, (t, v) in counts.items()},
                          "test": len(report.test), "notes": list(report.notes),
                          "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped]}, indent=2))
        return 0
    print(f"{report.root} ({'fast.ai layout' if report.layout == 'fastai' else 'class folders'})")
    print(f"{'class':<24} {'train':>6} {'valid':>6}")
    for name, (t, v) in counts.items():
        print(f"{printable(name):<24} {t:>6} {v:>6}")
    print(f"{'total':<24} {len(report.train):>6} {len(report.valid):>6}")
    if report.test:
        print(f"test images: {len(report.test)}")
    for note in report.notes:
        print(f"note: {note}")
    if report.skipped:
        print(f"\n{plural(len(report.skipped), 'file')} skipped:")
        for s in report.skipped:
            print(f"  {s.path}: {s.reason}")
    return 0


def _data_from(args: argparse.Namespace):
    from guiclassifier.core.data import ImageData

    from guiclassifier.cli.progress import ConsoleReporter

    reporter = ConsoleReporter(quiet=args.quiet)
    data = ImageData.from_folder(args.data, size=args.size, bs=args.bs, augment=args.augment,
                                 max_zoom=args.max_zoom, valid_pct=args.valid_pct, seed=args.seed,
                                 num_workers=args.workers, callbacks=reporter, resized_cache=args.resized_cache)
    reporter.close()
    return data


def _learner_from(args: argparse.Namespace, precompute: bool = False, dist_info: Any = None):
    from guiclassifier.core.learner import Learner
    from guiclassifier.core.threads import adapt_threads

    data = _data_from(args)
    if dist_info is None:  # one process per GPU under torchrun: not the CPU's share to judge
        adapt_threads()
    arch = _default_arch() if args.arch == "auto" else args.arch
    return Learner.pretrained(arch, data, precompute=precompute, weights=_weights_arg(args.weights),
                              device=args.device, seed=args.seed, dist_info=dist_info, precision=args.precision)


def cmd_audit(args: argparse.Namespace) -> int:
    from guiclassifier.core.audit import KINDS, audit
    from guiclassifier.core.cancel import CancelToken
    from guiclassifier.core.text import plural, printable

    learner = _learner_from(args, precompute=True)
    token = CancelToken()
    _install_sigint(token)
    reporter = _reporter(args)
    report = audit(learner, callbacks=reporter, cancel=token)
    reporter.close()
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return 1 if report.cancelled else 0
    stopped = " (stopped: what was found until then)" if report.cancelled else ""
    print(f"{plural(report.n_images, 'image')} checked{stopped}; "
          f"{plural(len(report.findings), 'finding')}")
    for kind, meaning in KINDS.items():
        found = sorted(report.of_kind(kind), key=lambda f: -f.score)
        if not found:
            continue
        print(f"\n{kind}: {plural(len(found), 'finding')} - {meaning}")
        for finding in found[:args.top]:
            print(f"  {printable(finding.detail)}")
            for path, split in list(zip(finding.files, finding.splits))[:5]:
                print(f"    {split:<5} {printable(path)}")
            if len(finding.files) > 5:
                print(f"    ... and {len(finding.files) - 5} more")
        if len(found) > args.top:
            print(f"  ... and {len(found) - args.top} more (--top N, or --json for all)")
    if report.unreadable:
        print(f"\n{plural(len(report.unreadable), 'file')} could not be read (see guiclassifier scan)")
    return 1 if report.cancelled else 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    from guiclassifier.core.cancel import CancelToken

    learner = _learner_from(args, precompute=not (args.unfrozen or args.no_precompute))
    if args.unfrozen:
        learner.unfreeze()
    token = CancelToken()
    _install_sigint(token)
    reporter = _reporter(args)
    result = learner.lr_find(args.start_lr, args.end_lr, args.num_it, callbacks=reporter, cancel=token)
    reporter.close()
    if args.plot:
        from guiclassifier.cli.lr_plot_png import save_lr_plot

        save_lr_plot(result, args.plot, title=f"{learner.arch}, {learner.describe_trainable()}")
    if args.json:
        print(json.dumps({"lrs": list(result.lrs), "losses": list(result.losses),
                          "raw_losses": list(result.raw_losses), "suggestions": result.suggestions,
                          "stopped": result.stopped_reason, "cancelled": result.cancelled}, indent=2))
    else:
        print(f"{'lr':>10}  {'loss':>8}  {'raw':>8}")
        step = max(1, len(result.lrs) // 25)
        for lr, loss, raw in list(zip(result.lrs, result.losses, result.raw_losses))[::step]:
            print(f"{lr:>10.2e}  {loss:>8.4f}  {raw:>8.4f}")
        print(f"\n{result.stopped_reason}")
        for name, lr in result.suggestions.items():
            print(f"suggested lr ({name}): {lr:.2e}")
        if args.plot:
            print(f"plot saved to {args.plot}")
    return 1 if result.cancelled else 0


def cmd_train(args: argparse.Namespace) -> int:
    """Run a recipe and save the model; under torchrun, data-parallel over the processes."""
    from guiclassifier.core.recipe import BUILTIN_RECIPES, Recipe

    from guiclassifier.core.distributed import init_from_env, launched_by_torchrun, shutdown

    if args.tensorboard is not None and importlib.util.find_spec("tensorboard") is None:
        print("--tensorboard needs the optional tensorboard package: pip install 'guiclassifier[tensorboard]'",
              file=sys.stderr)
        return 2
    recipe = BUILTIN_RECIPES[args.recipe]() if args.recipe in BUILTIN_RECIPES else Recipe.load(args.recipe)
    if args.epochs_scale != 1.0:
        recipe = recipe.scaled(args.epochs_scale)
    if args.until_overfit is not None:
        recipe = recipe.with_until_overfit(args.until_overfit)
    dist_info = None
    if launched_by_torchrun():
        dist_info, args.device = init_from_env(args.device)
        if not dist_info.is_main:  # one voice: only rank 0 prints and writes files
            sys.stdout = open(os.devnull, "w")
            args.quiet, args.json_log = True, None
    try:
        return _train(args, recipe, dist_info)
    finally:
        shutdown()


def _train(args: argparse.Namespace, recipe: Any, dist_info: Any) -> int:
    from guiclassifier.cli.progress import ConsoleReporter
    from guiclassifier.core.cancel import CancelToken
    from guiclassifier.core.checkpoint import CheckpointConfig, clear_checkpoints, latest_checkpoint
    from guiclassifier.core.epoch_log import EpochCsvLog, TensorBoardLog, epoch_log_path
    from guiclassifier.core.recipe_runner import resume_recipe, run_recipe
    from guiclassifier.workspace.jobs import ensure_reference
    from guiclassifier.workspace.workspace import keeps_checkpoints

    checkpoints = CheckpointConfig(args.checkpoints or args.out.with_name(args.out.name + ".checkpoints"))
    resume_from = latest_checkpoint(checkpoints.folder) if args.resume else None
    if args.resume and resume_from is None:
        print(f"Nothing to resume: no checkpoint in {checkpoints.folder}.", file=sys.stderr)
        return 2
    if resume_from is not None:  # the model, recipe and schedule come from the checkpoint
        learner, data = None, _data_from(args)
        print(f"resuming from {resume_from}")
    else:
        learner = _learner_from(args, dist_info=dist_info)
        data = learner.data
        processes = f" x {dist_info.world_size} processes" if dist_info else ""
        print(f"{learner.arch} ({learner.weights_source.describe()}) on {learner.device.type}{processes} "
              f"in {learner.precision.describe()}, {len(data.train_items)} train / {len(data.valid_items)} valid "
              f"images, {data.c} classes, {data.size} px; recipe {recipe.name}: {len(recipe.stages)} stages")
    token = CancelToken()
    _install_sigint(token, dist_info)
    log = open(args.json_log, "w") if args.json_log else None
    is_main = dist_info is None or dist_info.is_main
    log_path = epoch_log_path(args.out)  # where this run's epochs go, whatever the model is saved as
    epochs = EpochCsvLog(log_path) if is_main else None
    board = TensorBoardLog(args.tensorboard) if is_main and args.tensorboard is not None else None
    try:
        reporter = ConsoleReporter(quiet=args.quiet, json_log=log)
        callbacks = [reporter] + [c for c in (epochs, board) if c is not None]
        if resume_from is not None:
            learner, result = resume_recipe(resume_from, data, callbacks, token, checkpoints, args.device,
                                            dist_info=dist_info, precision=args.precision)
        else:
            result = run_recipe(learner, recipe, callbacks, token, checkpoints=checkpoints)
        reporter.close()
    finally:
        if log is not None:
            log.close()
        for logger in (epochs, board):
            if logger is not None:
                logger.close()
    if not result.cancelled:
        # For "unlike the training images" warnings. Every process takes part: the shared
        # activation cache is built behind a barrier.
        ensure_reference(learner, None, token)
    if dist_info is not None and not dist_info.is_main:
        return 0
    out = _unfinished_out(args.out) if (result.cancelled or result.stopped_reason) else args.out
    learner.save(out)
    if out != args.out:
        print(f"{args.out} is left as it was; the unfinished model is saved beside it")
    args.out = out
    if result.evaluation is not None:
        print(f"\nvalidation accuracy: {result.evaluation.accuracy:.1%}"
              f"{' (TTA)' if result.evaluation.tta else ''}")
    if not keeps_checkpoints(result.cancelled):  # saved, and nothing a resume could go on with
        clear_checkpoints(checkpoints.folder)
    if result.cancelled:
        print(f"stopped after {result.completed} of {result.total} stages; the model as it was then is "
              f"saved to {args.out}")
        return 1
    if result.stopped_reason:
        print(f"{result.stopped_reason}\nmodel saved to {args.out}")
        return 1
    card = _write_card(learner, args.out, result.evaluation, token)
    print(f"model saved to {args.out}; each epoch's figures in {log_path}; its card in {card}")
    return 0


def _write_card(learner: Learner, out: Path, evaluation: Any, cancel: CancelToken) -> Path:
    """MODEL.md beside the model, with its accuracy without and with TTA (the recipe measured one)."""
    from guiclassifier.core.model_card import write_model_card

    plain = evaluation if evaluation is not None and not evaluation.tta else learner.evaluate(cancel=cancel)
    tta = evaluation if evaluation is not None and evaluation.tta else learner.evaluate(tta=True, cancel=cancel)
    return write_model_card(learner, out, None if plain.cancelled else plain, None if tta.cancelled else tta)


def _unfinished_out(out: Path) -> Path:
    """Where a stopped or failed run saves: `out` when nothing is there yet, otherwise beside it
    (a stopped run must never replace a finished model)."""
    if not out.exists():
        return out
    candidate, n = out.with_name(f"{out.stem}.unfinished{out.suffix}"), 2
    while candidate.exists():
        candidate, n = out.with_name(f"{out.stem}.unfinished-{n}{out.suffix}"), n + 1
    return candidate


def cmd_predict(args: argparse.Namespace) -> int:
    from guiclassifier.core.images import expand_image_paths
    from guiclassifier.core.learner import Learner
    from guiclassifier.core.cancel import CancelToken
    from guiclassifier.core.predict import predict_files, write_predictions_csv

    from guiclassifier.core.exported_model import is_exported, predict_exported

    exported = is_exported(args.model)
    if exported and (args.tta or args.heatmap):
        print("--tta and --heatmap need the app's own model file (.gcm), not an export.", file=sys.stderr)
        return 2
    learner = None if exported else Learner.load(args.model, device=args.device, precision=args.precision)
    files, missing = expand_image_paths(args.paths)
    if not files and not missing:
        print(f"No image files in {', '.join(map(str, args.paths))}.", file=sys.stderr)
        return 1
    token = CancelToken()
    _install_sigint(token)
    if learner is None:
        names, results = predict_exported(args.model, files, _reporter(args), token)
    else:
        names, results = learner.classes, predict_files(learner, files, tta=args.tta, reference=learner.reference,
                                                        callbacks=_reporter(args), cancel=token)
    classes = list(names)
    rows = [{"path": r.path, "class": None if r.answer is None else classes[r.answer], "probability": r.confidence,
             "best_guess": classes[r.best], "not_sure": r.not_sure,
             "probabilities": dict(zip(classes, r.probabilities)), "warning": r.warning()}
            for r in results if r.error is None]
    skipped = [(str(p), reason) for p, reason in missing] + [(r.path, r.error) for r in results if r.error]
    if args.csv:
        write_predictions_csv(args.csv, classes, results)
    if args.heatmap and learner is not None and not results.cancelled:
        written = _write_heatmaps(learner, [r.path for r in results if r.error is None], args.heatmap, token)
        print(f"wrote {written} heatmap{'s' if written != 1 else ''} to {args.heatmap}", file=sys.stderr)
    if args.json:
        print(json.dumps({"predictions": rows, "skipped": [{"path": p, "reason": r} for p, r in skipped]},
                         indent=2))
    else:
        width = max([len(r["path"]) for r in rows] + [4])
        for row in rows:
            warning = f"  ({row['warning']})" if row["warning"] else ""
            answer = row["class"] or f"not sure ({row['best_guess']}?)"
            print(f"{row['path']:<{width}}  {answer:<16} {row['probability']:6.1%}{warning}")
        for path, reason in skipped:
            print(f"{path:<{width}}  skipped: {reason}")
    if results.cancelled:
        print(f"stopped after {len(results)} of {len(files)} files", file=sys.stderr)
        return 1
    return 0 if rows or not skipped else 1


def _write_heatmaps(learner: Learner, paths: list[str], folder: Path, cancel: CancelToken) -> int:
    """Grad-CAM overlays of `paths` as PNGs in `folder` (name.heatmap.png, numbered when two files
    share a name); how many were written."""
    from guiclassifier.core.gradcam import heatmaps
    from guiclassifier.core.heatmap_image import write_heatmap_png

    used: set[str] = set()
    written = 0
    for heat in heatmaps(learner, paths, cancel=cancel):
        if heat.cam is None:
            continue
        stem, n = Path(heat.path).stem, 2
        name = f"{stem}.heatmap.png"
        while name in used:
            name, n = f"{stem}-{n}.heatmap.png", n + 1
        used.add(name)
        cls = learner.classes[heat.class_index]
        answer = f"not sure ({cls}?)" if heat.probability < learner.confidence_threshold else cls
        caption = f"{answer} {heat.probability:.0%}: where the model looked for {cls}"
        write_heatmap_png(heat.path, heat.cam, folder / name, caption)
        written += 1
    return written


def cmd_evaluate(args: argparse.Namespace) -> int:
    from guiclassifier.core.cancel import CancelToken
    from guiclassifier.core.learner import Learner

    learner = Learner.load(args.model, device=args.device, precision=args.precision)
    args.size = learner.size  # the validation images go in at the size the model was trained on
    learner.attach_data(_data_from(args))
    token = CancelToken()
    _install_sigint(token)
    ev = learner.evaluate(tta=args.tta, callbacks=_reporter(args), cancel=token)
    if ev.cancelled:
        print("stopped: no figures (the validation set was not finished)", file=sys.stderr)
        return 1
    classes = list(learner.classes)
    if args.set_threshold is not None:
        learner.confidence_threshold = args.set_threshold
        learner.save(args.model)
    threshold = learner.confidence_threshold
    at = ev.coverage.at(threshold) if ev.coverage is not None else None
    if args.json:
        print(json.dumps({"accuracy": ev.accuracy, "loss": ev.loss, "n": ev.n, "tta": ev.tta,
                          "classes": classes, "confusion": [list(r) for r in ev.confusion],
                          "threshold": threshold, "answered": at.coverage if at else None,
                          "answered_accuracy": at.accuracy if at else None}, indent=2))
        return 0
    print(f"accuracy {ev.accuracy:.1%} on {ev.n} validation images{' with TTA' if ev.tta else ''} "
          f"(loss {ev.loss:.4f})")
    if at is not None and threshold > 0:
        saved = "saved in the model" if args.set_threshold is not None else "the model's"
        print(f"with the {threshold:.0%} confidence threshold ({saved}): {at.answered} of {ev.n} answered "
              f"({at.coverage:.0%}), {at.accuracy:.1%} of them right; the rest 'not sure'")
    if args.set_threshold is not None and ev.coverage is not None:
        print("\nthreshold    answered    right")
        for t in (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99):
            point = ev.coverage.at(t)
            right = f"{point.accuracy:6.1%}" if point.answered else "     -"
            print(f"{t:9.0%}  {point.answered:>4}/{ev.n:<5}  {right}")
    print()
    corner = "actual \\ predicted"
    width = max(len(c) for c in classes + [corner]) + 2
    print(corner.ljust(width) + "".join(c[:10].rjust(11) for c in classes))
    for name, row in zip(classes, ev.confusion):
        print(name.ljust(width) + "".join(str(n).rjust(11) for n in row))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from guiclassifier.core.export import export_model
    from guiclassifier.core.learner import Learner

    learner = Learner.load(args.model, device="cpu")
    if args.data is not None:  # the parity check then runs on its validation images
        from guiclassifier.core.data import ImageData

        learner.attach_data(ImageData.from_folder(args.data, size=learner.size, num_workers=0))
    exported = export_model(learner, args.out, args.format)
    on = "validation images" if args.data is not None else "made-up images (--data DATA: your validation images)"
    print(f"wrote {exported.model_file} (and {exported.description.name})\n"
          f"{exported.parity.describe(args.format)}, on {on}")
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    import logging

    from guiclassifier.bundled import demo_path

    if args.install_desktop:
        from guiclassifier.cli.desktop_entry import install_desktop_entry

        entry, icon = install_desktop_entry()
        print(f"wrote {entry}" + (f" and {icon}" if icon else "") + ": guiclassifier is in the application menu")
        return 0
    if args.demo:
        args.data = demo_path()
        if args.data is None:
            print("This copy of guiclassifier has no demo dataset.", file=sys.stderr)
            return 1

    from guiclassifier.gui.qt_libraries import missing_libraries, missing_message, uses_xcb

    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    missing = missing_libraries() if uses_xcb() else []
    if missing:
        print(missing_message(missing), file=sys.stderr)
        return 1
    try:
        from guiclassifier.gui.app import run_app
    except ImportError as exc:  # PySide6 missing, or a system library Qt needs (libGL, libEGL...)
        print(f"The window cannot open: {exc}.\nThe commands without a window still work: "
              "guiclassifier --help.", file=sys.stderr)
        return 1
    return run_app(args.data)


def cmd_cache(args: argparse.Namespace) -> int:
    from guiclassifier.core.cache_dirs import CACHE_KINDS, Removal, cache_report, cache_root, clear_caches, trim_caches
    from guiclassifier.core.cache_limit import AUTOMATIC_LIMIT, choose_limit
    from guiclassifier.core.text import byte_size, plural

    root = cache_root()
    removal: Removal | None = None
    if "limit" in args:  # absent unless given; None for auto
        choose_limit(root, args.limit)
        removal = trim_caches(root)
    if args.clear:
        removal = clear_caches(root)
    report = cache_report(root)
    if args.json:
        print(json.dumps({"root": str(root), "limit_bytes": report.limit_bytes,
                          "limit_automatic": report.limit_automatic,
                          "freed_bytes": removal.freed_bytes if removal else None,
                          "kept_in_use": removal.kept_in_use if removal else None,
                          "caches": [{"kind": u.kind, "folder": str(u.folder), "entries": u.entries,
                                      "bytes": u.size_bytes} for u in report.usage]}, indent=2))
        return 0
    if removal is not None and (args.clear or removal.removed or removal.kept_in_use):
        kept = f"; {plural(removal.kept_in_use, 'entry', 'entries')} in use by a running job kept" \
            if removal.kept_in_use else ""
        print(f"freed {byte_size(removal.freed_bytes)}{kept}")
    for u in report.usage:
        print(f"{CACHE_KINDS[u.kind]:<45} {plural(u.entries, 'entry', 'entries'):>12} {byte_size(u.size_bytes):>10}  "
              f"{u.folder}")
    how = f"automatic: {AUTOMATIC_LIMIT}" if report.limit_automatic else "set with --limit"
    print(f"{'in all':<45} {'':>12} {byte_size(report.total_bytes):>10}  limit {byte_size(report.limit_bytes)} "
          f"({how})")
    return 0


COMMANDS = {"gui": cmd_gui, "scan": cmd_scan, "audit": cmd_audit, "lr-find": cmd_lr_find, "train": cmd_train, "predict": cmd_predict,
            "evaluate": cmd_evaluate, "export": cmd_export, "cache": cmd_cache}


def check_arguments(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, found before any work starts (a scan or a model load
    takes seconds to minutes); None when they look usable."""
    for name, low in (("size", 16), ("bs", 1), ("workers", 0)):
        value = getattr(args, name, None)
        if value is not None and value < low:
            return f"--{name} must be at least {low} (got {value})"
    scale = getattr(args, "epochs_scale", None)
    if scale is not None and not (0 < scale <= 100):
        return f"--epochs-scale must be above 0 and at most 100 (got {scale})"
    if getattr(args, "precision", None) == "fp16" and getattr(args, "device", None) == "cpu":
        return "--precision fp16 is for GPUs: on a CPU choose bf16 or fp32"
    for name in ("out", "csv"):
        path = getattr(args, name, None)
        if path is not None and Path(path).is_dir():
            return f"--{name} {path} is a folder: give a file name"
        if path is not None and Path(path).parent.exists() and not os.access(Path(path).parent, os.W_OK):
            return f"--{name} {path}: its folder cannot be written to"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # `guiclassifier` and `guiclassifier DATA` open the window.
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv = ["gui", *argv]
    args = parser.parse_args(argv)
    problem = check_arguments(args)
    if problem:
        parser.exit(2, f"error: {problem}\n")
    from guiclassifier.core.errors import GuiClassifierError

    try:
        return COMMANDS[args.command](args)
    except ModuleNotFoundError as exc:
        package = (exc.name or "").split(".")[0]
        if package not in NEEDED_PACKAGES:
            raise
        name, install = NEEDED_PACKAGES[package]
        print(f"error: guiclassifier {args.command} needs {name}, which is not installed in this Python "
              f"({sys.executable}): pip install {install}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (GuiClassifierError, OSError, ValueError) as exc:
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 1
