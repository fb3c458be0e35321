"""curator-report: ``curator report``, a run's report from its checkpoint (terminal, JSON, HTML)."""

__version__ = "0.1.0"
