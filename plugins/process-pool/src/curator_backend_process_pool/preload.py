"""What the fork server imports once, before it forks any worker (its only importer).

Workers fork from the server with curator's worker side already imported.
The import runs with the cycle collector paused (the thousands of objects it
makes would set off a full collection in the middle, on every run's start
path), then everything it made is frozen: those objects live as long as the
process, so neither the server nor the workers forked from it scan them
again, and a worker's collections do not write to the pages it shares with
the server.
"""

from __future__ import annotations

import gc

collecting = gc.isenabled()
gc.disable()
try:
    import curator.backends.work  # noqa: F401
    import curator_backend_process_pool.worker  # noqa: F401
finally:
    if collecting:
        gc.enable()
gc.freeze()
