"""The checkpoint: the SQLite file that records a run, resume, and reading it back.

Owns the file's schema and migrations, the journal of outcome batches and
stage partials (written in one transaction), the run lock, the user's key
that signs pickled data, the fingerprint of a pipeline, the remembered run
settings, the reading of the latest outcome per item, what a resume skips,
the public reading API (:mod:`curator.checkpoint.recorded`) and the
``builtin-checkpoint`` plugin. May import :mod:`curator.model`,
:mod:`curator.plugin_host` and :mod:`curator.observing`; never a backend,
the run or the command line: a checkpoint can be read without running
anything.
"""
