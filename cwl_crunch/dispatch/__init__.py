"""Dispatchers, one module per backend, picked by name."""

from __future__ import annotations

from cwl_crunch.dispatch.base import Dispatcher
from cwl_crunch.dispatch.local import LocalDispatcher

DISPATCHERS: dict[str, type[Dispatcher]] = {LocalDispatcher.name: LocalDispatcher}

__all__ = ["DISPATCHERS", "Dispatcher", "LocalDispatcher"]
