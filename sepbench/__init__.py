"""sepbench: a testbed for representational separations between Transformers and RNNs.

Importing the top-level package is cheap and never imports torch: the task generators
(`sepbench.tasks`) and the theory catalogue (`sepbench.theory`) depend on numpy/scipy only.
"""

__version__ = "0.1.0"
