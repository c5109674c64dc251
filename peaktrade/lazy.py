"""Names of a package loaded on first use (PEP 562), so that its light modules can be imported alone."""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module
from typing import Any


def loader(package: str, home: dict[str, str]) -> Callable[[str], Any]:
    """The `__getattr__` of `package`: each name of `home` comes from its module there, imported when first asked
    for and kept in the package from then on."""

    def load(name: str) -> Any:
        module = home.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return load
