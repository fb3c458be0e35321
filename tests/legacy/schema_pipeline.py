"""The pipeline of the schema fixtures: frozen, never edit it.

Each was written by one run of curator at an older commit, from the repository
root with that commit's ``core/`` on ``PYTHONPATH`` and the key
``schema-checkpoint.key``:

- ``schema1-checkpoint.sqlite``: 9fde9b4^, the last with checkpoint schema 1
  (pickled records);
- ``schema2-interim-checkpoint.sqlite``: 9fde9b4, schema 2 as it was for half an
  hour (worker names per item in the info column, no workers column);
- ``schema2-first-checkpoint.sqlite``: be5ba74, schema 2 as first released (before
  the runs table's seconds, ran and settings columns, the journal's metrics
  column and the states table were added).

The run was::

    import sys
    sys.path.insert(0, "tests/legacy")  # the module's name as a file TARGET gives it
    from curator import run
    from schema_pipeline import build
    run(build(), checkpoint=PATH, on_error="continue", reporter=None, indices=range(6))

so each holds 5 ok items (0-5 but 3, which fails on purpose) and 1 failed one of 8.
``test_checkpoint_schemas.py`` reads them with today's code.
"""

from __future__ import annotations

from wave2_pipeline import Square, Squares


def build() -> object:
    """A fresh pipeline of 8 items (the fixtures'): the wave-2 stages, without stage state."""
    return Squares(8).write(Square())


pipeline = build()
