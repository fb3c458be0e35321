"""``curator backends|reporters|plugins list`` and ``curator backends show``."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Literal

from curator.backend import normalize_name
from curator.cli.exitcodes import ExitCode
from curator.cli.output import print_fields, print_json, print_table
from curator.options import describe_options
from curator.registry import Entry, Registry

LIST_COLUMNS = ("name", "provided_by", "version", "status", "detail", "description")


def list_entries(
    registry: Registry, kind: Literal["backend", "reporter"], args: argparse.Namespace
) -> ExitCode:
    """List every backend (or reporter), including broken plugins; always exits 0."""
    rows = [entry.to_json() for entry in registry.listing(kind)]
    if args.json:
        print_json(rows)
    else:
        print_table(
            f"curator {kind}s",
            [c.replace("_", " ") for c in LIST_COLUMNS],
            [[str(row[c] or "") for c in LIST_COLUMNS] for row in rows],
        )
    return ExitCode.OK


def show_backend(registry: Registry, args: argparse.Namespace) -> ExitCode:
    """Describe one backend: description, capabilities and options."""
    cls = registry.backend(args.name)
    entry: Entry[Any] = registry.backends[normalize_name(cls.name)]
    options = [dataclasses.asdict(info) for info in describe_options(cls.Options)]
    capabilities = dataclasses.asdict(cls.capabilities)
    if args.json:
        print_json(
            {
                **entry.to_json(),
                "requires": list(cls.requires),
                "capabilities": capabilities,
                "options": options,
            }
        )
        return ExitCode.OK
    print_fields(
        f"backend {entry.name}",
        [
            ("description", entry.description),
            ("provided by", f"{entry.plugin.provided_by} {entry.plugin.version or ''}".rstrip()),
            ("status", entry.status + (f" ({entry.detail})" if entry.detail else "")),
            ("requires", ", ".join(cls.requires) or "-"),
            ("capabilities", ", ".join(f"{k}={v}" for k, v in capabilities.items())),
        ],
    )
    if options:
        print_table(
            "options (-o NAME=VALUE)",
            ["name", "type", "default", "help"],
            [[o["name"], o["type"], o["default"], o["help"]] for o in options],
        )
    else:
        print_fields("options", [("(none)", "")])
    return ExitCode.OK


PLUGIN_COLUMNS = ("name", "provided_by", "version", "status", "provides", "detail")


def list_plugins(registry: Registry, args: argparse.Namespace) -> ExitCode:
    """List every plugin, loaded, disabled or broken, with what it provides."""
    rows = [record.to_json() for record in registry.host.records.values()]
    if args.json:
        print_json(rows)
        return ExitCode.OK
    print_table(
        "curator plugins",
        [c.replace("_", " ") for c in PLUGIN_COLUMNS],
        [
            [
                ", ".join(row[c]) if isinstance(row[c], list) else str(row[c] or "")
                for c in PLUGIN_COLUMNS
            ]
            for row in rows
        ],
    )
    return ExitCode.OK
