"""Making Grad-CAM heatmaps on the worker for the Interpret gallery and the Predict rows: the one way
both tabs ask for them, and when maps already made stop being true (the model changed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from guiclassifier.workspace.jobs import HeatmapsMade, bind, heatmap_job

if TYPE_CHECKING:
    from guiclassifier.core.gradcam import Heatmap
    from guiclassifier.core.learner import Learner
    from guiclassifier.gui.panels.host import Host
    from guiclassifier.gui.widgets.heatmap_controls import HeatmapControls

HEATMAP_JOB = "Making heatmaps"


def model_version(learner: Learner | None) -> tuple[int, int] | None:
    """Changes whenever the model's weights may have: another model, or one more epoch trained."""
    return None if learner is None else (id(learner), len(learner.history))


def start_heatmaps(host: Host, controls: HeatmapControls, paths: Sequence[str],
                   show: Callable[[Sequence[Heatmap]], None]) -> bool:
    """Make the maps of those of `paths` that `controls` has none of for the project's model as it
    is now, on the worker, then `show` them; False when there is nothing to do, no model, or a job
    is running."""
    learner = host.workspace.learner
    if learner is None or host.runner.busy:
        return False
    paths = controls.missing(paths, model_version(learner))
    if not paths:
        return False

    def done(made: HeatmapsMade) -> None:
        from guiclassifier.core.gradcam import GRID_DIVISOR, is_coarse

        show(made.heatmaps)
        side = learner.size // GRID_DIVISOR
        coarse = (f" At {learner.size} px the model's last layer is a {side}\u00d7{side} grid, so the maps are "
                  "coarse: train at 224 px for detail." if is_coarse(learner.size) else "")
        host.set_status(f"Heatmaps: where the model looked, for {len(made.heatmaps)} images.{coarse}")

    return host.start(HEATMAP_JOB, bind(heatmap_job, learner, list(paths)), done)
