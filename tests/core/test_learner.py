"""fit (SGDR, differential lrs, freezing, cancel, divergence), prediction and model files."""

from __future__ import annotations

import errno
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from guiclassifier import ImageData, Learner
from guiclassifier.core import modelfile
from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.errors import ImageError, ModelFileError, TrainingError
from guiclassifier.core.events import BatchEnded, EpochEnded, FitEnded, FitStarted
from guiclassifier.core.schedules import SGDR


def test_fit_events_follow_the_sgdr_schedule(tiny_learner: Learner) -> None:
    events: list = []
    result = tiny_learner.fit(0.05, 2, cycle_len=1, cycle_mult=2, callbacks=events.append)
    started = next(e for e in events if isinstance(e, FitStarted))
    assert started.total_epochs == 3 and started.batches_per_epoch == 3  # 24 images, bs 8
    batches = [e for e in events if isinstance(e, BatchEnded)]
    assert len(batches) == 9
    expected = SGDR(2, 1, 2).multipliers(3)
    assert [b.lrs[-1] for b in batches] == pytest.approx([0.05 * m for m in expected])
    epochs = [e for e in events if isinstance(e, EpochEnded)]
    assert [e.epoch for e in epochs] == [0, 1, 2]
    assert all(0.0 <= e.accuracy <= 1.0 and np.isfinite(e.valid_loss) for e in epochs)
    assert epochs[-1].eta == pytest.approx(0.0, abs=1e-6)
    assert isinstance(events[-1], FitEnded) and not events[-1].cancelled
    assert result.epochs_done == 3 and not result.cancelled and not result.diverged


def test_fit_learns_the_colours(dataset: Path) -> None:
    data = ImageData.from_folder(dataset, size=32, bs=8, num_workers=0, seed=0)
    learner = Learner.pretrained("resnet18", data, weights=None, device="cpu")
    # The head alone separates the colours from random features. The random body's BatchNorm
    # statistics are kept: moved by batches of 8, they make this toy a matter of luck.
    learner.train_bn = False
    result = learner.fit(0.05, 4)
    assert result.epochs[0].valid_loss > result.epochs[-1].valid_loss
    assert result.epochs[-1].accuracy == 1.0


def test_frozen_groups_are_unchanged_by_fit(tiny_learner: Learner) -> None:
    tiny_learner.train_bn = False  # fastai 0.7: nothing of a frozen group changes
    before = {k: v.clone() for k, v in tiny_learner.model.state_dict().items()}
    tiny_learner.fit(0.05, 1)
    after = tiny_learner.model.state_dict()
    body = [k for k in before if k.startswith(("stem.", "trunk.", "normalize."))]
    head = [k for k in before if k.startswith("head.") and "weight" in k]
    assert body and all(torch.equal(before[k], after[k]) for k in body)  # BatchNorm buffers too
    assert all(not torch.equal(before[k], after[k]) for k in head)


def test_train_bn_trains_only_the_frozen_bodys_batchnorm(tiny_learner: Learner) -> None:
    assert tiny_learner.train_bn  # the default, as fastai v2
    bn = {name for name, m in tiny_learner.model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    before = {k: v.clone() for k, v in tiny_learner.model.state_dict().items()}
    tiny_learner.fit(0.05, 1)
    after = tiny_learner.model.state_dict()
    body = [k for k in before if k.startswith(("stem.", "trunk."))]
    changed = {k for k in body if not torch.equal(before[k], after[k])}
    assert changed and all(k.rsplit(".", 1)[0] in bn for k in changed)  # weights, biases, statistics
    assert any(k.endswith("running_mean") for k in changed) and any(k.endswith(".weight") for k in changed)


def test_differential_lrs_reach_their_groups(tiny_learner: Learner) -> None:
    tiny_learner.unfreeze()
    seen: list[list[float]] = []
    opt = tiny_learner.optimizer()
    original_step = opt.step

    def spy(*args, **kwargs):
        seen.append([g["lr"] for g in opt.param_groups])
        return original_step(*args, **kwargs)

    opt.step = spy
    tiny_learner.fit([1e-4, 1e-3, 1e-2], 1)
    assert seen and all(lrs == pytest.approx([1e-4, 1e-3, 1e-2]) for lrs in seen)
    groups = tiny_learner.model.layer_groups
    for param_group, layer_group in zip(opt.param_groups, groups):
        assert {id(p) for p in param_group["params"]} == {id(p) for p in layer_group.parameters()}


def test_cancel_stops_within_one_batch_and_model_stays_usable(tiny_learner: Learner) -> None:
    token = CancelToken()
    batches: list = []

    def cb(event) -> None:
        if isinstance(event, BatchEnded):
            batches.append(event)
            if len(batches) == 2:
                token.cancel()

    result = tiny_learner.fit(0.01, 3, callbacks=cb, cancel=token)
    assert len(batches) == 2
    assert result.cancelled and "Stopped" in result.message
    paths = [i.path for i in tiny_learner.data.valid_items]
    assert tiny_learner.predict(paths).shape == (len(paths), 2)
    assert tiny_learner.fit(0.01, 1).epochs_done == 1  # and it can train again


def test_divergence_stops_and_keeps_last_good_weights(tiny_learner: Learner,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    tiny_learner.fit(0.01, 1)
    good = {k: v.clone() for k, v in tiny_learner.model.state_dict().items()}
    calls = {"n": 0}
    criterion = tiny_learner.criterion

    def poisoned(out, y):
        calls["n"] += 1
        loss = criterion(out, y)
        return loss * float("nan") if calls["n"] == 5 else loss  # 2nd batch of the 2nd epoch

    monkeypatch.setattr(tiny_learner, "criterion", poisoned)
    events: list = []
    result = tiny_learner.fit(0.01, 3, callbacks=events.append)
    assert result.diverged and result.epochs_done == 1 and "lower" in result.message
    assert events[-1].diverged
    # the weights are those at the end of the fit's first epoch, not the ones before the NaN
    assert not all(torch.equal(good[k], v) for k, v in tiny_learner.model.state_dict().items())
    assert all(torch.isfinite(v.float()).all() for v in tiny_learner.model.state_dict().values())


def test_same_seed_same_result(dataset: Path) -> None:
    def run() -> dict:
        data = ImageData.from_folder(dataset, size=32, bs=8, num_workers=0, seed=3)
        learner = Learner.pretrained("resnet18", data, weights=None, device="cpu")
        learner.fit(0.01, 1)
        return learner.model.state_dict()

    a, b = run(), run()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_adamw_option(dataset: Path) -> None:
    data = ImageData.from_folder(dataset, size=32, bs=8, num_workers=0)
    learner = Learner.pretrained("resnet18", data, weights=None, device="cpu", opt="adamw")
    assert isinstance(learner.optimizer(), torch.optim.AdamW)
    assert learner.fit(1e-3, 1).epochs_done == 1
    with pytest.raises(TrainingError):
        Learner.pretrained("resnet18", data, weights=None, device="cpu", opt="lbfgs")


def test_predict_tta_and_evaluate(tiny_learner: Learner) -> None:
    tiny_learner.fit(0.02, 2)
    paths = [i.path for i in tiny_learner.data.valid_items]
    plain = tiny_learner.predict(paths)
    tta = tiny_learner.predict(paths, tta=True)
    assert plain.shape == tta.shape == (8, 2)
    assert np.allclose(plain.sum(1), 1, atol=1e-5) and np.allclose(tta.sum(1), 1, atol=1e-5)
    assert not np.allclose(plain, tta)
    assert np.array_equal(tta, tiny_learner.predict(paths, tta=True))  # TTA is deterministic
    probs, targets = tiny_learner.predict_valid()
    assert np.allclose(probs, plain, atol=1e-6) and targets.tolist() == [0] * 4 + [1] * 4
    ev = tiny_learner.evaluate(tta=True)
    assert ev.n == 8 and sum(map(sum, ev.confusion)) == 8
    assert ev.accuracy == pytest.approx(sum(ev.confusion[i][i] for i in range(2)) / 8)


def test_predict_reports_unreadable_files(tiny_learner: Learner, tmp_path: Path) -> None:
    (tmp_path / "bad.jpg").write_text("nope")
    with pytest.raises(ImageError, match="bad.jpg"):
        tiny_learner.predict([tmp_path / "bad.jpg"])


def test_save_load_round_trip(tiny_learner: Learner, tmp_path: Path) -> None:
    tiny_learner.fit(0.02, 1)
    path = tiny_learner.save(tmp_path / "model.gcm")
    loaded = Learner.load(path, device="cpu")
    assert loaded.classes == ("cat", "dog") and loaded.arch == "resnet18" and loaded.size == 32
    from guiclassifier.core.modelfile import UMASK

    assert path.stat().st_mode & 0o777 == 0o666 & ~UMASK  # like any file the user makes, not 0600
    assert loaded.frozen_groups == tiny_learner.frozen_groups
    assert loaded.history[-1]["kind"] == "fit"
    paths = [i.path for i in tiny_learner.data.valid_items]
    assert np.array_equal(loaded.predict(paths), tiny_learner.predict(paths))
    assert np.array_equal(loaded.predict(paths, tta=True), tiny_learner.predict(paths, tta=True))
    with pytest.raises(TrainingError, match="dataset"):
        loaded.fit(0.01, 1)
    attached = Learner.load(path, data=tiny_learner.data, device="cpu")
    assert attached.fit(0.01, 1).epochs_done == 1


class _Evil:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_bad_model_files_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "text.gcm").write_text("hello")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "foreign.gcm")
    torch.save({"format": "guiclassifier.model", "state_dict": _Evil(), "arch": "resnet18",
                "classes": ["a", "b"], "size": 32}, tmp_path / "evil.gcm")
    with open(tmp_path / "evil2.gcm", "wb") as f:
        pickle.dump(_Evil(), f)
    torch.save({"format": "guiclassifier.model", "format_version": 99}, tmp_path / "future.gcm")
    expected = {"text.gcm": "not a guiclassifier model", "foreign.gcm": "not a guiclassifier model",
                "evil.gcm": "could run code", "evil2.gcm": "not a guiclassifier model",
                "future.gcm": "newer", "missing.gcm": "does not exist"}
    for name, words in expected.items():
        with pytest.raises(ModelFileError, match=words):
            Learner.load(tmp_path / name)
    assert not (tmp_path / "PWNED").exists()


def test_failed_save_keeps_the_previous_file(tiny_learner: Learner, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tiny_learner.save(tmp_path / "out" / "model.gcm")
    original = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(modelfile.torch, "save", disk_full)
    with pytest.raises(ModelFileError, match="disk is full.*unchanged"):
        tiny_learner.save(path)
    assert path.read_bytes() == original
    assert [p.name for p in path.parent.iterdir()] == ["model.gcm"]  # no temp file left


def test_mismatched_dataset_classes(tiny_learner: Learner, tmp_path: Path, dataset_factory) -> None:
    path = tiny_learner.save(tmp_path / "m.gcm")
    other = ImageData.from_folder(dataset_factory(classes=("cat", "fox")), size=32, num_workers=0)
    with pytest.raises(TrainingError, match="classes"):
        Learner.load(path, data=other)


def test_freeze_unfreeze_describe(tiny_learner: Learner) -> None:
    assert tiny_learner.describe_trainable() == "head only"
    tiny_learner.unfreeze()
    assert tiny_learner.describe_trainable() == "all layers"
    tiny_learner.freeze_to(1)
    assert tiny_learner.describe_trainable() == "upper body and head"


def test_bn_freeze_default_and_model_file(tiny_learner: Learner, tmp_path: Path) -> None:
    # Off by default: with AdamW it costs accuracy (benchmarks/README.md, recipe quality).
    assert not Learner.pretrained("mobilenet_v2", tiny_learner.data, device="cpu").bn_freeze
    tiny_learner.bn_freeze = True
    tiny_learner.unfreeze()
    running = tiny_learner.model.stem[1].running_mean.clone()
    tiny_learner.fit(0.01, 1)
    assert torch.equal(running, tiny_learner.model.stem[1].running_mean)
    tiny_learner.bn_freeze = False
    tiny_learner.save(tmp_path / "m.gcm")
    assert Learner.load(tmp_path / "m.gcm").bn_freeze is False
    tiny_learner.fit(0.01, 1)
    assert not torch.equal(running, tiny_learner.model.stem[1].running_mean)


def test_model_files_keep_how_the_model_was_trained(tiny_learner: Learner, tmp_path: Path) -> None:
    assert (tiny_learner.opt_name, tiny_learner.wd, tiny_learner.train_bn) == ("adamw", 1e-2, True)
    sgd = Learner.pretrained("resnet18", tiny_learner.data, weights=None, device="cpu", opt="sgd", train_bn=False)
    sgd.save(tmp_path / "sgd.gcm")
    loaded = Learner.load(tmp_path / "sgd.gcm")
    assert (loaded.opt_name, loaded.wd, loaded.train_bn) == ("sgd", 1e-4, False)
    payload = torch.load(tmp_path / "sgd.gcm", weights_only=True)
    del payload["training"], payload["digest"]  # a file from before these were stored: every model then used SGD
    torch.save(payload, tmp_path / "old.gcm")
    old = Learner.load(tmp_path / "old.gcm")
    assert (old.opt_name, old.train_bn) == ("sgd", False)


def test_a_validation_loss_that_is_not_a_number_stops_the_fit(tiny_learner: Learner,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Seen on a GPU: float16 logits overflowed in validation while the training loss stayed finite,
    and the fit went on with a NaN validation loss as if nothing had happened."""
    real = tiny_learner._validate
    calls = {"n": 0}

    def overflowing(emit, cancel):
        calls["n"] += 1
        loss, accuracy = real(emit, cancel)
        return (math.nan if calls["n"] == 2 else loss), accuracy

    monkeypatch.setattr(tiny_learner, "_validate", overflowing)
    first: dict = {}

    def keep_epoch_one(event) -> None:
        if isinstance(event, EpochEnded) and event.epoch == 0:
            first.update({k: v.clone() for k, v in tiny_learner.model.state_dict().items()})

    result = tiny_learner.fit(0.01, 3, callbacks=keep_epoch_one)
    assert result.diverged and result.failed and result.epochs_done == 1
    assert "the validation loss became NaN" in result.message and "end of epoch 1" in result.message
    assert all(torch.equal(first[k], v) for k, v in tiny_learner.model.state_dict().items())


def test_every_long_call_reports_a_stop_in_its_result(tiny_learner) -> None:
    """One cancellation convention: fit, lr_find, predict_files, evaluate and interpret return
    normally when stopped, and their result says so (what was finished, if anything)."""
    from guiclassifier.core.interpret import interpret
    from guiclassifier.core.predict import predict_files

    stopped = CancelToken()
    stopped.cancel()
    paths = [item.path for item in tiny_learner.data.valid_items]
    results = {
        "fit": tiny_learner.fit(0.01, 1, cancel=stopped),
        "lr_find": tiny_learner.lr_find(num_it=20, cancel=stopped),
        "predict_files": predict_files(tiny_learner, paths, cancel=stopped),
        "evaluate": tiny_learner.evaluate(cancel=stopped),
        "interpret": interpret(tiny_learner, cancel=stopped),
    }
    assert {name: r.cancelled for name, r in results.items()} == dict.fromkeys(results, True)
    assert len(results["predict_files"]) == 0 and math.isnan(results["evaluate"].accuracy)


def test_predictions_stopped_midway_keep_the_files_done(tiny_learner) -> None:
    from guiclassifier.core.events import FilePredicted
    from guiclassifier.core.predict import predict_files

    paths = [item.path for item in tiny_learner.data.train_items]  # 24 files: 3 batches of 8
    token = CancelToken()

    def stop_after_first_batch(event) -> None:
        if isinstance(event, FilePredicted) and event.index == 7:
            token.cancel()

    done = predict_files(tiny_learner, paths, callbacks=stop_after_first_batch, cancel=token)
    assert done.cancelled and [p.path for p in done] == paths[:8]
    assert not predict_files(tiny_learner, paths[:3]).cancelled
