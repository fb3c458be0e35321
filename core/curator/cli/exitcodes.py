"""Exit codes of the ``curator`` command."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """What ``curator`` returns to the shell."""

    OK = 0
    """Everything asked for succeeded."""
    TASKS_FAILED = 1
    """The run finished or stopped with failed items."""
    USAGE_ERROR = 2
    """Bad arguments: target, backend, option, indices (argparse uses 2 as well)."""
    INTERNAL_ERROR = 3
    """A bug in curator or a built-in backend; the traceback is printed."""
    PLUGIN_ERROR = 4
    """The plugin providing what was asked for is broken, or its backend broke the run
    contract (the message names the plugin; the traceback is printed for its authors)."""
    BROKEN_PIPE = 141
    """The reader of the output went away (``| head``): 128 + SIGPIPE, quietly."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C (128 + SIGINT, as shells report it)."""
    TERMINATED = 143
    """Stopped by SIGTERM (128 + SIGTERM); finished work is still recorded."""
