"""Names a package exports but imports only on first use (PEP 562), so that a light submodule stays light.

    __getattr__, __dir__ = lazy_exports(__name__, {"TrainConfig": "core.train.config", ...})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, homes: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of `package`, whose names live in the modules `homes` maps
    them to (full module names).

    Nothing is cached in the package: a name that is also a submodule's (``core.train.fine_tune``) keeps resolving
    to the submodule once that is imported, as ``import core.train.fine_tune`` expects.
    """

    def getattr_(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(home), name)

    def dir_() -> list[str]:
        return sorted({*vars(sys.modules[package]), *homes})

    return getattr_, dir_
