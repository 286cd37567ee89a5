"""``cwl-crunch server``: the HTTP API, its event stream and the process tree page."""

from cwl_crunch.server.app import create_app

__all__ = ["create_app"]
