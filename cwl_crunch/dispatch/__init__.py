"""Dispatchers, one module per backend, picked by name.

Backends are imported when asked for, so importing this package (the worker does, for
process handling) pulls in no backend and no backend's dependencies.
"""

from __future__ import annotations

import importlib

from cwl_crunch.dispatch.base import Dispatcher
from cwl_crunch.errors import ConfigError
from cwl_crunch.model import BACKENDS

# backend name (model.BACKENDS) -> "module:class"
DISPATCHERS: dict[str, str] = {"local": "cwl_crunch.dispatch.local:LocalDispatcher",
                               "slurm": "cwl_crunch.dispatch.slurm:SlurmDispatcher"}
assert tuple(DISPATCHERS) == BACKENDS, "one dispatcher per backend"


def dispatcher_class(name: str) -> type[Dispatcher]:
    """The dispatcher class registered under ``name``."""
    try:
        module_name, class_name = DISPATCHERS[name].split(":")
    except KeyError:
        known = ", ".join(sorted(DISPATCHERS))
        raise ConfigError(f"unknown dispatcher {name!r} (known: {known})") from None
    cls: type[Dispatcher] = getattr(importlib.import_module(module_name), class_name)
    return cls


__all__ = ["DISPATCHERS", "Dispatcher", "dispatcher_class"]
