"""Names a package exports without importing them until first used (PEP 562): the
package's ``__init__`` stays light (``import dvsstream`` loads neither torch nor Qt) while
``from dvsstream import Pipeline`` still works. No torch, no Qt."""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Mapping

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, defined_in: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list]]:
    """The module-level ``__getattr__`` and ``__dir__`` of the package named ``package``:
    each name of ``defined_in`` (``name -> the module that defines it``) is imported from
    its module on first access and kept in the package; other names raise
    ``AttributeError`` as usual."""
    def __getattr__(name: str) -> Any:
        module = defined_in.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list:
        return sorted({*vars(sys.modules[package]), *defined_in})

    return __getattr__, __dir__
