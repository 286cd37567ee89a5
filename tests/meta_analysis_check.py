"""The meta-analysis example's result computed directly from the cohorts, and a look
into stores for a collection's blocks (tests of the example and of residency)."""

from __future__ import annotations

import math
from pathlib import Path

from cwl_crunch.store import CollectionStore


def direct_meta(cohort_paths: list[Path]) -> dict[str, tuple[float, float]]:
    """The inverse-variance combination of per-site least squares fits, computed here
    from the cohorts (a formulation of its own: sums of products, not centred data)."""
    per_variant: dict[str, list[tuple[float, float]]] = {}
    for path in cohort_paths:
        lines = path.read_text().splitlines()
        names = lines[0].split("\t")[2:]
        rows = [line.split("\t") for line in lines[1:]]
        ys = [float(row[1]) for row in rows]
        n = len(ys)
        for column, name in enumerate(names):
            xs = [float(row[column + 2]) for row in rows]
            sx, sy = sum(xs), sum(ys)
            sxx = sum(x * x for x in xs) - sx * sx / n
            sxy = sum(x * y for x, y in zip(xs, ys, strict=True)) - sx * sy / n
            syy = sum(y * y for y in ys) - sy * sy / n
            beta = sxy / sxx
            se = math.sqrt((syy - beta * sxy) / (n - 2) / sxx)
            per_variant.setdefault(name, []).append((beta, se))
    combined = {}
    for name, fits in per_variant.items():
        weights = [1 / se ** 2 for _, se in fits]
        weighted = sum(w * b for w, (b, _) in zip(weights, fits, strict=True))
        combined[name] = (weighted / sum(weights), 1 / math.sqrt(sum(weights)))
    return combined


def blocks_of(store: Path, pdh: str) -> list[str]:
    """The locators of collection ``pdh`` in the store at ``store``."""
    return sorted({locator for file in CollectionStore(store).manifest(pdh).files()
                   for locator in file.locators})


def held_blocks(store: Path, locators: list[str]) -> set[str]:
    """Those of ``locators`` whose blocks the store at ``store`` holds."""
    return set(locators) - set(CollectionStore(store).missing_blocks(locators))
