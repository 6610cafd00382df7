"""Telling a collapse (a learning rate that broke the network: accuracy back at chance) from noise.

Learner.fit stops on one the way it stops on NaN; a recipe stage then rolls back and retries at a
tenth of the lr (core.recipe_runner).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

COLLAPSE_MIN_VALID = 30
"""Below this many validation images, accuracy jumps by whole percents from one image: a drop to
chance says nothing, so no collapse is declared."""


def majority_share(labels: Sequence[int]) -> float | None:
    """Accuracy of always answering the most common validation class (what a collapsed model
    gets), or None when the validation set is too small to tell a collapse from noise."""
    if len(labels) < COLLAPSE_MIN_VALID:
        return None
    return max(labels.count(c) for c in set(labels)) / len(labels)


def accuracy_before(history: Sequence[dict[str, Any]]) -> float | None:
    """Validation accuracy the last fit left the model at, from a learner's history."""
    for entry in reversed(history):
        if entry.get("kind") == "fit" and entry.get("epochs"):
            final = entry.get("final_accuracy")
            return float(final) if final is not None else float(entry["epochs"][-1]["accuracy"])
    return None


def is_collapse(accuracy: float, reached: float | None, chance: float) -> bool:
    """`accuracy` is (about) chance although the model had `reached` clearly better."""
    return reached is not None and accuracy <= chance + 0.1 * (1 - chance) and reached >= chance + 0.3 * (1 - chance)


def collapse_message(epoch: int, accuracy: float, chance: float, valid_loss: float, loss_before: float | None) -> str:
    rose = f" and the validation loss rose to {valid_loss:.3g}" + (f" (from {loss_before:.3g})" if loss_before else "")
    kept = f"the end of epoch {epoch}" if epoch else "before this fit"
    return (f"Training collapsed in epoch {epoch + 1}: accuracy fell to {accuracy:.1%} (always answering the "
            f"most common class gives {chance:.1%}){rose}. The weights from {kept} were kept. "
            "Try a learning rate about 10x lower.")
