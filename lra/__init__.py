"""Long Range Arena tasks: readers of the real sources, offline generators, cached tensors.

    from lra.data import load
    train = load("listops", "train")    # TaskData: inputs, labels, inputs2, info, skipped

Importing the package registers every task (one module each).
"""

from lra import image, listops, pathfinder, recall, retrieval, text  # noqa: F401 (registration)
from lra.registry import SPLITS, BadData, MissingData, TaskInfo, info, names, suite, task

__all__ = ["SPLITS", "BadData", "MissingData", "TaskInfo", "info", "names", "suite", "task"]
