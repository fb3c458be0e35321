"""Dispatch planning: chunk sizes (probe, aim at ~50 ms, balance the tail) and whole units."""

from __future__ import annotations

from curator.backends.dispatch import ChunkSizer


def test_the_first_chunk_probes_with_one_item() -> None:
    assert ChunkSizer(2).next_size(10_000) == 1


def test_chunks_aim_at_the_target_duration() -> None:
    sizer = ChunkSizer(2, target_seconds=0.05)
    sizer.observe(10, 0.01)  # 1 ms per item
    assert sizer.next_size(1_000_000) == 50


def test_the_tail_is_balanced_across_workers() -> None:
    sizer = ChunkSizer(2, target_seconds=0.05)
    sizer.observe(1000, 0.001)  # 1 us per item: 50,000 per chunk wanted
    # With 1000 items left for 2 workers, a chunk takes at most a quarter of each share.
    assert sizer.next_size(1000) == 125
    assert sizer.next_size(9) == 2
    assert sizer.next_size(1) == 1


def test_chunks_never_exceed_the_cap() -> None:
    sizer = ChunkSizer(1)
    sizer.observe(1000, 1e-9)
    assert sizer.next_size(10**9) == sizer.max_chunk == 8192


def test_a_fixed_size_is_used_as_given() -> None:
    sizer = ChunkSizer(2, fixed=7)
    assert sizer.next_size(100) == 7
    sizer.observe(7, 10.0)
    assert sizer.next_size(100) == 7
    assert sizer.next_size(3) == 3


def test_recent_chunks_weigh_more() -> None:
    sizer = ChunkSizer(1, target_seconds=1.0)
    sizer.observe(1, 0.001)
    sizer.observe(1, 0.003)  # the pace changed: the estimate moves halfway
    assert sizer.seconds_per_item is not None
    assert abs(sizer.seconds_per_item - 0.002) < 1e-12
