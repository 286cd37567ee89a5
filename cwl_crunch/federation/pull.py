"""Pull on demand: copy a collection from another cluster, only the blocks this one lacks.

The manifest comes first (its text must hash to the PDH asked for), then each block the
target does not hold, verified against its hash by the source client (``get_block``
raises CorruptBlock) before the target stores it, and the target takes the manifest
last: a pull cut short leaves blocks without a collection, never a collection whose
blocks are missing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from cwl_crunch.errors import CrunchError, PullFailed
from cwl_crunch.model import ClusterClient
from cwl_crunch.store import Manifest, pdh_for
from cwl_crunch.store.locators import parse_locator, split_signature, strip_signatures
from cwl_crunch.store.manifest_subset import manifest_subset


@dataclasses.dataclass(frozen=True)
class PullReport:
    pdh: str
    blocks: int = 0
    """Blocks copied (those the target lacked)."""
    bytes: int = 0
    """Bytes of those blocks."""
    source: str = ""
    """Where they came from (a cluster id), if anything was copied."""


@dataclasses.dataclass(frozen=True)
class PullPlan:
    """What pulling one collection will move: its manifest (checked against its PDH),
    where it came from, and the blocks the target lacks with their total size."""

    pdh: str
    text: bytes
    source: str
    missing: tuple[str, ...]
    """Bare locators, each once."""
    missing_bytes: int
    whole: str = ""
    """The collection asked of the sources for each block ("": ``pdh`` itself): a part
    of a collection (plan_part_pull) is read from the peer as the whole one, the one
    it knows and may give."""

    @property
    def read_from(self) -> str:
        return self.whole or self.pdh


def plan_pull(pdh: str, sources: Sequence[tuple[str, ClusterClient]],
              target: ClusterClient, *, prove: bool = False) -> PullPlan | None:
    """The plan of pulling ``pdh`` from the first of ``sources`` that gives its manifest
    intact; None if the target holds it already; PullFailed if no source can.
    ``prove``: the target holds it, but the sender must show it has it too, by giving
    every block (naming a collection is no proof: a manifest can be written over block
    hashes someone learnt)."""
    if not prove and target.has_collection(pdh):
        return None
    name, text = _intact_manifest(pdh, sources)
    return _plan(pdh, text, name, target, every_block=prove)


def plan_part_pull(pdh: str, paths: Iterable[str],
                   sources: Sequence[tuple[str, ClusterClient]],
                   target: ClusterClient) -> tuple[str, PullPlan | None]:
    """The part of collection ``pdh`` at or below ``paths`` (see store.manifest_subset):
    its PDH, and the plan of pulling it (None: the target holds it already). The whole
    manifest is checked against ``pdh`` first: the part is of that collection."""
    name, text = _intact_manifest(pdh, sources)
    part = manifest_subset(text, paths)
    part_pdh = pdh_for(strip_signatures(part))
    if target.has_collection(part_pdh):
        return part_pdh, None
    return part_pdh, dataclasses.replace(_plan(part_pdh, part, name, target), whole=pdh)


def _intact_manifest(pdh: str,
                     sources: Sequence[tuple[str, ClusterClient]]) -> tuple[str, bytes]:
    """``(source name, manifest text)`` from the first source whose text of ``pdh``
    hashes to it; PullFailed naming what each source said if none does."""
    problems: list[str] = []
    for name, source in sources:
        try:
            text = source.get_manifest(pdh)
        except CrunchError as error:  # down, refusing, or its copy damaged: the next
            problems.append(f"{name}: {error}")
            continue
        bare = strip_signatures(text)
        if pdh_for(bare) != pdh:
            problems.append(f"{name}: its manifest of {pdh} hashes to {pdh_for(bare)}")
            continue
        return name, text
    raise PullFailed(f"collection {pdh}: no peer could give its manifest ("
                     f"{'; '.join(problems) or 'no peer to ask'})")


def _plan(pdh: str, text: bytes, source: str, target: ClusterClient, *,
          every_block: bool = False) -> PullPlan:
    manifest = Manifest.from_text(strip_signatures(text))
    locators = list(dict.fromkeys(loc for entry in manifest.files()
                                  for loc in entry.locators))
    missing = tuple(locators if every_block else target.missing_blocks(locators))
    return PullPlan(pdh, text, source, missing,
                    sum(parse_locator(loc)[1] for loc in missing))


def complete_pull(plan: PullPlan, sources: Sequence[tuple[str, ClusterClient]],
                  target: ClusterClient) -> PullReport:
    """Copy the plan's missing blocks (from its source first, then the others), then
    have the target take the manifest."""
    signed = _signed_forms(plan.text)
    ordered = sorted(sources, key=lambda source: source[0] != plan.source)
    copied = 0
    for locator in plan.missing:
        copied += _pull_block(plan.read_from, signed.get(locator, locator), ordered,
                              target)
    target.put_manifest(strip_signatures(plan.text))  # over bare locators: all here now
    return PullReport(plan.pdh, len(plan.missing), copied,
                      plan.source if plan.missing else "")


def pull_collection(pdh: str, sources: Sequence[tuple[str, ClusterClient]],
                    target: ClusterClient) -> PullReport:
    """Make collection ``pdh`` whole on ``target`` from the first of ``sources`` (named
    ``(cluster id, client)``) that has it: the manifest, then the blocks the target
    lacks, each block from the next source when one source's copy is damaged."""
    plan = plan_pull(pdh, sources, target)
    return PullReport(pdh) if plan is None else complete_pull(plan, sources, target)


def _pull_block(pdh: str, locator: str, sources: Sequence[tuple[str, ClusterClient]],
                target: ClusterClient) -> int:
    """Copy one block from the first source whose copy is intact; its size."""
    problems = []
    for name, source in sources:
        try:
            data = source.get_block(pdh, locator)
        except CrunchError as error:  # damaged there (CorruptBlock), down or refusing
            problems.append(f"{name}: {error}")
            continue
        target.put_block(data)
        return len(data)
    bare = split_signature(locator)[0]
    raise PullFailed(f"block {bare} of collection {pdh}: no intact copy on any peer "
                       f"({'; '.join(problems)})")


def _signed_forms(text: bytes) -> dict[str, str]:
    """Each bare locator of a signed manifest text with its signed form."""
    forms: dict[str, str] = {}
    for line in text.decode("utf-8", "replace").splitlines():
        fields = line.split(" ")
        if fields and fields[0] == "f":
            for locator in fields[4:]:
                bare = split_signature(locator)[0]
                parse_locator(bare)
                forms[bare] = locator
    return forms

