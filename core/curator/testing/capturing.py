"""The kit's checks of captured output: each item's prints travel on its own outcome.

A mixin of :class:`curator.testing.BackendConformance`, like
:class:`~curator.testing.grouping.GroupChecks`. Capture happens inside
:class:`curator.Work`, so a backend gets it by calling the work; one that
builds outcomes itself from :meth:`curator.Work.run_index` must carry
:attr:`curator.Work.captured` along.
"""

from __future__ import annotations

import re

from curator.model.outcome import Status
from curator.testing.mixin import KitMixin
from curator.testing.probes import chatter

_ANY_ITEM = re.compile(r"item (\d+) ")


class CaptureChecks(KitMixin):
    """What an item writes to stdout, stderr and logging is on its outcome, and only there."""

    def test_each_item_carries_what_it_printed_and_nothing_else(self) -> None:
        """Items that print at the same time each get their own lines, failures included."""
        result = self.run(12, chatty=True, sleep=0.005, fail=frozenset({3}))
        assert [o.index for o in result.outcomes if not o.ok] == [3]
        for outcome in result.outcomes:
            assert outcome.output is not None, (
                f"item {outcome.index} printed but its outcome has no output: a backend that "
                "builds outcomes from Work.run_index must carry Work.captured (or call the work)"
            )
            text = outcome.output.text
            said, complained, logged = chatter(outcome.index)
            assert said in text, text
            assert complained in text, text
            assert f"WARNING curator.testing.probe: {logged}" in text, text
            others = {int(n) for n in _ANY_ITEM.findall(text)} - {outcome.index}
            assert not others, f"item {outcome.index} carries the output of items {others}"

    def test_capture_can_be_turned_off(self) -> None:
        """``capture=False``: outcomes carry no output."""
        result = self.run(4, chatty=True, capture=False)
        assert result.ok
        assert [o.output for o in result.outcomes] == [None] * 4

    def test_bytes_written_to_stdout_fail_only_that_item_as_they_do_without_capture(
        self,
    ) -> None:
        """``sys.stdout.write(b"...")`` is that item's ``TypeError``, with or without capture."""
        errors = {}
        for capture in (True, False):
            result = self.run(6, binary=frozenset({2}), capture=capture)
            assert [o.index for o in result.outcomes if not o.ok] == [2], result.counts()
            failed = result.outcomes[2]
            assert failed.status is Status.FAILED, failed
            assert failed.error is not None
            errors[capture] = (failed.error.type, failed.error.message)
        assert errors[True] == errors[False], (
            "writing bytes to sys.stdout must fail the item as a text stream does: "
            f"captured {errors[True]}, not captured {errors[False]}"
        )
