"""The `guiclassifier` command line: `commands` parses and runs, `progress` prints, `lr_plot_png`
draws the lr_find plot for `--plot`."""

from guiclassifier.cli.commands import COMMANDS, main

__all__ = ["COMMANDS", "main"]
