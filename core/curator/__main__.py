"""``python -m curator`` behaves like the ``curator`` command."""

from __future__ import annotations

from curator.cli.main import cli

if __name__ == "__main__":
    cli()
