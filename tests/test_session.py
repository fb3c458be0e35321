"""``curator.Session`` on the thread pool: one run at a time, refused clearly otherwise."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pipelines import Collect

from curator import RunResult, Session, SessionBusyError, Status, UsageError
from curator.testing.probes import Numbers, probe, started
from curator.testing.waiting import wait_until


def test_a_second_thread_is_refused_while_a_run_holds_the_session(tmp_path: Path) -> None:
    held = probe(8, tmp_path, waits=dict.fromkeys(range(8), ("go",)))
    results: dict[str, RunResult] = {}
    with Session(backend="thread-pool", jobs=2) as session:
        first = threading.Thread(
            target=lambda: results.update(first=session.run(held, reporter=None))
        )
        first.start()
        try:
            wait_until(lambda: started(tmp_path), 20, "the first run's items to start")
            refused = []
            for attempt in (
                lambda: session.run(Numbers(3).write(Collect()), reporter=None),
                lambda: list(session.stream(Numbers(3).write(Collect()), reporter=None)),
            ):
                second = threading.Thread(target=lambda a=attempt: _refused(a, refused))
                second.start()
                second.join(30)
            assert len(refused) == 2, refused
            assert all("one run at a time" in message for message in refused), refused
        finally:
            (tmp_path / "go").touch()
            first.join(30)
        assert not first.is_alive()
        assert results["first"].counts() == {Status.OK: 8}  # nothing cancelled by the other
        # The session is free again once the run ended.
        assert session.run(Numbers(3).write(Collect()), reporter=None).ok


def _refused(attempt: object, refused: list[str]) -> None:
    try:
        attempt()  # type: ignore[operator]
    except SessionBusyError as exc:
        refused.append(str(exc))


def test_a_run_inside_a_streams_loop_is_refused_and_the_stream_goes_on(tmp_path: Path) -> None:
    with Session(backend="thread-pool", jobs=2) as session:
        seen = []
        for outcome in session.stream(probe(6, tmp_path), reporter=None):
            seen.append(outcome.index)
            if len(seen) == 1:
                with pytest.raises(SessionBusyError, match="one run at a time"):
                    session.run(Numbers(2).write(Collect()), reporter=None)
        assert sorted(seen) == list(range(6))


def test_a_stream_not_yet_iterated_does_not_hold_the_session(tmp_path: Path) -> None:
    with Session(backend="thread-pool", jobs=2) as session:
        later = session.stream(probe(4, tmp_path), reporter=None)
        assert session.run(Numbers(3).write(Collect()), reporter=None).ok
        assert sorted(o.index for o in later) == list(range(4))


def test_closing_a_session_while_its_stream_goes_on_lets_the_stream_end(tmp_path: Path) -> None:
    session = Session(backend="thread-pool", jobs=2)
    outcomes = session.stream(probe(6, tmp_path), reporter=None)
    taken = [next(outcomes)]
    session.close()  # the workers stop once the stream ends
    taken += list(outcomes)
    assert sorted(o.index for o in taken) == list(range(6))
    assert all(o.ok for o in taken)
    with pytest.raises(UsageError, match="session is closed"):
        session.run(Numbers(2).write(Collect()), reporter=None)
    # A stream is checked when it is made, as a run is, not once it is iterated.
    with pytest.raises(UsageError, match="session is closed"):
        session.stream(Numbers(2).write(Collect()), reporter=None)


@pytest.mark.parametrize(
    ("jobs", "message"),
    [
        (0, "jobs must not be 0"),
        (1.5, "jobs must be an integer"),
        ("2", "jobs must be an integer"),
        (-100000, "leaves no worker"),
    ],
)
def test_a_session_checks_its_jobs_when_it_opens(jobs: object, message: str) -> None:
    # As its backend and options are: before any run, not at the first.
    with pytest.raises(UsageError, match=message):
        Session(backend="thread-pool", jobs=jobs)  # type: ignore[arg-type]
