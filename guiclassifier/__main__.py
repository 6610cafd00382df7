"""`python -m guiclassifier` is the `guiclassifier` command."""

from guiclassifier.cli import main

raise SystemExit(main())
