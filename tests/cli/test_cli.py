"""The command line end to end on tiny generated data."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from guiclassifier.cli import main

TINY = ["--size", "32", "--bs", "8", "--workers", "0", "--arch", "resnet18", "--weights", "random", "--quiet"]


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_scan_reports_counts_and_broken_files(dataset: Path, capsys) -> None:
    (dataset / "train" / "cat" / "broken.jpg").write_bytes(b"\xff\xd8junk")
    code, out, _ = run(capsys, "scan", str(dataset))
    assert code == 0
    assert "cat" in out and "12" in out and "broken.jpg" in out and "1 file skipped" in out
    code, out, _ = run(capsys, "scan", str(dataset), "--json")
    report = json.loads(out)
    assert report["counts"]["dog"] == {"train": 12, "valid": 4}
    assert [Path(s["path"]).name for s in report["skipped"]] == ["broken.jpg"]


def test_scan_of_a_bad_folder_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    code, out, err = run(capsys, "scan", str(tmp_path / "nope"))
    assert code == 1 and err.startswith("error:") and err.count("\n") == 1 and "Traceback" not in err


def test_train_predict_evaluate(dataset: Path, tmp_path: Path, capsys) -> None:
    model = tmp_path / "m.gcm"
    log = tmp_path / "log.jsonl"
    code, out, err = run(capsys, "train", str(dataset), *TINY, "--epochs-scale", "0.2", "--out", str(model),
                       "--json-log", str(log))
    assert code == 0, out + err
    assert model.is_file() and "validation accuracy" in out and "epoch" in out
    kinds = {json.loads(line)["event"] for line in log.read_text().splitlines()}
    assert {"StageStarted", "LRFindPoint", "BatchEnded", "EpochEnded", "FitEnded", "CycleEnded"} <= kinds
    assert "end of cycle 1: best so far" in out  # lesson1's last stage judges its cycles
    assert "by the lesson rule" in out  # the lr_find stages say which rule picked the lr
    # The per-epoch CSV beside the model has exactly the epochs of the printed table, with their figures.
    shown = [line.split() for line in out.splitlines() if line.strip() and line.split()[0].isdigit()
             and len(line.split()) == 5 and line.split()[4].endswith("s")]
    logged = list(csv.DictReader(open(tmp_path / "m.epochs.csv")))
    assert len(logged) == len(shown) > 0 and f"each epoch's figures in {tmp_path / 'm.epochs.csv'}" in out
    for row, line in zip(logged, shown):
        assert row["epoch"] == line[0] and f"{float(row['train_loss']):.4f}" == line[1]
        assert f"{float(row['valid_loss']):.4f}" == line[2] and f"{float(row['accuracy']):.1%}" == line[3]
    assert logged[0]["stage"] and float(logged[-1]["lr"]) > 0

    (tmp_path / "notes.txt").write_text("not an image")
    images = dataset / "valid" / "cat"
    code, out, _ = run(capsys, "predict", str(model), str(images), str(tmp_path / "notes.txt"), "--json",
                       "--csv", str(tmp_path / "p.csv"))
    assert code == 0
    result = json.loads(out)
    assert len(result["predictions"]) == 4
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-4 for p in result["predictions"])
    assert result["skipped"][0]["path"].endswith("notes.txt")
    rows = list(csv.reader(open(tmp_path / "p.csv")))
    assert rows[0] == ["path", "predicted", "cat", "dog", "warning"] and len(rows) == 6
    assert rows[-1][0].endswith("notes.txt") and rows[-1][-1].startswith("skipped: not an image")
    assert all("warning" in p for p in result["predictions"])

    code, out, _ = run(capsys, "evaluate", str(model), str(dataset), "--workers", "0", "--quiet", "--json")
    assert code == 0
    ev = json.loads(out)
    assert ev["n"] == 8 and sum(map(sum, ev["confusion"])) == 8
    card = (tmp_path / "m.MODEL.md").read_text()  # its numbers are evaluate's
    assert f"- {ev['accuracy']:.1%} without TTA, on 8 validation images" in card
    assert "with TTA" in card and "| cat | 12 | 4 |" in card and "| actual \\ predicted | cat | dog |" in card
    assert card.count("| fit (") >= 3 and 'InferenceSession("m.onnx")' in card


def test_until_overfit_flag_sets_every_training_stage(dataset: Path, tmp_path: Path, capsys) -> None:
    recipe = {"name": "r", "stages": [{"stage": "Train", "lrs": 0.01, "n_cycle": 2, "cycle_len": 1}]}
    (tmp_path / "r.json").write_text(json.dumps(recipe))
    code, out, err = run(capsys, "train", str(dataset), *TINY, "--recipe", str(tmp_path / "r.json"),
                         "--until-overfit", "--out", str(tmp_path / "m.gcm"))
    assert code == 0, out + err
    assert "until it over-fits" in out and "end of cycle 2" in out


def test_bad_recipe_file_is_reported(dataset: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "r.json").write_text(json.dumps({"name": "x", "stages": [{"stage": "Train", "n_cylce": 2}]}))
    code, _, err = run(capsys, "train", str(dataset), *TINY, "--recipe", str(tmp_path / "r.json"))
    assert code == 1 and "n_cylce" in err


def test_usage_errors_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train"])
    assert info.value.code == 2


def test_python_dash_m_help() -> None:
    result = subprocess.run([sys.executable, "-m", "guiclassifier", "train", "--help"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "example" in result.stdout and "--epochs-scale" in result.stdout


def test_lr_find_json_and_plot(dataset: Path, tmp_path: Path, capsys) -> None:
    code, out, _ = run(capsys, "lr-find", str(dataset), *TINY, "--num-it", "15", "--json",
                       "--plot", str(tmp_path / "lr.png"))
    assert code == 0
    curve = json.loads(out)
    assert len(curve["lrs"]) == len(curve["losses"]) == len(curve["raw_losses"]) > 3
    assert curve["lrs"][0] == pytest.approx(1e-7)
    from PIL import Image

    with Image.open(tmp_path / "lr.png") as img:
        assert img.size == (800, 500)
        colours = {c for _, c in img.getcolors(1 << 20)}
    assert (31, 90, 180) in colours  # the smoothed curve was drawn
    code, out, _ = run(capsys, "lr-find", str(dataset), *TINY, "--num-it", "15", "--unfrozen")
    assert code == 0 and "suggested lr" in out or "stopped" in out


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_export_prints_its_parity_line(tiny_learner, dataset: Path, tmp_path: Path, capsys, fmt: str) -> None:
    tiny_learner.fit(0.02, 1)
    model = tiny_learner.save(tmp_path / "m.gcm")
    out = tmp_path / f"m.{fmt}"
    code, stdout, _ = run(capsys, "export", str(model), "--format", fmt, "--out", str(out), "--data", str(dataset))
    assert code == 0 and out.is_file() and Path(str(out) + ".json").is_file()
    assert stdout.splitlines() == [f"wrote {out} (and m.{fmt}.json)",  # not the exporter's progress lines
                                   stdout.splitlines()[1]]
    assert stdout.splitlines()[1].startswith(f"{fmt.upper()} export: 8/8 same answers, largest difference ")
    assert stdout.splitlines()[1].endswith("on validation images")


def test_big_photos_are_read_from_shrunk_copies_unless_turned_off(tmp_path: Path, capsys) -> None:
    from PIL import Image

    from guiclassifier.core.resized import default_resized_dir

    for label, color in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        (tmp_path / "photos" / label).mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (240, 180), color).save(tmp_path / "photos" / label / f"{i}.jpg", quality=90)
    sweep = ["lr-find", str(tmp_path / "photos"), *TINY, "--num-it", "3", "--no-precompute"]
    code, out, err = run(capsys, *sweep, "--no-resized-cache")
    assert code == 0, out + err
    assert not default_resized_dir().exists()
    code, out, err = run(capsys, *sweep)
    assert code == 0, out + err
    assert len(list(default_resized_dir().rglob("*.jpg"))) >= 4  # the training images swept


def test_the_window_takes_debug_and_a_dataset(monkeypatch) -> None:
    from guiclassifier import cli

    seen: list = []
    monkeypatch.setitem(cli.COMMANDS, "gui", lambda args: seen.append((args.debug, args.data)) or 0)
    assert cli.main(["--debug"]) == 0 and cli.main(["data/x", "--debug"]) == 0 and cli.main([]) == 0
    assert seen == [(True, None), (True, Path("data/x")), (False, None)]


def test_missing_qt_libraries_are_named_with_their_packages(monkeypatch, capsys) -> None:
    import ctypes

    from guiclassifier import cli
    from guiclassifier.gui import qt_libraries

    assert qt_libraries.uses_xcb({"DISPLAY": ":0"}, "linux")
    assert not qt_libraries.uses_xcb({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not qt_libraries.uses_xcb({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}, "linux")
    assert not qt_libraries.uses_xcb({"DISPLAY": ":0"}, "darwin")
    real = ctypes.CDLL

    def cdll(name, *args, **kwargs):
        if name in ("libxcb-icccm.so.4", "libxcb-keysyms.so.1"):
            raise OSError(f"{name}: cannot open shared object file")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(ctypes, "CDLL", cdll)
    monkeypatch.setattr(qt_libraries, "uses_xcb", lambda: True)
    monkeypatch.setattr(qt_libraries, "XCB_LIBRARIES", {"libxcb-icccm.so.4": "libxcb-icccm4",
                                                        "libxcb-keysyms.so.1": "libxcb-keysyms1",
                                                        "libc.so.6": "libc6"})
    assert cli.main(["gui"]) == 1
    err = capsys.readouterr().err
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1\n" in err and "libc6" not in err


def test_a_stopped_train_never_replaces_a_finished_model(dataset: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    from guiclassifier.core import recipe_runner

    out = tmp_path / "m.gcm"
    out.write_bytes(b"the good model")
    monkeypatch.setattr(recipe_runner, "run_recipe", lambda learner, recipe, *a, **k: recipe_runner.RecipeResult(
        0, len(recipe.stages), True, "stopped by the user", None, ()))  # Ctrl-C at the first batch
    code, stdout, _ = run(capsys, "train", str(dataset), *TINY, "--out", str(out))
    assert code == 1 and out.read_bytes() == b"the good model"
    assert (tmp_path / "m.unfinished.gcm").is_file() and "m.unfinished.gcm" in stdout
    assert f"{out} is left as it was" in stdout


def test_predicting_an_empty_folder_says_so(tiny_learner, tmp_path: Path, capsys) -> None:
    model = tiny_learner.save(tmp_path / "m.gcm")
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "predict", str(model), str(tmp_path / "empty"))
    assert code == 1 and "No image files in" in err


@pytest.mark.parametrize("extra, words", [(["--workers", "-1"], "--workers must be at least 0"),
                                          (["--size", "8"], "--size must be at least 16"),
                                          (["--epochs-scale", "0"], "--epochs-scale must be above 0"),
                                          (["--device", "cpu", "--precision", "fp16"], "fp16 is for GPUs")])
def test_bad_arguments_are_refused_before_any_work(dataset: Path, tmp_path: Path, capsys, monkeypatch,
                                                  extra, words) -> None:
    from guiclassifier.cli import main
    from guiclassifier.core import data

    monkeypatch.setattr(data, "scan_folder", lambda *a, **k: pytest.fail("scanned before checking arguments"))
    with pytest.raises(SystemExit) as info:
        main(["train", str(dataset), "--out", str(tmp_path / "m.gcm"), *extra])
    assert info.value.code == 2 and words in capsys.readouterr().err


def test_predict_and_evaluate_take_a_precision(tiny_learner, dataset: Path, tmp_path: Path, capsys) -> None:
    model = tiny_learner.save(tmp_path / "m.gcm")
    image = str(sorted((dataset / "valid" / "cat").iterdir())[0])
    code, plain, err = run(capsys, "predict", str(model), image, "--json")
    assert code == 0, err
    code, mixed, err = run(capsys, "predict", str(model), image, "--json", "--precision", "bf16")
    assert code == 0, err
    plain_p, mixed_p = (list(json.loads(out)["predictions"][0]["probabilities"].values()) for out in (plain, mixed))
    assert plain_p != mixed_p  # bfloat16 arithmetic really ran
    assert mixed_p == pytest.approx(plain_p, abs=0.05)
    code, out, err = run(capsys, "evaluate", str(model), str(dataset), "--size", "32", "--workers", "0",
                         "--precision", "bf16")
    assert code == 0 and "accuracy" in out, err


def test_an_out_that_is_a_folder_is_refused_at_once(dataset: Path, tmp_path: Path, capsys) -> None:
    from guiclassifier.cli import main

    with pytest.raises(SystemExit) as info:
        main(["train", str(dataset), "--out", str(tmp_path)])
    assert info.value.code == 2 and "is a folder" in capsys.readouterr().err


def test_a_class_folder_named_with_a_newline_keeps_the_scan_table_whole(dataset_factory, capsys) -> None:
    root = dataset_factory()
    (root / "train" / "cat").rename(root / "train" / "ca\nt")
    (root / "valid" / "cat").rename(root / "valid" / "ca\nt")
    code, out, _ = run(capsys, "scan", str(root))
    assert code == 0 and "ca\\nt" in out
    rows = out.splitlines()
    assert any(r.startswith("ca\\nt ") and r.split()[-2:] == ["12", "4"] for r in rows)


def test_a_missing_torch_is_one_line_that_names_it(dataset) -> None:
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None  # as if it were not installed\n"
            "from guiclassifier.cli import main\n"
            f"sys.exit(main(['scan', {str(dataset)!r}]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("error: guiclassifier scan needs PyTorch (torch), which is not installed")


def test_cache_reports_and_clears_finished_entries_only(capsys) -> None:
    import json

    from guiclassifier.cli import main
    from guiclassifier.core.cache_dirs import cache_root

    entry = cache_root() / "activations" / "finished"
    entry.mkdir(parents=True)
    (entry / "features.npy").write_bytes(b"x" * 5000)
    being_written = cache_root() / "activations" / ".being-written.123"  # a running job's, not finished
    being_written.mkdir()
    (cache_root() / "resized" / "ab").mkdir(parents=True)
    (cache_root() / "resized" / "ab" / "photo.jpg").write_bytes(b"y" * 3000)
    assert main(["cache", "--json"]) == 0
    before = {c["kind"]: c for c in json.loads(capsys.readouterr().out)["caches"]}
    assert (before["activations"]["entries"], before["activations"]["bytes"]) == (1, 5000)
    assert (before["resized"]["entries"], before["resized"]["bytes"]) == (1, 3000)
    assert main(["cache", "--clear"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("freed 8.0 kB") and "0 entries" in out
    assert not entry.exists() and being_written.is_dir()


def test_cache_limit_is_set_applied_and_reported(capsys) -> None:
    import json
    import time

    from guiclassifier.cli import main
    from guiclassifier.core.cache_dirs import cache_root
    from tests.core.test_cache_limit import fake_entry

    for i in range(5):
        fake_entry(cache_root(), f"e{i}", time.time() - 100 + i)
    assert main(["cache", "--limit", "2.5kB"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("freed 3.0 kB\n") and "limit 2.5 kB (set with --limit)" in out
    assert sorted(p.name for p in (cache_root() / "activations").iterdir()) == ["e3", "e4"]
    assert main(["cache", "--limit", "auto", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["limit_automatic"] and 0 < report["limit_bytes"] <= 5_000_000_000
    with pytest.raises(SystemExit) as exit_:
        main(["cache", "--limit", "lots"])
    assert exit_.value.code == 2 and "'lots' is not a size" in capsys.readouterr().err


def test_byte_sizes_read_as_a_file_manager_shows_them() -> None:
    from guiclassifier.core.text import byte_size

    assert [byte_size(n) for n in (0, 1, 999, 1000, 49_400_000, 1_200_000_000)] == \
        ["0 bytes", "1 byte", "999 bytes", "1.0 kB", "49.4 MB", "1.2 GB"]


def test_audit_json_is_the_whole_stdout_even_from_a_warm_cache(dataset: Path, capsys) -> None:
    args = ["audit", str(dataset), "--size", "32", "--workers", "0", "--arch", "resnet18", "--weights", "random",
            "--json"]
    for run_number in range(2):  # the second run reads the cached activations, and says so on stderr
        code, out, err = run(capsys, *args)
        assert code == 0
        doc = json.loads(out)
        assert doc["images"] == 32 and not doc["cancelled"]  # 2 classes x (12 train + 4 valid)
        assert {f["kind"] for f in doc["findings"]} <= {"small_class", "label_error", "exact_duplicates",
                                                       "near_duplicates", "unlike_class", "class_imbalance"}
    assert "activations from cache" in err


def test_train_writes_tensorboard_events_of_each_epoch(dataset: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    code, out, err = run(capsys, "train", str(dataset), *TINY, "--epochs-scale", "0.2", "--out",
                         str(tmp_path / "m.gcm"), "--tensorboard", str(tmp_path / "tb"))
    assert code == 0, out + err
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert {"loss/train", "loss/valid", "accuracy/valid", "lr/head"} <= set(events.Tags()["scalars"])
    logged = list(csv.DictReader(open(tmp_path / "m.epochs.csv")))
    train = events.Scalars("loss/train")
    assert [e.step for e in train] == list(range(1, len(logged) + 1))
    assert all(abs(e.value - float(row["train_loss"])) < 1e-5 for e, row in zip(train, logged))
