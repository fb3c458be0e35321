"""Write the generated parts of the Markdown docs, so they read in full as plain files.

Usage (from the repository root)::

    python tools/gen_docs.py           # rewrite the generated blocks
    python tools/gen_docs.py --check   # exit 1 and name the files that are out of date

A generated block sits between ``<!-- generated: KIND ARG -->`` and
``<!-- end generated -->`` in a Markdown file:

- ``hooks``: the hook reference, from the docstrings of ``curator.plugin_host.hookspecs``;
- ``cli``: every command and option, from ``curator.cli.main.build_parser``;
- ``file PATH``: the contents of a repository file as a code block;
- ``options SRC:module.Class``: a backend's options as a table (``SRC`` goes on the path).

The tests run ``--check``, so a docstring, option or example file that changes
without its docs being regenerated fails the suite.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BLOCK = re.compile(
    r"(<!-- generated: (?P<kind>\w+)(?: (?P<arg>[^ ]+))? -->\n)"
    r"(?P<body>.*?)(<!-- end generated -->)",
    re.DOTALL,
)
LANGUAGES = {".py": "python", ".toml": "toml", ".md": "markdown", ".json": "json"}


def hooks_reference(_: str | None) -> str:
    """The hook reference: each hook's signature and docstring, as Markdown."""
    from curator.plugin_host import hookspecs

    parts = []
    for name, function in vars(hookspecs).items():
        if not (name.startswith("curator_") and inspect.isfunction(function)):
            continue
        if name.startswith("curator_register_") and not parts:
            parts.append("## Registration hooks\n\nCalled once per plugin when plugins load.\n")
        if name == hookspecs.EVENT_HOOKS[0]:
            parts.append("## Event hooks\n\nCalled during each run, in the parent process.\n")
        signature = str(inspect.signature(function)).replace("'", "")
        parts.append(f"### `{name}`\n\n```python\n@hookimpl\ndef {name}{signature}: ...\n```\n")
        parts.append(_docstring_to_markdown(inspect.getdoc(function) or ""))
    return "\n".join(parts)


def cli_reference(_: str | None) -> str:
    """Every command of ``curator`` with its usage and options, as Markdown."""
    from curator.cli.main import build_parser
    from curator.plugin_host.plugins import PluginSettings
    from curator.plugin_host.registry import Registry

    # The built-in plugins' commands (status, logs), none of an installed distribution.
    parser = build_parser(Registry.load(PluginSettings(), entrypoints=False))
    for action in parser._actions:  # without the placeholders of plugins not installed
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in list(action.choices.items()):
                if sub.get_default("missing_plugin") is not None:
                    del action.choices[name]
            action._choices_actions = [
                a for a in action._choices_actions if a.dest in action.choices
            ]
    return "\n".join(_describe_parser(parser, "curator"))


def file_contents(path: str | None) -> str:
    """A repository file as a fenced code block."""
    assert path is not None, "generated: file needs a path"
    source = ROOT / path
    language = LANGUAGES.get(source.suffix, "text")
    return f"```{language}\n{source.read_text().rstrip()}\n```\n"


def options_table(spec: str | None) -> str:
    """A backend's options as a table: ``SRC:module.Class`` (``SRC`` is put on the path)."""
    assert spec is not None, "generated: options needs SRC:module.Class"
    import importlib

    from curator.plugin_host.options import describe_options

    source, _, name = spec.partition(":")
    sys.path.insert(0, str(ROOT / source))
    module, _, attr = name.rpartition(".")
    schema = getattr(importlib.import_module(module), attr)
    lines = ["| option | type | default | meaning |", "| --- | --- | --- | --- |"]
    for info in describe_options(schema):
        meaning, kind = (text.replace("|", "\\|") for text in (info.help, info.type))
        lines.append(f"| `{info.name}` | `{kind}` | `{info.default}` | {meaning} |")
    return "\n".join(lines) + "\n"


KINDS: dict[str, Callable[[str | None], str]] = {
    "hooks": hooks_reference,
    "cli": cli_reference,
    "file": file_contents,
    "options": options_table,
}


def _describe_parser(parser: argparse.ArgumentParser, prog: str) -> list[str]:
    lines: list[str] = []
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    options = [
        a
        for a in parser._actions
        if not isinstance(a, (argparse._SubParsersAction, argparse._HelpAction))
    ]
    if not subcommands or options:
        usage = parser.format_usage().replace("usage: ", "").strip()
        usage = re.sub(r"\s+", " ", usage)
        heading = "##" if " " not in prog else "###"
        lines.append(f"{heading} `{prog}`\n")
        if parser.description:
            lines.append(parser.description + "\n")
        lines.append(f"```text\n{usage}\n```\n")
        if options:
            lines.append("| argument | meaning | default |")
            lines.append("| --- | --- | --- |")
            for action in options:
                lines.append(_option_row(action))
            lines.append("")
    for action in subcommands:
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, sub in action.choices.items():
            if sub.description is None and helps.get(name):
                sub.description = helps[name][:1].upper() + helps[name][1:] + "."
            lines += _describe_parser(sub, f"{prog} {name}")
    return lines


def _option_row(action: argparse.Action) -> str:
    if action.option_strings:
        flags = ", ".join(action.option_strings)
        if action.nargs != 0:
            flags += f" {action.metavar or action.dest.upper()}"
    else:
        flags = str(action.metavar or action.dest)
    default = action.default
    shown = (
        ""
        if default in (None, False, [], argparse.SUPPRESS) or action.nargs == 0
        else f"`{default}`"
    )
    meaning = (action.help or "").replace("|", "\\|")
    if action.choices and not isinstance(action.choices, dict):
        meaning += " (one of " + ", ".join(f"`{c}`" for c in action.choices) + ")"
    return f"| `{flags}` | {meaning} | {shown} |"


def _docstring_to_markdown(doc: str) -> str:
    """Numpy-style docstring to Markdown: sections in bold, parameters as a list."""
    doc = re.sub(r":(?:func|meth|class|attr|data|mod|exc):`~?([^`]+)`", r"`\1`", doc)
    doc = doc.replace("``", "`")
    lines = doc.splitlines()
    out: list[str] = []
    i = 0
    in_section = False
    while i < len(lines):
        line = lines[i]
        underline = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"} and line.strip()
        if underline:
            out.append(f"\n**{line.strip()}**\n")
            in_section = True
            i += 2
            continue
        if in_section and line and not line.startswith(" "):
            # A parameter (or return type) line; its description follows, indented.
            description = []
            i += 1
            while i < len(lines) and (lines[i].startswith(" ") or not lines[i].strip()):
                if lines[i].strip():
                    description.append(lines[i].strip())
                elif description and i + 1 < len(lines) and not lines[i + 1].startswith(" "):
                    break
                i += 1
            out.append(f"- `{line.strip()}`: {' '.join(description)}")
            continue
        out.append(line)
        i += 1
    text = textwrap.dedent("\n".join(out)).strip()
    return re.sub(r"\n{3,}", "\n\n", text) + "\n"


def regenerate(text: str) -> str:
    """``text`` with every generated block written anew."""

    def fill(match: re.Match[str]) -> str:
        body = KINDS[match["kind"]](match["arg"])
        return f"{match.group(1)}{body.rstrip()}\n{match.group(5)}"

    return BLOCK.sub(fill, text)


def main() -> int:
    """Rewrite (or with ``--check``, verify) every generated block under ``docs/``."""
    parser = argparse.ArgumentParser(description="Write the generated parts of the docs.")
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "core"))
    stale = []
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text()
        fresh = regenerate(text)
        if fresh != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(fresh)
    if args.check and stale:
        names = ", ".join(str(p) for p in stale)
        print(f"out of date: {names}; run python tools/gen_docs.py", file=sys.stderr)
        return 1
    for path in stale:
        print(f"rewrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
