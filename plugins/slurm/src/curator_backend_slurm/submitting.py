"""Submitting a job array with submitit, its ``sbatch`` error said once.

When ``sbatch`` refuses a script, submitit prints sbatch's message to stderr
and then raises an error holding the same message, which the backend passes on
as a :class:`curator.UsageError`: the user read it twice. What the submitting
thread writes to stderr meanwhile is held back, and the copy of the error's
text dropped; other threads (a live progress display) write as before.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any

from curator import UsageError


def submit_array(
    folder: str, parameters: dict[str, Any], task: Callable[..., Any], *arguments: Sequence[Any]
) -> list[Any]:
    """``task`` mapped over ``arguments`` as one job array: submitit's jobs, by position.

    Raises
    ------
    UsageError
        When ``sbatch`` (or submitit) refuses the array; its message once.
    """
    import submitit

    executor = submitit.SlurmExecutor(folder=folder)
    with _held_stderr() as held:
        try:
            executor.update_parameters(**parameters)
            return list(executor.map_array(task, *arguments))
        except Exception as exc:
            said = str(exc).strip()
            held.drop(said)  # submitit's own print of what the error says
            raise UsageError(f"sbatch refused the job array: {said or type(exc).__name__}") from exc


class _ThreadSplitStderr:
    """``sys.stderr`` for a moment: the submitting thread's writes held, the others' passed on.

    Once released, it passes everything on: whoever saved it meanwhile
    (a live display that redirects stderr, a run's capture) and puts it back
    later loses nothing.
    """

    def __init__(self, real: IO[str]) -> None:
        self._real = real
        self._thread: int | None = threading.get_ident()
        self._held: list[str] = []

    def write(self, text: str) -> int:
        if threading.get_ident() == self._thread:
            self._held.append(text)
            return len(text)
        return self._real.write(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def drop(self, text: str) -> None:
        """Forget the first copy of ``text`` among what was held (the rest still goes out)."""
        if text:
            self._held = ["".join(self._held).replace(text, "", 1)]

    def release(self) -> None:
        """Write out what was held, and from now on pass everything on."""
        held, self._held, self._thread = "".join(self._held), [], None
        if held.strip():
            self._real.write(held)
            self._real.flush()

    def __getattr__(self, name: str) -> Any:  # flush, isatty, encoding, fileno ...
        return getattr(self._real, name)


@contextlib.contextmanager
def _held_stderr() -> Iterator[_ThreadSplitStderr]:
    real = sys.stderr
    split = _ThreadSplitStderr(real)
    sys.stderr = split
    try:
        yield split
    finally:
        if sys.stderr is split:  # unless somebody replaced it meanwhile
            sys.stderr = real
        split.release()
