"""The signing key and signatures of block locators."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cwl_crunch.errors import ConfigError
from cwl_crunch.records.blob_signing import (
    KEY_FILE,
    BlobSigner,
    load_key,
    manifest_signer,
    token_uuid_of,
)
from cwl_crunch.store import locator_for
from cwl_crunch.store.locators import manifest_locators, strip_signatures

BLOCK = locator_for(b"hello")
DAY = 86400.0


def test_the_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    key = load_key(tmp_path / "home")
    path = tmp_path / "home" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 64
    assert load_key(tmp_path / "home") == key
    assert [p.name for p in path.parent.iterdir()] == [KEY_FILE]  # no temporary left
    # A configured key wins; a short one is refused.
    assert load_key(tmp_path / "home", "k" * 40) == b"k" * 40
    with pytest.raises(ConfigError, match="at least 32"):
        load_key(tmp_path / "home", "short")


def test_processes_starting_at_once_agree_on_one_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code = ("import sys; from pathlib import Path; "
            "from cwl_crunch.records.blob_signing import load_key; "
            "print(load_key(Path(sys.argv[1])).decode())")
    started = [subprocess.Popen([sys.executable, "-c", code, str(home)],
                                stdout=subprocess.PIPE, text=True) for _ in range(6)]
    keys = {process.communicate(timeout=60)[0].strip() for process in started}
    assert keys == {(home / KEY_FILE).read_text().strip()}


def test_a_worker_does_not_make_a_key_of_its_own(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="share its server's home"):
        manifest_signer(tmp_path, "", DAY, "crunch/local-tok-x/secret")
    assert not (tmp_path / KEY_FILE).exists()


def test_a_signature_holds_for_its_token_its_block_and_its_time_only() -> None:
    signer = BlobSigner(b"k" * 32, DAY)
    signed = signer.sign(BLOCK, "local-tok-a", now=1000.0)
    assert signed.startswith(BLOCK + "+A") and signed.endswith(f"@{int(1000 + DAY):08x}")
    assert signer.problem(signed, "local-tok-a", now=2000.0) is None
    assert "not this cluster's" in str(signer.problem(signed, "local-tok-b", now=2000.0))
    assert "expired" in str(signer.problem(signed, "local-tok-a", now=1000.0 + DAY))
    assert "no signature" in str(signer.problem(BLOCK, "local-tok-a"))
    other_block = signed.replace(BLOCK, locator_for(b"other"))
    assert "not this cluster's" in str(signer.problem(other_block, "local-tok-a", now=2000.0))
    later = signed[:-8] + f"{int(1000 + 2 * DAY):08x}"
    assert "not this cluster's" in str(signer.problem(later, "local-tok-a", now=2000.0))
    assert "not this cluster's" in str(
        BlobSigner(b"j" * 32, DAY).problem(signed, "local-tok-a", now=2000.0))
    # Signing a signed locator signs its bare one anew.
    assert signer.sign(signed, "local-tok-b", now=5.0) == signer.sign(BLOCK, "local-tok-b",
                                                                     now=5.0)


def test_a_signed_manifest_strips_back_to_the_stored_text(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    load_key(tmp_path / "home")
    sign = manifest_signer(tmp_path / "home", "", DAY, "crunch/local-tok-a/secret")
    text = f"cwl-crunch-manifest 1\nf a - 5 {BLOCK}\nf b - 10 {BLOCK} {BLOCK}\n".encode()
    signed = sign(text)
    assert strip_signatures(signed) == text
    signer = BlobSigner(load_key(tmp_path / "home"), DAY)
    assert [signer.problem(loc, token_uuid_of("crunch/local-tok-a/secret"))
            for loc in manifest_locators(signed)] == [None] * 3
