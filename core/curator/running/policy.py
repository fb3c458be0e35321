"""The failure policies of a run, validated once and applied by the run loop."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from curator.model.errors import UsageError

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
    setup_timeout, teardown_timeout
        Seconds a worker's stages may take in ``setup(worker)`` / in
        ``teardown()`` (see :mod:`curator.backends.lifecycle`): a setup past it fails
        the items that worker took, a teardown past it is abandoned with a
        warning. ``None``: derived from ``timeout`` (see
        :func:`derived_hook_limit`), no limit without one; ``0``: no limit.
    """

    on_error: OnError = "raise"
    max_failures: int | None = None
    retries: int = 0
    retry_delay: float = 0.0
    retry_backoff: float = 2.0
    timeout: float | None = None
    grace: float = 30.0
    setup_timeout: float | None = None
    teardown_timeout: float | None = None

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
        for name in ("setup_timeout", "teardown_timeout"):
            if getattr(self, name) is not None:
                _check_number(name, getattr(self, name), minimum=0.0)

    @property
    def setup_limit(self) -> float | None:
        """Seconds a worker's ``setup(worker)`` may take (``None``: no limit)."""
        return _hook_limit(self.setup_timeout, self.timeout)

    @property
    def teardown_limit(self) -> float | None:
        """Seconds a worker's ``teardown()`` may take (``None``: no limit)."""
        return _hook_limit(self.teardown_timeout, self.timeout)

    @property
    def limits_hooks(self) -> bool:
        """Whether ``setup_timeout`` or ``teardown_timeout`` was given as a limit (not derived)."""
        return bool(self.setup_timeout) or bool(self.teardown_timeout)

    @property
    def failure_budget(self) -> int | None:
        """How many final failures stop the run (``None``: never)."""
        if self.max_failures is not None:
            return self.max_failures
        return 1 if self.on_error == "raise" else None

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2 for the first retry)."""
        return float(self.retry_delay * self.retry_backoff ** (attempt - 2))


HOOK_LIMIT_FACTOR = 10
"""With an item timeout ``S`` and no hook limit given, setup and teardown get ``10 S`` ..."""
HOOK_LIMIT_FLOOR = 60.0
"""... but at least a minute: loading a model or opening a connection is slower than an item."""


def derived_hook_limit(timeout: float) -> float:
    """The setup/teardown limit that an item timeout of ``timeout`` seconds implies."""
    return max(HOOK_LIMIT_FLOOR, HOOK_LIMIT_FACTOR * timeout)


def _hook_limit(given: float | None, timeout: float | None) -> float | None:
    if given is not None:
        return float(given) if given > 0 else None
    return derived_hook_limit(timeout) if timeout is not None else None


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
