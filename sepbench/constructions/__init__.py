"""Hand-built constructions: the theorems' networks, weights set by hand on sepbench.models.

``constructions.registry()`` lists them; ``constructions.get(name).build(length, **params)``
returns a :class:`HandBuilt`. See docs/constructions.md for their widths and verification.
Every module of this package is imported here, so a new construction registers itself by
living in a module of its own.
"""

import importlib
import pkgutil

from sepbench.constructions.base import (
    BatchCheck,
    Construction,
    HandBuilt,
    check_batch,
    get,
    register,
    registry,
)

for _info in pkgutil.iter_modules(__path__):
    if _info.name not in ("base", "verify", "precision", "curves", "docs"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["BatchCheck", "Construction", "HandBuilt", "check_batch", "get", "register", "registry"]
