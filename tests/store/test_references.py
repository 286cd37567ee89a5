import hashlib

import pytest

from cwl_crunch.errors import InvalidManifest
from cwl_crunch.store import split_reference

PDH = f"{hashlib.sha256(b'manifest').hexdigest()}+8"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (PDH, (PDH, "")),
        (f"{PDH}/", (PDH, "")),
        (f"keep:{PDH}", (PDH, "")),
        (f"{PDH}/dir/file.txt", (PDH, "dir/file.txt")),
        (f"keep:{PDH}/dir/file.txt", (PDH, "dir/file.txt")),
        (f"keep:{PDH}/dir/sub/", (PDH, "dir/sub")),
        (f"{PDH}/with space/ünïcode%", (PDH, "with space/ünïcode%")),
    ],
)
def test_good_references(text, expected):
    assert split_reference(text) == expected


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "bad collection reference"),
        ("keep:", "bad collection reference"),
        ("not-a-pdh/file", "bad collection reference"),
        (f"{PDH[:-2]}/file", "bad collection reference"),
        (f"KEEP:{PDH}/file", "bad collection reference"),
        (f"/{PDH}/file", "bad collection reference"),
        (f"keep:{PDH.upper()}/file", "bad collection reference"),
        (f"{PDH}/../etc/passwd", "component"),
        (f"{PDH}/dir/../../x", "component"),
        (f"{PDH}/dir//file", "component"),
        (f"{PDH}/./file", "component"),
    ],
)
def test_bad_references_say_what_is_wrong(text, complaint):
    with pytest.raises(InvalidManifest, match=complaint) as raised:
        split_reference(text)
    assert repr(text) in str(raised.value)
