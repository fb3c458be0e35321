"""The checkpoint as a built-in plugin: ``curator status`` and ``curator logs``, switchable by name.

pytest's ``cacheprovider`` is the model: a built-in plugin, listed by
``curator plugins list`` (``builtin-checkpoint``), that
``CURATOR_DISABLE_PLUGINS=builtin-checkpoint``
switches off. It adds the commands that read checkpoints through
``curator_add_commands``, like any plugin. Switched off, ``curator run``
records nothing on disk by default (as ``--no-checkpoint``), and asking for a
checkpoint (``--checkpoint``, ``--resume``, ``checkpoint=`` in Python) is a
usage error that says why; ``curator status`` and ``logs`` say which plugin
they come with. The store itself (:mod:`curator.checkpoint.store`) stays in the run
loop: what a checkpoint records commits with its outcomes, in one transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from curator.plugin_host.hookspecs import hookimpl

if TYPE_CHECKING:
    from curator.cli.plugin_commands import Commands

NAME = "builtin-checkpoint"
"""The plugin's name: what ``CURATOR_DISABLE_PLUGINS`` takes."""


def asks_for_one(checkpoint: object) -> bool:
    """Whether a ``checkpoint=`` value asks for a checkpoint (``None`` and ``False`` do not).

    Light on purpose: asked before the store's modules (SQLite, hashing) are imported.
    """
    return checkpoint is not None and checkpoint is not False


class CheckpointPlugin:
    """Adds ``curator status`` and ``curator logs``."""

    @hookimpl
    def curator_add_commands(self, commands: Commands) -> None:
        """Add the commands that read checkpoints."""
        from curator.cli import logs, status

        status.add_parser(commands)
        logs.add_parser(commands)


checkpoint = CheckpointPlugin()
