"""``curator backends|reporters|plugins list`` and ``curator backends show``."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Literal

from curator.backends.backend import normalize_name
from curator.cli.exitcodes import ExitCode
from curator.cli.output import print_fields, print_json, print_table
from curator.plugin_host.options import OptionInfo, describe_options
from curator.plugin_host.registry import Entry, Registry

LIST_COLUMNS = ("name", "provided_by", "version", "status", "detail", "description")


def list_entries(
    registry: Registry, kind: Literal["backend", "reporter"], args: argparse.Namespace
) -> ExitCode:
    """List every backend (or reporter), including broken plugins; always exits 0."""
    rows = [entry.to_json() for entry in registry.listing(kind)]
    if kind == "reporter":
        rows.insert(0, _auto_row())
    if args.json:
        print_json(rows)
    else:
        print_table(
            f"curator {kind}s",
            [c.replace("_", " ") for c in LIST_COLUMNS],
            [[str(row[c] or "") for c in LIST_COLUMNS] for row in rows],
        )
    return ExitCode.OK


AUTO_DESCRIPTION = "The default: rich on an interactive terminal (CI unset), else log."


def _auto_row() -> dict[str, Any]:
    from curator._version import __version__
    from curator.observing.reporters import auto_reporter

    return {
        "name": "auto",
        "provided_by": "builtin",
        "version": __version__,
        "status": "ok",
        "detail": f"here and now: {auto_reporter()}",
        "description": AUTO_DESCRIPTION,
    }


def show_entry(
    registry: Registry, kind: Literal["backend", "reporter"], args: argparse.Namespace
) -> ExitCode:
    """Describe one backend or reporter: description, capabilities (backends) and options."""
    if kind == "reporter" and normalize_name(args.name) == "auto":
        return _show_auto(registry, args)
    cls: Any = registry.backend(args.name) if kind == "backend" else registry.reporter(args.name)
    entries = registry.backends if kind == "backend" else registry.reporters
    entry: Entry[Any] = entries[normalize_name(cls.name)]
    options = describe_options(cls.Options)
    capabilities = dataclasses.asdict(cls.capabilities) if kind == "backend" else None
    if args.json:
        data = {**entry.to_json(), "requires": list(cls.requires)}
        if capabilities is not None:
            data["capabilities"] = capabilities
        data["options"] = [_option_json(o) for o in options]
        print_json(data)
        return ExitCode.OK
    fields = [
        ("description", entry.description),
        ("provided by", f"{entry.plugin.provided_by} {entry.plugin.version or ''}".rstrip()),
        ("status", entry.status + (f" ({entry.detail})" if entry.detail else "")),
        ("requires", ", ".join(cls.requires) or "-"),
    ]
    if capabilities is not None:
        fields.append(("capabilities", ", ".join(f"{k}={v}" for k, v in capabilities.items())))
    print_fields(f"{kind} {entry.name}", fields)
    flag = "-o NAME=VALUE" if kind == "backend" else f"--reporter-option {entry.name}.NAME=VALUE"
    if options:
        print_table(
            f"options ({flag})",
            ["name", "type", "default", "help"],
            [[o.name, o.type, o.default, o.help] for o in options],
        )
    else:
        print_fields("options", [("(none)", "")])
    return ExitCode.OK


def _show_auto(registry: Registry, args: argparse.Namespace) -> ExitCode:
    row = _auto_row()
    if args.json:
        print_json({**row, "requires": [], "options": []})
        return ExitCode.OK
    print_fields(
        "reporter auto",
        [
            ("description", row["description"]),
            ("provided by", f"builtin {row['version']}"),
            ("status", f"ok ({row['detail']})"),
            ("options", "those of the reporter it picks: curator reporters show rich|log"),
        ],
    )
    return ExitCode.OK


def _option_json(info: OptionInfo) -> dict[str, Any]:
    return {"name": info.name, "type": info.type, "default": info.value, "help": info.help}


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
