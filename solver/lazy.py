"""Lazy package faces: a subpackage lists its public names and the modules that define them;
a name loads its module on first use, so that importing one light module of a package (the
results reader, the reference cells) does not start MPI or load the heavy ones."""

from __future__ import annotations

import importlib


def exports(package: str, where: dict[str, str], modules: dict[str, str] | None = None):
    """A module ``__getattr__`` that finds ``name`` in ``package.<where[name]>``, or, for a name of
    ``modules``, gives the module ``package.<modules[name]>`` itself (a short public name)."""
    modules = modules or {}

    def __getattr__(name: str):
        if name in modules:
            return importlib.import_module(f"{package}.{modules[name]}")
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(f"{package}.{where[name]}")
        return module if where[name] == name else getattr(module, name)
    return __getattr__
