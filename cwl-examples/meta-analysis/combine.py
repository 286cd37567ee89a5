"""Fixed-effect inverse-variance meta-analysis of per-site association results (as METAL
does with SCHEME STDERR): for each variant, w_i = 1 / se_i^2, beta = sum(w_i beta_i) /
sum(w_i), se = 1 / sqrt(sum(w_i)), z = beta / se, p = erfc(|z| / sqrt(2)).

Writes ``meta.tsv`` (every variant, by p), ``top_variants.tsv`` (the 20 smallest p) and
``manhattan.png`` (-log10 p by position, chromosomes in alternating colours, a line at
genome-wide significance, 5e-8). Standard library only.

    python3 combine.py assoc1.tsv assoc2.tsv ...
"""

from __future__ import annotations

import math
import struct
import sys
import zlib

TOP = 20
SIGNIFICANT = 5e-8


def read_results(paths: list[str]) -> dict[str, list[tuple[int, int, float, float, int]]]:
    """Variant -> [(chromosome, position, beta, se, n), ...], one entry per site."""
    found: dict[str, list[tuple[int, int, float, float, int]]] = {}
    for path in paths:
        with open(path) as results:
            results.readline()
            for line in results:
                name, chromosome, position, n, beta, se = line.rstrip("\n").split("\t")
                found.setdefault(name, []).append(
                    (int(chromosome), int(position), float(beta), float(se), int(n)))
    return found


def combine(found: dict[str, list[tuple[int, int, float, float, int]]]) -> list[tuple]:
    rows = []
    for name, sites in found.items():
        weights = [1.0 / se ** 2 for _, _, _, se, _ in sites]
        total = sum(weights)
        beta = sum(w * b for w, (_, _, b, _, _) in zip(weights, sites)) / total
        se = 1.0 / math.sqrt(total)
        z = beta / se
        p = math.erfc(abs(z) / math.sqrt(2))
        chromosome, position = sites[0][0], sites[0][1]
        rows.append((name, chromosome, position, len(sites), sum(s[4] for s in sites),
                     beta, se, z, p))
    rows.sort(key=lambda row: (row[8], row[1], row[2]))
    return rows


def write_table(path: str, rows: list[tuple]) -> None:
    with open(path, "w") as out:
        out.write("variant\tchromosome\tposition\tsites\tn\tbeta\tse\tz\tp\n")
        for name, chromosome, position, sites, n, beta, se, z, p in rows:
            out.write(f"{name}\t{chromosome}\t{position}\t{sites}\t{n}\t{beta:.6g}\t"
                      f"{se:.6g}\t{z:.6g}\t{p:.6g}\n")


# The Manhattan plot, drawn into an RGB raster and written as a PNG ---------------------
DIGITS = {  # 3x5 glyphs
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001001001001", "8": "111101111101111",
    "9": "111101111001111",
}
WIDTH, HEIGHT, LEFT, BOTTOM, TOP_MARGIN, RIGHT = 1200, 480, 60, 50, 20, 20
COLOURS = ((31, 78, 140), (120, 170, 220))


class Raster:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(b"\xff" * (width * height * 3))

    def dot(self, x: int, y: int, colour: tuple[int, int, int], size: int = 1) -> None:
        for dx in range(-size, size + 1):
            for dy in range(-size, size + 1):
                px, py = x + dx, y + dy
                if 0 <= px < self.width and 0 <= py < self.height:
                    at = (py * self.width + px) * 3
                    self.pixels[at:at + 3] = bytes(colour)

    def text(self, x: int, y: int, digits: str, scale: int = 2) -> None:
        for index, char in enumerate(digits):
            glyph = DIGITS.get(char)
            if glyph is None:
                continue
            for bit, on in enumerate(glyph):
                if on == "1":
                    for sx in range(scale):
                        for sy in range(scale):
                            self.dot(x + (index * 4 + bit % 3) * scale + sx,
                                     y + (bit // 3) * scale + sy, (0, 0, 0), 0)

    def png(self) -> bytes:
        rows = b"".join(b"\x00" + bytes(self.pixels[y * self.width * 3:(y + 1) * self.width * 3])
                        for y in range(self.height))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return (struct.pack(">I", len(data)) + kind + data
                    + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def manhattan(rows: list[tuple]) -> bytes:
    raster = Raster(WIDTH, HEIGHT)
    ordered = sorted(rows, key=lambda row: (row[1], row[2]))
    chromosomes = sorted({row[1] for row in ordered})
    logs = [-math.log10(max(row[8], 1e-300)) for row in ordered]
    top = max([*logs, -math.log10(SIGNIFICANT)]) * 1.05
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - BOTTOM - TOP_MARGIN

    def y_of(value: float) -> int:
        return TOP_MARGIN + plot_h - int(value / top * plot_h)

    for x in range(LEFT, WIDTH - RIGHT):  # axes, and the significance line (dashed)
        raster.dot(x, TOP_MARGIN + plot_h, (0, 0, 0), 0)
        if (x // 6) % 2 == 0:
            raster.dot(x, y_of(-math.log10(SIGNIFICANT)), (200, 40, 40), 0)
    for y in range(TOP_MARGIN, TOP_MARGIN + plot_h):
        raster.dot(LEFT, y, (0, 0, 0), 0)
    step = max(1, int(top / 6) or 1)
    for tick in range(0, int(top) + 1, step):
        raster.dot(LEFT - 4, y_of(tick), (0, 0, 0), 1)
        raster.text(LEFT - 12 - 8 * len(str(tick)), y_of(tick) - 5, str(tick))
    for index, (row, value) in enumerate(zip(ordered, logs)):
        x = LEFT + 4 + int(index / max(len(ordered) - 1, 1) * (plot_w - 8))
        raster.dot(x, y_of(value), COLOURS[chromosomes.index(row[1]) % 2], 2)
    for chromosome in chromosomes:
        where = [i for i, row in enumerate(ordered) if row[1] == chromosome]
        middle = LEFT + 4 + int((where[0] + where[-1]) / 2 / max(len(ordered) - 1, 1)
                                * (plot_w - 8))
        raster.text(middle - 4 * len(str(chromosome)), HEIGHT - BOTTOM + 10, str(chromosome))
    return raster.png()


def main(paths: list[str]) -> None:
    rows = combine(read_results(paths))
    write_table("meta.tsv", rows)
    write_table("top_variants.tsv", rows[:TOP])
    with open("manhattan.png", "wb") as out:
        out.write(manhattan(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
