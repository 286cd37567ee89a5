"""Per-variant linear regression of a cohort's phenotype on each genotype (an additive
model with an intercept): the effect size (beta), its standard error and the number of
people, one line per variant. Only these aggregates leave the site; the site approves
this image (by digest) and this command to produce them.

    python3 /opt/regress.py cohort.tsv assoc.tsv
"""

import math
import sys


def main(cohort_path: str, out_path: str) -> None:
    with open(cohort_path) as cohort:
        header = cohort.readline().rstrip("\n").split("\t")
        phenotypes, columns = [], [[] for _ in header[2:]]
        for line in cohort:
            fields = line.rstrip("\n").split("\t")
            phenotypes.append(float(fields[1]))
            for column, value in zip(columns, fields[2:]):
                column.append(int(value))
    people = len(phenotypes)
    mean_y = sum(phenotypes) / people
    centred_y = [y - mean_y for y in phenotypes]
    syy = sum(y * y for y in centred_y)
    with open(out_path, "w") as out:
        out.write("variant\tchromosome\tposition\tn\tbeta\tse\n")
        for name, genotypes in zip(header[2:], columns):
            mean_g = sum(genotypes) / people
            sxx = sum((g - mean_g) ** 2 for g in genotypes)
            if sxx == 0:
                continue
            sxy = sum((g - mean_g) * y for g, y in zip(genotypes, centred_y))
            beta = sxy / sxx
            residual = max(syy - beta * sxy, 0.0) / (people - 2)
            chromosome, position = name.split(":")
            out.write(f"{name}\t{chromosome}\t{position}\t{people}\t{beta:.10g}\t"
                      f"{math.sqrt(residual / sxx):.10g}\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
