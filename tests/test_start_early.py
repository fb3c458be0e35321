"""A backend's start_early: called once a run knows its backend, never for a dry run."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import pytest
from pipelines import numbers

from curator import Backend, Capabilities, Registry, UsageError, Work, hookimpl, run, stream
from curator.model.outcome import Event
from curator.plugin_host.options import option
from curator.plugin_host.plugins import PluginSettings


@dataclasses.dataclass(frozen=True)
class EagerOptions:
    warm: str = option("yes", help="anything")


class Eager(Backend):
    name = "eager"
    description = "Records when the core asks it to start early."
    capabilities = Capabilities(parallel=True)
    Options = EagerOptions
    calls: ClassVar[list[tuple[str, Any, int]]] = []

    @classmethod
    def start_early(cls, options: Any, jobs: int) -> None:
        cls.calls.append(("start_early", options, jobs))

    def prepare(self, work: Work) -> None:
        self.calls.append(("prepare", self.options, self.jobs))

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        for index in indices:
            yield work(index, worker="eager")


class EagerPlugin:
    @hookimpl
    def curator_register_backends(self) -> list[type[Backend]]:
        return [Eager]


@pytest.fixture
def registry() -> Registry:
    Eager.calls.clear()
    return Registry.load(PluginSettings(strict=True), entrypoints=False,
                         plugins=[("eager", EagerPlugin())])  # fmt: skip


def test_a_run_asks_its_backend_to_start_early_once_before_it_prepares(registry: Registry) -> None:
    result = run(numbers(3), backend="eager", jobs=2, registry=registry, reporter=None,
                 options={"warm": "now"})  # fmt: skip
    assert result.ok
    assert [(what, options.warm, jobs) for what, options, jobs in Eager.calls] == [
        ("start_early", "now", 2), ("prepare", "now", 2),
    ]  # fmt: skip


def test_a_stream_asks_it_when_made_before_it_is_iterated(registry: Registry) -> None:
    made = stream(numbers(3), backend="eager", jobs=2, registry=registry, reporter=None)
    assert [what for what, _, _ in Eager.calls] == ["start_early"]
    assert len(list(made)) == 3
    assert [what for what, _, _ in Eager.calls] == ["start_early", "prepare"]


def test_no_start_early_for_a_run_in_process_or_one_refused_before_its_backend(
    registry: Registry,
) -> None:
    assert run(numbers(3), backend="eager", jobs=1, registry=registry, reporter=None).ok
    assert Eager.calls == []  # jobs=1 runs in this process, on no backend of its own
    empty = run(numbers(3), backend="eager", jobs=2, indices=[], registry=registry, reporter=None)
    assert empty.outcomes == []
    assert "start_early" not in [what for what, _, _ in Eager.calls]  # nothing to start for
    Eager.calls.clear()
    with pytest.raises(UsageError):
        run(numbers(3), backend="eager", jobs=2, registry=registry, options={"cold": 1})
    assert Eager.calls == []


def test_a_dry_run_starts_nothing_early_and_only_checks_the_work(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import curator.cli.main as cli

    monkeypatch.setattr(Registry, "load", lambda *args, **kwargs: registry)
    monkeypatch.setattr(cli, "_setup_logging", lambda: None)
    code = cli.main(["run", "pipelines:numbers", "-b", "eager", "-j", "2", "--dry-run",
                     "--no-checkpoint"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    # prepare(work) refuses work the backend cannot take (it starts nothing); no early start
    assert [what for what, _, _ in Eager.calls] == ["prepare"]
