"""Interpretation of validation errors: confusion cells sorted by loss, top losses, confused pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from guiclassifier import Learner
from guiclassifier.core.interpret import Interpretation, interpret


def test_cells_and_pairs_on_known_numbers() -> None:
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7],
                      [0.8, 0.1, 0.1], [0.5, 0.4, 0.1]])
    targets = np.array([0, 1, 1, 2, 1, 1])
    interp = Interpretation(("a", "b", "c"), tuple(f"f{i}" for i in range(6)), targets, probs)
    assert interp.confusion.tolist() == [[1, 0, 0], [3, 1, 0], [0, 0, 1]]
    assert interp.cell(1, 0) == [4, 2, 5]  # p(b) 0.1, 0.3, 0.4: worst first
    assert interp.top_losses(2) == [4, 2]
    assert interp.most_confused() == [("b", "a", 3)]
    assert np.allclose(interp.losses[0], -np.log(0.9))


def test_interpret_a_learner(tiny_learner: Learner) -> None:
    tiny_learner.fit(0.05, 1)
    Path(tiny_learner.data.valid_items[0].path).write_bytes(b"")  # broken since the scan
    interp = interpret(tiny_learner)
    assert len(interp.paths) == 7 and interp.skipped[0][1].startswith("empty")
    assert interp.confusion.sum() == 7
    probs = tiny_learner.predict(list(interp.paths))
    assert np.allclose(interp.probs, probs, atol=1e-6)
    for a in range(2):
        for p in range(2):
            cell = interp.cell(a, p)
            assert len(cell) == interp.confusion[a, p]
            assert list(interp.losses[cell]) == sorted(interp.losses[cell], reverse=True)
