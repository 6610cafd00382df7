"""`python -m guiclassifier` is the `guiclassifier` command."""

from guiclassifier.cli import main

# The guard matters: loading processes started by forkserver or spawn import this module again.
if __name__ == "__main__":
    raise SystemExit(main())
