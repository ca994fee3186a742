"""Lazy package faces: a subpackage lists its public names and the modules that define them;
a name loads its module on first use, so that importing one light module of a package (the
results reader, the reference cells) does not start MPI or load the heavy ones."""

from __future__ import annotations

import importlib


def exports(package: str, where: dict[str, str]):
    """A module ``__getattr__`` that finds ``name`` in ``package.<where[name]>``."""
    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(f"{package}.{where[name]}")
        return module if where[name] == name else getattr(module, name)
    return __getattr__
