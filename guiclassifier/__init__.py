"""guiclassifier: train an image classifier by pointing and clicking (fast.ai lesson-1 recipe).

The engine is importable without Qt::

    from guiclassifier import ImageData, Learner
"""

__version__ = "0.1.0"

from guiclassifier.core import ImageData, Learner  # noqa: E402

__all__ = ["ImageData", "Learner", "__version__"]
