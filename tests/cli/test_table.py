"""cwl_crunch.cli.table: aligned plain-text tables and human units."""

from __future__ import annotations

import pytest

from cwl_crunch.cli.table import format_table, human_duration, human_size


def column_starts(widths):
    starts, position = [], 0
    for width in widths:
        starts.append(position)
        position += width + 2
    return starts


def test_columns_are_aligned():
    headers = ["UUID", "STATE", "NAME"]
    rows = [["local-job-1", "Queued", "a"], ["x", "Complete", "a much longer name"],
            ["", "", "z"]]
    lines = format_table(headers, rows).split("\n")
    assert len(lines) == 4
    # Widths: widest cell of each column (header included).
    starts = column_starts([len("local-job-1"), len("Complete"), len("a much longer name")])
    assert starts == [0, 13, 23]
    assert lines[0] == "UUID" + " " * 9 + "STATE" + " " * 5 + "NAME"
    for line, row in zip(lines, [headers, *rows], strict=True):
        assert line[starts[1]:].startswith(row[1])
        assert line[starts[2]:] == row[2]
        assert line[:starts[1]].rstrip() == row[0]


def test_last_column_is_not_padded_and_lines_have_no_trailing_space():
    table = format_table(["A", "B"], [["1", "short"], ["2", "much longer"], ["3", ""]])
    lines = table.split("\n")
    assert lines[1] == "1  short"
    assert lines[2] == "2  much longer"
    assert lines[3] == "3"
    assert all(line == line.rstrip() for line in lines)


def test_header_wider_than_cells():
    assert format_table(["LONG HEADER", "X"], [["a", "b"]]) == "LONG HEADER  X\na            b"


def test_headers_only():
    assert format_table(["A", "BB", "C"], []) == "A  BB  C"


def test_single_column():
    assert format_table(["NAME"], [["x"], ["yy"]]) == "NAME\nx\nyy"


def test_row_of_the_wrong_length_is_an_error():
    with pytest.raises(ValueError):
        format_table(["A", "B"], [["1", "2", "3"]])


@pytest.mark.parametrize("seconds, text", [
    (None, "-"),
    (0, "0.00s"),
    (0.004, "0.00s"),
    (1.234, "1.23s"),
    (9.99, "9.99s"),
    (10, "10.0s"),
    (10.04, "10.0s"),
    (59.9, "59.9s"),
    (60, "1m00s"),
    (61.9, "1m01s"),
    (599, "9m59s"),
    (3599, "59m59s"),
    (3599.9, "59m59s"),
    (3600, "1h00m"),
    (3661, "1h01m"),
    (86399, "23h59m"),
    (90000, "25h00m"),
])
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


@pytest.mark.parametrize("seconds", [59.95, 59.99])
def test_human_duration_never_shows_sixty_seconds(seconds):
    assert human_duration(seconds) in ("59.9s", "1m00s")


@pytest.mark.parametrize("size, text", [
    (0, "0 B"),
    (1, "1 B"),
    (1023, "1023 B"),
    (1024, "1.0 KiB"),
    (1536, "1.5 KiB"),
    (1024 * 1000, "1000.0 KiB"),
    (1 << 20, "1.0 MiB"),
    (5 * (1 << 20) + (1 << 19), "5.5 MiB"),
    (1 << 30, "1.0 GiB"),
    (3 << 40, "3072.0 GiB"),  # no unit above GiB
])
def test_human_size(size, text):
    assert human_size(size) == text


@pytest.mark.parametrize("size, text", [((1 << 20) - 1, "1.0 MiB"), ((1 << 30) - 1, "1.0 GiB")])
def test_human_size_just_below_a_boundary(size, text):
    assert human_size(size) == text
