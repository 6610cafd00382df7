"""What the window and the command line share above the engine, without Qt: the open project's
state and the rules for what happens after each job (`workspace`), the jobs themselves with their
typed results (`jobs`), and the settings a run is started with (`settings`).

Importing this package loads no torch: the window shows before the engine has loaded."""

from guiclassifier.workspace.settings import DataSettings, ModelKey, RunSettings
from guiclassifier.workspace.workspace import Workspace

__all__ = ["DataSettings", "ModelKey", "RunSettings", "Workspace"]
