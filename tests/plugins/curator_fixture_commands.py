"""A plugin that adds commands: ``greet`` (or ``hello``) works; ``run`` is taken; ``half`` fails."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from curator import UsageError, hookimpl


def greet(registry: Any, args: argparse.Namespace) -> int:
    if args.name == "nobody":
        raise UsageError("greet: 'nobody' cannot be greeted; name someone")
    backends = sorted(registry.backends)
    if args.json:
        print(json.dumps({"greeted": args.name, "backends": backends}))
    else:
        print(f"hello {args.name} (backends: {', '.join(backends)})")
    return 3 if args.name == "three" else 0


@hookimpl
def curator_add_commands(commands: Any) -> None:
    parser = commands.add_parser(
        "greet", aliases=["hello"], help="greet someone (a plugin's command)"
    )
    parser.add_argument("name")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=greet)


class Clashing:
    """Takes a built-in command's name: refused, the plugin broken."""

    @hookimpl
    def curator_add_commands(self, commands: Any) -> None:
        commands.add_parser("run", help="a second run")


class Half:
    """Adds a command, then fails: the command is taken out again."""

    @hookimpl
    def curator_add_commands(self, commands: Any) -> None:
        commands.add_parser("half", help="never there")
        print("half: about to fail", file=sys.stderr)
        raise RuntimeError("half of the commands")


clashing = Clashing()
half = Half()
