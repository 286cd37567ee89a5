"""The process tree page: ``/`` serves a plain HTML page whose script reads the API.

No build step and nothing from other sites: ``static/`` holds the page, its ES modules
and its style sheet, served as they are. The page asks for an API token once and keeps
it in the tab's sessionStorage; the token never goes into a URL the server sees.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

router = APIRouter(include_in_schema=False)

STATIC = resources.files("cwl_crunch.server").joinpath("static")
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
PAGE_HEADERS = {
    # Scripts and styles of this origin only: job names, commands and logs are shown as
    # text, and even if one slipped into the markup it could not run.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data: blob:; connect-src 'self'; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _static_names() -> dict[str, str]:
    """Files the page may load: name -> media type (nothing else is served)."""
    names: dict[str, str] = {}
    if not STATIC.is_dir():  # installed without its package data
        return names
    for item in STATIC.iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in MEDIA_TYPES:
            names[item.name] = MEDIA_TYPES[suffix]
    return names


def _serve(name: str) -> Response:
    media_type = _static_names().get(name)
    if media_type is None:
        raise HTTPException(404, f"no static file {name!r}")
    return Response(STATIC.joinpath(name).read_bytes(), media_type=media_type,
                    headers=PAGE_HEADERS)


@router.get("/")
def page() -> Response:
    """The process tree page (top-level jobs; ``#/jobs/<uuid>`` shows one job)."""
    return _serve("index.html")


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    return _serve(name)
