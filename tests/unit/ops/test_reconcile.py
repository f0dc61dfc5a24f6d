"""The reconciliation's checks of the per-batch records (pure functions; the sums are tested on real runs)."""

from __future__ import annotations

import dataclasses

from eventlake.ops.reconcile import Reconciliation, broken_chains, missing_batches


def test_every_batch_of_each_writer_from_zero_is_there():
    assert missing_batches([("w", 0), ("w", 1), ("w", 2), ("v", 0)], "intake_batches") == []
    assert missing_batches([("w", 1), ("w", 2), ("w", 5)], "intake_batches") == [
        "intake_batches lacks batches 0, 3-4 of w: records not accounted for"
    ]
    assert missing_batches([("w", 0), ("w", 0)], "t") == ["t holds batches [0] of w more than once"]


def test_batches_that_read_something_chain_from_the_start():
    chain = [("w", 0, None, "a"), ("w", 3, "a", "b"), ("w", 4, "b", "c")]
    assert broken_chains(reversed(chain), "t") == []  # any order: sorted per writer
    assert broken_chains([("w", 0, None, "a"), ("w", 4, "b", "c")], "t") == [
        "t lacks the batches of w between batch 4 and the one after batch 0: the events they read are not accounted for"
    ]
    [missing_first] = broken_chains([("w", 2, "a", "b")], "t")
    assert "between batch 2 and the one before it" in missing_first
    assert broken_chains([("w", 0, None, "a"), ("w", 0, None, "a")], "t") == ["t holds batches [0] of w more than once"]


def test_a_missing_batch_is_reported_instead_of_sums_it_would_break():
    figures = Reconciliation(
        read=10, valid=8, invalid=2, dead_letters=2, windows_read=5, windowed=5, duplicates=0, late=0, counted=5,
        sliding=False, unaccounted=("t lacks batches 1 of w: records not accounted for",),
    )
    assert figures.problems() == ["t lacks batches 1 of w: records not accounted for"]
    complete = dataclasses.replace(figures, windows_read=8, windowed=8, unaccounted=())
    assert complete.problems() == []
    assert dataclasses.replace(complete, windowed=7).problems() == ["valid 8 != windowed 7 + duplicates 0 + late 0"]
