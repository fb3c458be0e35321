from __future__ import annotations

import pytest

from curator import UsageError
from curator.model.selection import cpu_count, parse_indices, resolve_indices, resolve_jobs


def test_jobs_follow_joblib() -> None:
    cpus = cpu_count()
    assert resolve_jobs(1) == 1
    assert resolve_jobs(7) == 7
    assert resolve_jobs(-1) == cpus
    if cpus >= 2:
        assert resolve_jobs(-2) == cpus - 1


@pytest.mark.parametrize("bad", [0, 1.5, "2", True, None])
def test_bad_jobs_are_errors(bad: object) -> None:
    with pytest.raises(UsageError, match="jobs"):
        resolve_jobs(bad)


def test_jobs_that_leave_no_cpu() -> None:
    with pytest.raises(UsageError, match="leaves no worker"):
        resolve_jobs(-(cpu_count() + 1))


def test_indices_default_to_all_and_keep_order() -> None:
    assert resolve_indices(None, 4) == range(4)
    assert resolve_indices([3, 0, 2], 4) == [3, 0, 2]
    assert resolve_indices(range(1, 3), 4) == [1, 2]
    assert resolve_indices([], 4) == []


def test_every_bad_index_is_named() -> None:
    with pytest.raises(UsageError) as info:
        resolve_indices([1, 1, -2, 30, "a", 2.0, True], 10)
    message = str(info.value)
    assert "not integers: 'a', 2.0, True" in message
    assert "negative: -2" in message
    assert "out of range (the pipeline has 10 items, 0..9): 30" in message
    assert "duplicated: 1" in message


def test_indices_must_be_a_sequence() -> None:
    with pytest.raises(UsageError, match="got a string"):
        resolve_indices("0:3", 10)
    with pytest.raises(UsageError, match="sequence of integers"):
        resolve_indices(5, 10)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("0:5", [0, 1, 2, 3, 4]),
        ("3,5,9", [3, 5, 9]),
        ("0:10:3", [0, 3, 6, 9]),
        ("0:2,5,8:", [0, 1, 5, 8, 9]),
        (":3", [0, 1, 2]),
        ("7", [7]),
        (" 1 , 2 ", [1, 2]),
    ],
)
def test_parse_index_specs(spec: str, expected: list[int]) -> None:
    assert parse_indices(spec, 10) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("a", "'a' is not an integer$"),
        ("0-5", r"'0-5' is not an integer \(a range is START:STOP, STOP not included: 0:6\)"),
        ("1,2..4", r"'2..4' is not an integer \(a range is START:STOP, STOP not included: 2:5\)"),
        ("5-2", r"'5-2' is not an integer \(a range is START:STOP, STOP not included\)$"),
        ("1,,2", "empty part"),
        ("0:5:0", "step must be positive"),
        ("0:11", "goes past the last index"),
        ("1:2:3:4", "too many ':'"),
        ("-1:3", "is negative"),
        ("0:3,2", "duplicated: 2"),
        ("12", "out of range"),
    ],
)
def test_bad_index_specs(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_indices(spec, 10)
