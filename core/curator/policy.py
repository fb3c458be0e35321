"""The failure policies of a run, validated once and applied by the run loop."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from curator.errors import UsageError

OnError = Literal["raise", "continue"]


@dataclass(frozen=True)
class Policy:
    """How a run treats failures, retries, slow items and interrupts.

    Attributes
    ----------
    on_error
        ``"raise"``: stop at the first failed item; ``"continue"``: run everything.
    max_failures
        Stop once this many items have failed (after their retries); overrides
        ``on_error``.
    retries
        Extra attempts for failed, crashed and timed-out items.
    retry_delay
        Seconds before the first retry round; each later round waits
        ``retry_backoff`` times longer.
    retry_backoff
        Growth factor of the delay between retry rounds.
    timeout
        Seconds an item may run (backends that declare ``timeouts`` only).
    grace
        Seconds running items get to finish after the first Ctrl-C.
    """

    on_error: OnError = "raise"
    max_failures: int | None = None
    retries: int = 0
    retry_delay: float = 0.0
    retry_backoff: float = 2.0
    timeout: float | None = None
    grace: float = 30.0

    def __post_init__(self) -> None:
        if self.on_error not in ("raise", "continue"):
            raise UsageError(f"on_error must be 'raise' or 'continue', got {self.on_error!r}")
        _check_int("max_failures", self.max_failures, minimum=1, optional=True)
        _check_int("retries", self.retries, minimum=0)
        _check_number("retry_delay", self.retry_delay, minimum=0.0)
        _check_number("retry_backoff", self.retry_backoff, minimum=1.0)
        _check_number("grace", self.grace, minimum=0.0)
        if self.timeout is not None:
            _check_number("timeout", self.timeout, minimum=0.0)
            if self.timeout <= 0:
                raise UsageError(f"timeout must be > 0 seconds, got {self.timeout!r}")

    @property
    def failure_budget(self) -> int | None:
        """How many final failures stop the run (``None``: never)."""
        if self.max_failures is not None:
            return self.max_failures
        return 1 if self.on_error == "raise" else None

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2 for the first retry)."""
        return float(self.retry_delay * self.retry_backoff ** (attempt - 2))


def _check_int(name: str, value: object, *, minimum: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_number(name: str, value: object, *, minimum: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < minimum
    ):
        raise UsageError(f"{name} must be a finite number >= {minimum:g}, got {value!r}")
