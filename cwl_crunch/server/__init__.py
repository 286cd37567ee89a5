"""``cwl-crunch server``: the HTTP API, its event stream and the process tree page.

Importing this package imports nothing else: ``job_api`` must stay cheap to import for
every SDK program (FastAPI and uvicorn take ~1 s of CPU here; see job_api).
"""
