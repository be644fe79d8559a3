import os

# One process, one thread: the figures of tasks.md are per core.
os.environ.setdefault("OMP_NUM_THREADS", "1")
