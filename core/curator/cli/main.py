"""Entry point of the ``curator`` command: parsing, dispatch, errors and exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from curator._version import __version__
from curator.cli.exitcodes import ExitCode
from curator.cli.output import error

if TYPE_CHECKING:
    from curator.plugin_host.registry import Registry

# Everything else is imported inside the functions: worker processes started
# with spawn or forkserver re-import the `curator` script, and it should cost
# them next to nothing.


def build_parser(
    registry: Registry | None = None, *, lean: bool = False
) -> argparse.ArgumentParser:
    """The argument parser, with the commands of ``registry``'s plugins.

    Without a registry, the built-in commands only (the CLI reference is
    generated from those). ``lean``: without plugins' commands and the flags
    installed backends and reporters declare for ``curator run``, so without
    importing their classes, and a parser that hands help and errors over
    (see :func:`_parse`).
    """
    from curator.cli import listing
    from curator.cli import run as run_cli
    from curator.cli.given_once import refuse_repeats

    parser = (_LeanParser if lean else argparse.ArgumentParser)(
        prog="curator",
        description="Run data-curation pipelines on pluggable run backends.",
        epilog=TOUR,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"curator {__version__}")
    parser.add_argument("--no-plugins", action="store_true", help=NO_PLUGINS_HELP)
    nouns = parser.add_subparsers(dest="noun", metavar="COMMAND")

    backends = nouns.add_parser("backends", help="list and describe run backends")
    verbs = backends.add_subparsers(dest="verb", metavar="VERB", required=True)
    _json(verbs.add_parser("list", help="list every backend and its status")).set_defaults(
        handler=lambda reg, args: listing.list_entries(reg, "backend", args)
    )
    show = verbs.add_parser("show", help="describe a backend: capabilities and options")
    show.add_argument("name", metavar="NAME", help="a backend name, as `backends list` shows it")
    _json(show).set_defaults(handler=lambda reg, args: listing.show_entry(reg, "backend", args))

    reporters = nouns.add_parser("reporters", help="list progress reporters")
    verbs = reporters.add_subparsers(dest="verb", metavar="VERB", required=True)
    _json(verbs.add_parser("list", help="list every reporter and its status")).set_defaults(
        handler=lambda reg, args: listing.list_entries(reg, "reporter", args)
    )
    show = verbs.add_parser("show", help="describe a reporter and its options")
    show.add_argument("name", metavar="NAME", help="a reporter name, as `reporters list` shows it")
    _json(show).set_defaults(handler=lambda reg, args: listing.show_entry(reg, "reporter", args))

    plugins = nouns.add_parser("plugins", help="list installed plugins")
    verbs = plugins.add_subparsers(dest="verb", metavar="VERB", required=True)
    _json(verbs.add_parser("list", help="list every plugin, loaded or broken")).set_defaults(
        handler=listing.list_plugins
    )

    run_cli.add_parser(nouns, registry, plugin_flags=not lean)
    if registry is not None and not lean:
        from curator.cli.plugin_commands import add_missing_commands, add_plugin_commands

        add_plugin_commands(registry, nouns)
        add_missing_commands(registry, nouns)
    _accept_everywhere(parser)
    refuse_repeats(parser)
    return parser


NO_PLUGINS_HELP = "load no third-party plugin (same as CURATOR_NO_PLUGINS=1)"
TOUR = """\
a tour: curator backends list; curator run mypkg.jobs:pipeline -b process-pool --indices 0:100;
        Ctrl-C, then the same with --resume; curator status (details: docs/cli.md)"""


def _accept_everywhere(parser: argparse.ArgumentParser) -> None:
    """Let ``--no-plugins`` follow any subcommand too (``curator run T --no-plugins``).

    Each subcommand also names its parser (``command_parser``), so that an
    argument it does not know is refused with its usage, not the top level's.
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            # Once each: a command's aliases name the same parser.
            for sub in {id(sub): sub for sub in action.choices.values()}.values():
                sub.set_defaults(command_parser=sub)
                if not any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                    # SUPPRESS: absent here, the value given before the subcommand stands.
                    sub.add_argument(
                        "--no-plugins",
                        action="store_true",
                        default=argparse.SUPPRESS,
                        help=NO_PLUGINS_HELP,
                    )
                _accept_everywhere(sub)


class _WholeParserNeeded(Exception):
    """The lean parser met what only the whole one answers as the user expects."""


class _LeanParser(argparse.ArgumentParser):
    """A parser without plugins' commands and flags: it never answers the user itself.

    Help and errors would leave those out, so it hands them to the whole parser.
    """

    def error(self, message: str) -> NoReturn:
        raise _WholeParserNeeded(message)

    def print_help(self, file: Any = None) -> None:
        raise _WholeParserNeeded("help")


def _parse(
    registry: Registry, arguments: list[str]
) -> tuple[argparse.Namespace, argparse.ArgumentParser]:
    """The command line parsed, and the parser that parsed it.

    The flags installed backends and reporters declare (``--memory-limit``)
    come from their classes, so the whole parser imports every plugin's
    classes: tens of milliseconds, and a broken plugin's warning, that a run
    on another backend has no use for. ``curator run`` is parsed without them
    first, by a parser that knows the built-in commands only. The line is its
    only when every ``--`` argument is one of its flags, whole (not one that
    could be a plugin's, or abbreviate one), and it takes the line without
    help or an error; anything else goes to the whole parser, as before. In
    strict mode (``CURATOR_STRICT_PLUGINS=1``) every command checks every
    plugin, so the whole parser takes every line.
    """
    head = arguments[: _end_of_options(arguments)]
    if "run" in head and not registry.host.settings.strict:
        lean = build_parser(registry, lean=True)
        if _knows_every_flag(lean, head):
            try:
                args, unknown = lean.parse_known_args(arguments)
            except _WholeParserNeeded:
                pass
            else:
                if args.noun == "run" and not unknown:
                    return args, lean
    parser = build_parser(registry)
    _check_missing_command(registry, head, parser)
    args, unknown = parser.parse_known_args(arguments)
    if unknown:
        _refuse_unknown(parser, args, arguments, unknown)
    return args, parser


def _knows_every_flag(parser: argparse.ArgumentParser, head: list[str]) -> bool:
    """Whether every ``--`` argument in ``head`` is, whole, a flag of ``parser`` or its ``run``.

    A plugin's flag is always ``--`` and a name, so a line the lean parser
    would read otherwise than the whole one has such an argument: a plugin's
    flag, an abbreviation (``--mem``), or a value that looks like either.
    """
    known = set(parser._option_string_actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            known.update(action.choices["run"]._option_string_actions)
    return all(
        argument.partition("=")[0] in known for argument in head if argument.startswith("--")
    )


def _refuse_unknown(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    arguments: list[str],
    unknown: list[str],
) -> None:
    """Exit 2 naming ``unknown``, with the usage of the command they were given to.

    What follows the command word is the command's (``curator run T --bogus``:
    its usage line); what comes before it, the top level's (``curator --bogus run``).
    """
    command: argparse.ArgumentParser | None = getattr(args, "command_parser", None)
    noun = getattr(args, "noun", None)
    first = unknown[0]
    before = noun not in arguments or (
        first in arguments and arguments.index(first) < arguments.index(noun)
    )
    refusing = parser if command is None or before else command
    refusing.error(f"unrecognized arguments: {' '.join(unknown)}")


def _check_missing_command(
    registry: Registry, arguments: list[str], parser: argparse.ArgumentParser
) -> None:
    """Refuse ``curator report`` (any known plugin command) without its plugin, naming it."""
    from curator.cli.plugin_commands import check_missing_command

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            check_missing_command(registry, arguments, action)


def _end_of_options(arguments: list[str]) -> int:
    """Where ``--`` ends the options (the end if it does not)."""
    return arguments.index("--") if "--" in arguments else len(arguments)


def _json(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    return parser


class _WarningFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"curator: {record.levelname.lower()}: {record.getMessage()}"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time: the live view redirects it."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _setup_logging() -> None:
    logger = logging.getLogger("curator")
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(_WarningFormatter())
        logger.addHandler(handler)
        logger.propagate = False


def cli() -> None:
    """The ``curator`` console script: run :func:`main` and exit with its code.

    Once the command has decided its exit code and written its output, a late
    Ctrl-C (the second of two pressed quickly) must not turn a recorded,
    reported interruption into a death by signal while Python shuts down.
    """
    try:
        from curator.cli.output import reserve_stdout_until_exit

        reserve_stdout_until_exit()  # this process ends with the command
        code = main()
    except KeyboardInterrupt:  # before main() could take it (its imports, its set-up)
        sys.stderr.write("curator: interrupted\n")
        code = ExitCode.INTERRUPTED
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``curator`` command and return its exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments == ["--version"]:  # needs no plugin: answered before they (or pluggy) load
        print(f"curator {__version__}")
        return ExitCode.OK
    from curator.model.errors import PluginError, RunInterrupted, UsageError
    from curator.plugin_host.plugins import PluginSettings
    from curator.plugin_host.registry import Registry

    _setup_logging()
    try:
        settings = PluginSettings.from_env()
        # Plugins add commands, so they load before the line is parsed: look for the flag.
        if "--no-plugins" in arguments[: _end_of_options(arguments)]:
            settings = PluginSettings(strict=settings.strict, no_plugins=True, debug=settings.debug)
        registry = Registry.load(settings)
        args, parser = _parse(registry, arguments)
        if args.noun is None:
            parser.print_help()
            return ExitCode.OK
        handler: Any = args.handler
        return int(handler(registry, args))
    except UsageError as exc:
        error(str(exc))
        return ExitCode.USAGE_ERROR
    except PluginError as exc:
        error(str(exc))
        return ExitCode.PLUGIN_ERROR
    except RunInterrupted as exc:  # a run's stop, in a command other than `run` (bench)
        sys.stderr.write(f"curator: {'terminated' if exc.terminated else 'interrupted'}\n")
        return ExitCode.TERMINATED if exc.terminated else ExitCode.INTERRUPTED
    except KeyboardInterrupt:  # Ctrl-C before or after a run: asked for, not an error
        sys.stderr.write("curator: interrupted\n")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # Like `yes | head`: the reader has what it wanted. Point stdout at /dev/null
        # so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return ExitCode.BROKEN_PIPE
    except Exception:
        sys.stderr.write(traceback.format_exc())
        error(
            "internal error (the traceback is above); if a plugin is involved, "
            "try again with --no-plugins, otherwise please report it"
        )
        return ExitCode.INTERNAL_ERROR
