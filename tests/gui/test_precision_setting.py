"""The Model box's Precision: applied to the model in place, refused in words where the device
cannot run it, and kept between sessions."""

from __future__ import annotations

from pathlib import Path

from tests.gui.conftest import train_briefly, wait_idle


def _choose(window, name: str) -> None:
    combo = window.model_panel.precision_combo
    index = combo.findData(name)
    combo.setCurrentIndex(index)
    combo.activated.emit(index)  # as a click does


def test_precision_applies_in_place_refuses_float16_on_a_cpu_and_is_kept(make_window, dataset: Path, qtbot,
                                                                         tmp_path: Path) -> None:
    settings = tmp_path / "precision.ini"
    window = make_window(settings)
    errors: list[str] = []
    window.show_error = errors.append
    window.open_dataset(str(dataset))
    wait_idle(qtbot, window)
    _choose(window, "bf16")
    train_briefly(qtbot, window, cycles=1)
    learner = window.workspace.learner
    assert learner.precision.name == "bf16" and not errors
    assert window.status.device_label.text().endswith(", bfloat16 (mixed)")

    _choose(window, "fp16")  # this model is on the CPU
    assert len(errors) == 1 and "float16 is for GPUs" in errors[0]
    assert window.model_panel.precision() == "bf16" and learner.precision.name == "bf16"  # nothing changed

    _choose(window, "fp32")
    assert learner.precision.name == "fp32" and window.workspace.learner is learner  # same model, same weights
    _choose(window, "bf16")
    window.close()
    again = make_window(settings)
    assert again.model_panel.precision() == "bf16"
