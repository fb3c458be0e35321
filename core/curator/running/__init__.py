"""Running: the run's own process, from a request to a result.

Owns :func:`curator.run`, :func:`curator.stream` and :class:`curator.Session`,
fitting a backend and choosing reporters and features for a run, the run
loop that feeds the backend and takes its outcomes (intake, ending, the
ledger, retries and failure policy, interrupts), stage groups and the end
of a run. May import every sub-package but the command line.
"""
