from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, make_dataclass
from typing import Any, Literal

import pytest

from curator import UsageError, option
from curator.plugin_host.options import build_options, describe_options, schema_problems, type_name


def _init() -> None:
    pass


@dataclass(frozen=True)
class Schema:
    workers: int = option(2, help="how many")
    ratio: float = option(0.5, help="a fraction")
    verbose: bool = option(False, help="talk more")
    method: Literal["spawn", "fork"] = option("spawn", help="start method")
    limit: int | None = option(None, help="optional limit")
    initializer: Any = option(None, help="anything")
    hook: Any = option(None, help="anything")
    args: tuple[Any, ...] = option((), help="arguments")
    label: str = option("x", help="a name")

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ValueError("workers must be >= 0")


OWNER = "backend 'demo'"


def test_defaults_and_typed_values() -> None:
    opts = build_options(Schema, None, owner=OWNER)
    assert opts == Schema()
    opts = build_options(Schema, {"workers": 3, "limit": 4, "method": "fork"}, owner=OWNER)
    assert (opts.workers, opts.limit, opts.method) == (3, 4, "fork")


def test_strings_from_the_command_line_are_converted() -> None:
    opts = build_options(
        Schema,
        {
            "workers": "5",
            "ratio": "0.25",
            "verbose": "yes",
            "method": "fork",
            "limit": "none",
            "args": "(1, 'a')",
            "label": "007",
        },
        owner=OWNER,
    )
    assert opts.workers == 5
    assert opts.ratio == 0.25
    assert opts.verbose is True
    assert opts.method == "fork"
    assert opts.limit is None
    assert opts.args == (1, "a")
    assert opts.label == "007"
    assert build_options(Schema, {"limit": "12"}, owner=OWNER).limit == 12


def test_unknown_option_lists_valid_ones_and_suggests() -> None:
    with pytest.raises(UsageError) as info:
        build_options(Schema, {"worker": 3}, owner=OWNER)
    message = str(info.value)
    assert "unknown option 'worker' for backend 'demo'; did you mean 'workers'?" in message
    assert "valid options: workers (int), ratio (float), verbose (bool)" in message
    assert "method ('spawn' | 'fork')" in message
    assert "limit (int | None)" in message


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"workers": "many"}, "option 'workers' of backend 'demo' must be int, got 'many'"),
        ({"workers": True}, "must be int"),
        ({"workers": 1.5}, "must be int"),
        ({"verbose": "maybe"}, "must be bool"),
        ({"method": "thread"}, "must be 'spawn' | 'fork'"),
        ({"label": 3}, "must be str"),
        ({"args": 3}, "must be tuple"),
        ({"workers": -1}, "invalid options for backend 'demo': workers must be >= 0"),
        ({"ratio": "nan"}, "option 'ratio' of backend 'demo' must be a finite number, got nan"),
        ({"ratio": float("-inf")}, "must be a finite number, got -inf"),
    ],
)
def test_wrong_values_are_errors(values: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_options(Schema, values, owner=OWNER)


def test_schema_without_options() -> None:
    @dataclass(frozen=True)
    class Empty:
        pass

    with pytest.raises(UsageError, match="backend 'demo' takes no options"):
        build_options(Empty, {"x": 1}, owner=OWNER)


def test_callable_options_accept_module_attr_strings() -> None:
    @dataclass(frozen=True)
    class WithCallable:
        init: Callable[[], None] | None = option(None, help="run first")

    opts = build_options(WithCallable, {"init": "os.path:join"}, owner=OWNER)
    import os.path

    assert opts.init is os.path.join
    assert build_options(WithCallable, {"init": _init}, owner=OWNER).init is _init
    with pytest.raises(UsageError, match=re.escape("must be callable | None")):
        build_options(WithCallable, {"init": 3}, owner=OWNER)


def test_describe_options() -> None:
    infos = {i.name: i for i in describe_options(Schema)}
    assert infos["workers"].type == "int"
    assert infos["workers"].default == "2"
    assert infos["workers"].help == "how many"
    assert infos["method"].type == "'spawn' | 'fork'"
    assert type_name(int | None) == "int | None"


@pytest.mark.parametrize(
    ("hint", "default"),
    [
        (int, "2"),  # converts to 2 on the command line, but a default is a value, not text
        (float, "0.5"),
        (bool, "true"),
        (int | None, "3"),
        (int, "two"),
    ],
)
def test_a_default_of_the_wrong_type_is_refused_even_when_it_would_convert(
    hint: Any, default: object
) -> None:
    schema = make_dataclass("Options", [("value", hint, option(default, help="a value"))])
    problems = schema_problems(schema)
    assert len(problems) == 1
    declared = f"option 'value' is declared {type_name(hint)}"
    assert f"{declared} but its default {default!r} is not" in problems[0]


@pytest.mark.parametrize(
    ("hint", "default"),
    [(int, 2), (float, 0.5), (float, 2), (bool, True), (int | None, None), (str, "2")],
)
def test_a_default_of_the_declared_type_is_accepted(hint: Any, default: object) -> None:
    schema = make_dataclass("Options", [("value", hint, option(default, help="a value"))])
    assert schema_problems(schema) == []
    assert schema_problems(Schema) == []


NOT_MAPPINGS = [[("copy_pipeline", False)], "copy_pipeline=false", 3]


@pytest.mark.parametrize("given", NOT_MAPPINGS, ids=["list", "str", "int"])
def test_options_that_are_no_mapping_are_a_usage_error_from_every_entry_point(
    given: object,
) -> None:
    """run(), stream() and Session(): not Python's error about lists or strings, from deep in."""
    from curator import Session, run, stream
    from curator.testing.probes import Numbers

    pipeline = Numbers(3).write(lambda items, index: [str(x) for x in items])
    said = "must be a dict of option names to values, such as {'name': value}, not a "
    kinds = {"options": given}, {"reporter_options": given}, {"reporter_options": {"log": given}}
    for kind in kinds:
        with pytest.raises(UsageError, match=re.escape(said)):
            run(pipeline, backend="thread-pool", reporter=None, **kind)  # type: ignore[arg-type]
        with pytest.raises(UsageError, match=re.escape(said)):
            stream(pipeline, backend="thread-pool", reporter=None, **kind)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=re.escape(f"the options of backend 'thread-pool' {said}")):
        Session(backend="thread-pool", options=given)  # type: ignore[arg-type]
