"""The run's table of locations replaced by in-place updates."""

from __future__ import annotations

from cwl_crunch.cwl.inplace import InplaceUpdates

OLD = "keep:" + "a" * 64 + "+10/dir"
NEW = "keep:" + "b" * 64 + "+12/inp"


def test_unreplaced_locations_read_as_themselves():
    updates = InplaceUpdates()
    assert updates.current(OLD) == OLD
    updates.record(OLD, NEW)
    assert updates.current("keep:" + "c" * 64 + "+1/x") == "keep:" + "c" * 64 + "+1/x"


def test_a_replaced_directory_moves_its_contents_along():
    updates = InplaceUpdates()
    updates.record(OLD, NEW)
    assert updates.current(OLD) == NEW
    assert updates.current(OLD + "/sub/file.txt") == NEW + "/sub/file.txt"
    # A sibling that merely shares the prefix is not inside the directory.
    assert updates.current(OLD + "2/file.txt") == OLD + "2/file.txt"


def test_replacements_chain_through_later_updates():
    newer = "keep:" + "d" * 64 + "+13/inp"
    updates = InplaceUpdates()
    updates.record(OLD, NEW)
    updates.record(NEW, newer)
    assert updates.current(OLD) == newer


def test_a_cycle_does_not_hang():
    updates = InplaceUpdates()
    updates.record(OLD, NEW)
    updates.record(NEW, OLD)
    assert updates.current(OLD) in (OLD, NEW)


def test_recording_a_location_as_itself_changes_nothing():
    updates = InplaceUpdates()
    updates.record(OLD, OLD)
    assert updates.current(OLD) == OLD
