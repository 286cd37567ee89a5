"""Record UUIDs: ``<cluster id>-<kind>-<15 random base-36 chars>``.

The cluster id prefix tells any holder of a UUID which cluster owns the record.
"""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits
KINDS = ("job", "col", "tok", "rel")


def new_uuid(cluster_id: str, kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown record kind {kind!r}")
    # One call to the OS for randomness (secrets.choice would make one per character).
    number = int.from_bytes(secrets.token_bytes(10))
    tail = []
    for _ in range(15):
        number, digit = divmod(number, 36)
        tail.append(_ALPHABET[digit])
    return f"{cluster_id}-{kind}-{''.join(tail)}"
