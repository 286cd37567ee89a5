"""Synthetic cohorts for the meta-analysis example: one per site, made with a fixed seed.

Each site's ``cohort.tsv`` holds one row per person: an id, a phenotype and the person's
genotypes (0, 1 or 2 copies of the alternative allele) at the same variants, named
``<chromosome>:<position>``. A few variants (``CAUSAL``) change the phenotype, so the
combined analysis finds them. The sites share the variants and their allele frequencies
(one population), not their people.

    python3 make_cohorts.py OUTDIR [--variants 1000] [--people 2000]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

SITES = ("sitea", "siteb", "sitec")
SEED = 20261206
CAUSAL = {97: 0.30, 311: -0.25, 512: 0.20, 740: 0.35, 901: -0.30}
"""Variant index -> effect on the phenotype, per allele."""


def variants(count: int) -> list[tuple[str, float]]:
    """Each variant's name and alternative allele frequency (the same at every site)."""
    chance = random.Random(SEED)
    per_chromosome = max(count // 22, 1)
    found = []
    for index in range(count):
        chromosome = min(index // per_chromosome + 1, 22)
        position = 1_000_000 + (index % per_chromosome) * 150_000 + chance.randrange(100_000)
        found.append((f"{chromosome}:{position}", chance.uniform(0.05, 0.5)))
    return found


def write_cohort(path: Path, site_index: int, people: int,
                 known: list[tuple[str, float]]) -> None:
    chance = random.Random(SEED + 1 + site_index)
    lines = ["\t".join(["person", "phenotype", *(name for name, _ in known)])]
    for person in range(people):
        genotypes = [(chance.random() < freq) + (chance.random() < freq) for _, freq in known]
        phenotype = sum(effect * genotypes[index] for index, effect in CAUSAL.items()
                        if index < len(known)) + chance.gauss(0.0, 1.0)
        lines.append("\t".join([f"p{site_index}{person:05d}", f"{phenotype:.6f}",
                                *map(str, genotypes)]))
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--variants", type=int, default=1000)
    parser.add_argument("--people", type=int, default=2000)
    args = parser.parse_args()
    known = variants(args.variants)
    for index, site in enumerate(SITES):
        folder = args.outdir / site
        folder.mkdir(parents=True, exist_ok=True)
        # Sites differ in size, as real cohorts do.
        write_cohort(folder / "cohort.tsv", index, args.people + 200 * (index - 1), known)
        print(folder / "cohort.tsv")


if __name__ == "__main__":
    main()
