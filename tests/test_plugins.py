from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
from core_support import curator, make_distribution, subprocess_env
from pipelines import numbers

from curator import (
    HookFailedError,
    Outcome,
    PluginError,
    Reporter,
    RunInfo,
    Status,
    UsageError,
    hookimpl,
    run,
)
from curator.observing.progress import RunProgress
from curator.plugin_host.plugins import PluginSettings
from curator.plugin_host.registry import Registry
from curator.testing.events import EventRecorder
from curator.testing.probes import probe
from curator.testing.registries import isolated_registry

TOLERANT = PluginSettings(strict=False)

FIXTURES = {
    "good": ("curator-fixture-good", "curator_fixture_good"),
    "import-error": ("curator-fixture-import-error", "curator_fixture_import_error"),
    "raising": ("curator-fixture-raising", "curator_fixture_raising"),
    "duplicate": ("curator-fixture-duplicate", "curator_fixture_duplicate"),
    "bad-signature": ("curator-fixture-bad-signature", "curator_fixture_bad_signature"),
    "unknown-hook": ("curator-fixture-unknown-hook", "curator_fixture_unknown_hook"),
    "wrong-type": ("curator-fixture-wrong-type", "curator_fixture_wrong_type"),
    "unavailable": ("curator-fixture-unavailable", "curator_fixture_unavailable"),
    "abstract": ("curator-fixture-abstract", "curator_fixture_abstract"),
    "bad-default": ("curator-fixture-bad-default", "curator_fixture_bad_default"),
    "misspelled": ("curator-fixture-misspelled", "curator_fixture_misspelled"),
    "exits": ("curator-fixture-exits", "curator_fixture_exits"),
    "base-exception": ("curator-fixture-base-exception", "curator_fixture_base_exception"),
    "failing-observer": ("curator-fixture-failing-observer", "curator_fixture_failing_observer"),
    "later": ("curator-fixture-later", "curator_fixture_later"),
    "later-broken": ("curator-fixture-later-broken", "curator_fixture_later_broken"),
    # Distributions register by name: this one's "later" comes before the good plugin's.
    "later-twin": ("curator-fixture-a-later-twin", "curator_fixture_later_twin"),
}


def install(site: Path, *names: str, version: str = "1.2.3") -> None:
    for name in names:
        dist, module = FIXTURES[name]
        make_distribution(site, dist, version, {name: module})


def load(site: Path, settings: PluginSettings = TOLERANT) -> Registry:
    return Registry.load(settings, path=[str(site)])


def test_a_good_plugin_is_found_through_its_entry_point(site: Path) -> None:
    install(site, "good")
    registry = load(site, PluginSettings(strict=True))
    record = registry.host.records["good"]
    assert (record.distribution, record.version, record.status) == (
        "curator-fixture-good",
        "1.2.3",
        "loaded",
    )
    assert record.provides == ["backend:echo", "reporter:last-result", "reporter:tally"]
    entry = registry.backends["echo"]
    assert entry.to_json() == {
        "name": "echo",
        "provided_by": "curator-fixture-good",
        "version": "1.2.3",
        "status": "ok",
        "detail": "",
        "description": "Runs items in reverse order, in-process.",
    }
    # A third-party backend and reporter are used by name like built-ins.
    from curator_fixture_good import LastResult

    result = run(numbers(3), backend="echo", registry=registry, reporter="last-result")
    assert result.outputs == [["0"], ["2"], ["4"]]
    assert LastResult.last is result


def test_builtins_are_registered_through_the_same_hooks(registry: Registry) -> None:
    records = registry.host.records
    assert records["builtin-backends"].provides == ["backend:sequential", "backend:thread-pool"]
    assert records["builtin-reporters"].provides == [
        "reporter:rich",
        "reporter:log",
        "reporter:json",
        "reporter:summary",
        "reporter:none",
    ]
    assert {r.provided_by for r in records.values()} == {"builtin"}


def test_builtin_classes_pass_the_contract_the_registry_does_not_check_them_for(
    registry: Registry,
) -> None:
    # Registries skip the checks for the core's own classes (every process would
    # pay for them): this test is where they are checked.
    from curator.observing.features import feature_problems
    from curator.plugin_host.contract import backend_problems, reporter_problems

    kinds = [
        (registry.backends, backend_problems),
        (registry.reporters, reporter_problems),
        (registry.features, feature_problems),
    ]
    checked = 0
    for entries, problems_of in kinds:
        for entry in entries.values():
            if entry.plugin.distribution is None:
                assert problems_of(entry.cls) == [], entry.name
                checked += 1
    assert checked >= 9  # 2 backends, 5 reporters, the per-item features


def test_a_plugin_object_named_like_no_builtin_is_still_checked() -> None:
    class Badly(Reporter):
        name = "Bad Name"

    class Plugin:
        @hookimpl
        def curator_register_reporters(self) -> list[type[Reporter]]:
            return [Badly]

    registry = Registry.load(TOLERANT, entrypoints=False, plugins=[("custom", Plugin())])
    assert "bad name" not in registry.reporters
    assert "Bad Name" not in registry.reporters
    record = registry.host.records["custom"]
    assert record.status == "broken"
    assert "name must be lowercase words" in record.error


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("import-error", "failed to import 'curator_fixture_import_error': ModuleNotFoundError"),
        ("raising", "curator_register_backends raised RuntimeError: boom while registering"),
        (
            "duplicate",
            "backend name 'thread-pool' is already registered by plugin 'builtin-backends'",
        ),
        ("bad-signature", "invalid hooks"),
        ("unknown-hook", "unknown hook 'curator_register_backend'"),
        ("wrong-type", "returned 'not a backend', expected a Backend subclass"),
        ("abstract", "backend 'unfinished' (Unfinished): it does not implement execute"),
        (
            "bad-default",
            "option 'workers' is declared int but its default 'two' is not",
        ),
        (
            "misspelled",
            "reporter 'misspelled' (Misspelled): method curator_task_finsh is not an event hook",
        ),
        ("exits", "failed to import 'curator_fixture_exits': SystemExit: this plugin refuses"),
        ("base-exception", "failed to import 'curator_fixture_base_exception': Unusual: raised"),
    ],
)
def test_a_broken_plugin_is_recorded_and_the_rest_keeps_working(
    site: Path, name: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    install(site, "good", name)
    with caplog.at_level(logging.WARNING, logger="curator"):
        registry = load(site)
    record = registry.host.records[name]
    assert record.status == "broken"
    assert (record.distribution, record.version) == (FIXTURES[name][0], "1.2.3")
    assert message in record.error
    assert f"plugin {name!r} ({FIXTURES[name][0]} 1.2.3) is broken" in caplog.text
    assert f"CURATOR_DISABLE_PLUGINS={name}" in caplog.text
    # Everything else still works.
    assert registry.host.records["good"].status == "loaded"
    assert run(numbers(4), backend="echo", registry=registry, reporter=None).ok
    assert run(numbers(4), backend="thread-pool", jobs=2, registry=registry, reporter=None).ok
    assert registry.backends["thread-pool"].plugin.name == "builtin-backends"
    rows = {row.name: row for row in registry.listing("backend")}
    assert rows[name].status == "broken", "a broken plugin is listed as broken"


class _FinishMixin:
    """A mixin that misspells the hook it means to provide."""

    @hookimpl
    def curator_run_finsh(self, result: object) -> None:
        pass


class _MarkedMixin:
    """A mixin whose marked hook lacks the ``curator_`` prefix: pluggy would never call it."""

    @hookimpl
    def task_finish(self, outcome: object) -> None:
        pass


class _OnTheClass(Reporter):
    name = "on-the-class"

    @hookimpl
    def curator_run_finsh(self, result: object) -> None:
        pass


class _FromAMixin(_FinishMixin, Reporter):
    name = "from-a-mixin"


class _MarkedFromAMixin(_MarkedMixin, Reporter):
    name = "marked-from-a-mixin"


@pytest.mark.parametrize(
    ("reporter", "says"),
    [
        (_OnTheClass, "method curator_run_finsh is not an event hook"),
        (_FromAMixin, "method curator_run_finsh is not an event hook"),
        (_MarkedFromAMixin, "method task_finish is marked @curator.hookimpl but is not an event"),
    ],
)
def test_a_misspelled_hook_breaks_a_reporter_wherever_it_is_defined(
    reporter: type[Reporter], says: str
) -> None:
    class Provider:
        @hookimpl
        def curator_register_reporters(self) -> list[type[Reporter]]:
            return [reporter]

    registry = Registry.load(TOLERANT, entrypoints=False, plugins=[("provider", Provider())])
    record = registry.host.records["provider"]
    assert record.status == "broken"
    assert f"reporter {reporter.name!r} ({reporter.__name__}): {says}" in record.error
    assert reporter.name not in registry.reporters or (
        registry.reporters[reporter.name].status == "broken"
    )


@pytest.mark.parametrize(
    "name",
    [
        "import-error",
        "raising",
        "duplicate",
        "bad-signature",
        "unknown-hook",
        "abstract",
        "bad-default",
        "misspelled",
        "exits",
        "base-exception",
    ],
)
def test_strict_mode_makes_plugin_failures_fatal(site: Path, name: str) -> None:
    install(site, name)
    with pytest.raises(PluginError, match=f"plugin {name!r}"):
        load(site, PluginSettings(strict=True))


def test_strict_switch_comes_from_the_environment() -> None:
    assert PluginSettings.from_env({"CURATOR_STRICT_PLUGINS": "1"}).strict
    assert not PluginSettings.from_env({}).strict
    settings = PluginSettings.from_env({"CURATOR_DISABLE_PLUGINS": "a, Curator_Fixture_Good"})
    assert settings.disabled == {"a", "curator-fixture-good"}
    assert PluginSettings.from_env({"CURATOR_NO_PLUGINS": "yes"}).no_plugins


def test_asking_for_a_broken_plugin_is_a_plugin_error(site: Path) -> None:
    install(site, "import-error")
    registry = load(site)
    with pytest.raises(
        PluginError, match="backend 'import-error' would come from plugin 'import-error'"
    ):
        run(numbers(2), backend="import_error", registry=registry)


@pytest.mark.parametrize("switch", ["good", "curator-fixture-good", "curator_fixture_good"])
def test_a_plugin_can_be_disabled_by_name_or_distribution(site: Path, switch: str) -> None:
    install(site, "good", "import-error")
    registry = load(site, PluginSettings(strict=True, disabled=frozenset({switch, "import-error"})))
    assert registry.host.records["good"].status == "disabled"
    assert "echo" not in registry.backends
    with pytest.raises(UsageError, match="unknown backend 'echo'"):
        run(numbers(2), backend="echo", registry=registry)


def test_all_third_party_plugins_can_be_disabled(site: Path) -> None:
    install(site, "good", "import-error")
    registry = load(site, PluginSettings(strict=True, no_plugins=True))
    assert {r.status for n, r in registry.host.records.items() if r.distribution} == {"disabled"}
    assert set(registry.backends) == {"sequential", "thread-pool"}


def test_unavailable_backend_is_listed_with_the_reason(site: Path) -> None:
    install(site, "unavailable")
    registry = load(site, PluginSettings(strict=True))
    entry = registry.backends["needs-engine"]
    assert (entry.status, entry.detail) == ("unavailable", "missing curator_fixture_missing_engine")
    with pytest.raises(UsageError, match="backend 'needs-engine' is unavailable: missing"):
        run(numbers(2), backend="needs-engine", jobs=2, registry=registry)


def test_entry_points_of_other_groups_are_ignored(site: Path) -> None:
    make_distribution(site, "other-tool", "1.0", {"good": "curator_fixture_good"}, group="other")
    registry = load(site, PluginSettings(strict=True))
    assert "good" not in registry.host.records


def test_debug_switch_traces_registration_and_event_hooks_and_prints_tracebacks(
    site: Path,
) -> None:
    install(site, "good", "raising")
    env = subprocess_env(site, CURATOR_DEBUG_PLUGINS="1")
    listing = curator("backends", "list", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    assert (
        "curator_register_backends [builtin-backends] -> [ClassRef(name='sequential', "
        "target='curator.backends.sequential:SequentialBackend')"
    ) in listing.stderr
    assert "curator_register_backends [good] -> [<class 'curator_fixture_good.EchoBackend'>]" in (
        listing.stderr
    )
    # A broken plugin's full traceback, not only its one-line error.
    assert "Traceback (most recent call last)" in listing.stderr
    assert "boom while registering" in listing.stderr
    ran = curator("run", "pipelines:numbers", "--indices", "0:2", "--reporter", "tally", env=env)
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr.count("curator-plugins: curator_task_finish [reporter:0]") == 2, ran.stderr
    assert "curator-plugins: curator_run_start [builtin-reporters]" not in ran.stderr
    assert "curator-plugins: curator_run_finish [reporter:0]" in ran.stderr
    quiet = curator("backends", "list", "--json", env=subprocess_env(site))
    assert "curator-plugins:" not in quiet.stderr
    assert "Traceback" not in quiet.stderr


def test_the_cli_survives_plugins_that_exit_or_raise_base_exceptions_at_import(
    site: Path,
) -> None:
    install(site, "good", "exits", "base-exception")
    listing = curator("backends", "list", "--json", env=subprocess_env(site))
    assert listing.returncode == 0, listing.stderr
    rows = {row["name"]: row for row in json.loads(listing.stdout)}
    assert rows["echo"]["status"] == "ok"
    assert rows["exits"]["status"] == rows["base-exception"]["status"] == "broken"
    assert "SystemExit: this plugin refuses to load" in rows["exits"]["detail"]
    assert "plugin 'base-exception' (curator-fixture-base-exception 1.2.3) is broken" in (
        listing.stderr
    )
    ran = curator("run", "pipelines:ten", "-b", "echo", "--json", env=subprocess_env(site))
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["ok"] == 10


class Raising(Reporter):
    name = "raising"

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    @hookimpl
    def curator_task_finish(self, outcome: Outcome) -> None:
        self.calls += 1
        raise RuntimeError(f"reporter bug at item {outcome.index}")


def test_a_raising_reporter_is_disabled_and_the_run_keeps_its_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raising, events = Raising(), EventRecorder()
    registry = isolated_registry()
    registry.host.settings = TOLERANT
    with caplog.at_level(logging.WARNING, logger="curator"):
        result = run(
            numbers(6), backend="thread-pool", jobs=2, registry=registry, reporter=[raising, events]
        )
    assert result.ok
    assert len(result.outcomes) == 6
    assert raising.calls == 1, "a failing hook is called no more in this run"
    assert sorted(events.indices("task_finish")) == list(range(6))
    assert (
        "reporter 'raising': curator_task_finish raised RuntimeError: reporter bug" in caplog.text
    )
    assert "disabled for the rest of this run" in caplog.text
    # Strict mode: the run still finishes, and the error carries its whole result.
    strict = Raising()
    registry.host.settings = PluginSettings(strict=True)
    with pytest.raises(HookFailedError, match="reporter 'raising': curator_task_finish") as info:
        run(numbers(6), registry=registry, reporter=strict)
    assert [o.status for o in info.value.result.outcomes] == [Status.OK] * 6
    assert strict.calls == 1


class RaisingCallbacks(Reporter):
    """Subscribes to the run's progress in run_start; every callback raises."""

    name = "raising-callbacks"

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = {"output": 0, "failure": 0, "alarm": 0}

    @hookimpl
    def curator_run_start(self, run: RunInfo, progress: RunProgress) -> None:
        progress.on_output(lambda outcome: self._raise("output"))
        progress.on_failure(lambda outcome: self._raise("failure"))
        progress.call_at(1, lambda: self._raise("alarm"))

    def _raise(self, what: str) -> None:
        self.calls[what] += 1
        raise RuntimeError(f"{what} bug")


def test_a_reporters_progress_callbacks_that_raise_are_dropped_and_the_run_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raising = RaisingCallbacks()
    registry = isolated_registry()
    registry.host.settings = TOLERANT
    pipeline = probe(6, tmp_path, chatty=True, fail=frozenset({2, 4}))
    with caplog.at_level(logging.WARNING, logger="curator"):
        result = run(pipeline, backend="thread-pool", jobs=2, registry=registry,
                     reporter=raising, on_error="continue")  # fmt: skip
    assert [o.status for o in result.outcomes].count(Status.OK) == 4
    assert raising.calls == {"output": 1, "failure": 1, "alarm": 1}, "dropped after one call"
    for what in ("on_output callback", "on_failure callback", "progress alarm"):
        assert f"its {what} raised RuntimeError" in caplog.text, caplog.text
    assert "reporter 'raising-callbacks'" in caplog.text
    registry.host.settings = PluginSettings(strict=True)
    with pytest.raises(HookFailedError, match="raised RuntimeError") as info:
        run(pipeline, registry=registry, reporter=RaisingCallbacks(), on_error="continue")
    assert len(info.value.result.outcomes) == 6


def test_a_plugin_whose_event_hooks_raise_costs_no_run(site: Path) -> None:
    install(site, "failing-observer")
    proc = curator(
        "run", "pipelines:ten", "-b", "thread-pool", "-j", "2", "--json", env=subprocess_env(site)
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] == 10
    who = "plugin 'failing-observer' (curator-fixture-failing-observer 1.2.3)"
    assert f"{who}: curator_run_start raised RuntimeError: the observer cannot start" in (
        proc.stderr
    )
    assert f"{who}: curator_task_finish raised ValueError" in proc.stderr
    assert proc.stderr.count("curator_task_finish raised") == 1
    strict = curator(
        "run",
        "pipelines:ten",
        "--json",
        env=subprocess_env(site, CURATOR_STRICT_PLUGINS="1"),
    )
    assert strict.returncode == 4, strict.stderr
    assert "curator_run_start raised RuntimeError" in strict.stderr


@pytest.mark.parametrize("first", ["a", "b"])
def test_of_two_plugins_offering_one_name_the_first_distribution_by_name_wins(
    site: Path, first: str
) -> None:
    second = "b" if first == "a" else "a"
    # Written in both orders, so the file system's order cannot decide.
    make_distribution(site, "curator-zeta", "1.0", {"zeta": f"curator_fixture_twin_{second}"})
    make_distribution(site, "curator-alpha", "1.0", {"alpha": f"curator_fixture_twin_{first}"})
    registry = load(site)
    entry = registry.backends["twin"]
    assert entry.description == f"twin {first.upper()}"
    assert entry.plugin.distribution == "curator-alpha"
    assert entry.status == "ok"
    assert entry.detail == "also offered by plugin 'zeta' (curator-zeta 1.0), which is ignored"
    zeta = registry.host.records["zeta"]
    assert zeta.status == "broken"
    assert "backend name 'twin' is already registered by plugin 'alpha'" in zeta.error


@pytest.fixture
def later_unimported(monkeypatch: pytest.MonkeyPatch) -> None:
    """The module the ``later`` plugins refer to, not imported yet (as in a fresh process)."""
    monkeypatch.delitem(sys.modules, "curator_fixture_later_backend", raising=False)


def test_a_class_registered_by_reference_is_imported_by_its_first_use(
    site: Path, later_unimported: None
) -> None:
    install(site, "later")
    registry = load(site, PluginSettings(strict=True))
    assert registry.host.records["later"].provides == [
        "backend:later", "backend:later-unavailable",
    ]  # fmt: skip
    # Another backend's run leaves it alone: a run imports only the backend it runs.
    assert run(numbers(2), registry=registry, reporter=None).ok
    assert "curator_fixture_later_backend" not in sys.modules
    result = run(numbers(3), backend="later", registry=registry, reporter=None)
    assert result.outputs == [["0"], ["2"], ["4"]]
    assert "curator_fixture_later_backend" in sys.modules
    # Its unavailability shows once it is imported, as a class's does at registration.
    with pytest.raises(UsageError, match="backend 'later-unavailable' is unavailable: missing"):
        run(numbers(2), backend="later-unavailable", registry=registry)
    entry = registry.backends["later-unavailable"]
    assert (entry.status, entry.target) == (
        "unavailable", "curator_fixture_later_backend:NeedsEngine",
    )  # fmt: skip
    assert registry.backends["later"].description.startswith("Runs items in-process")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("nowhere", "refers to 'curator_fixture_nowhere:Nothing', which cannot be imported: "
         "ModuleNotFoundError"),
        ("misnamed", "refers to 'curator_fixture_later_backend:Later', which is named 'later'"),
        ("not-a-backend", "which is <class 'curator_fixture_later_backend.NotABackend'>, "
         "expected a Backend subclass with a name"),
        ("no-colon", "cannot be imported: ValueError: 'curator_fixture_later_backend.Later' is "
         "not 'package.module:ClassName'"),
    ],
)  # fmt: skip
def test_a_reference_that_fails_is_refused_by_name_and_its_plugin_listed_broken(
    site: Path, name: str, reason: str
) -> None:
    install(site, "later-broken")
    registry = load(site)
    with pytest.raises(PluginError) as refused:
        run(numbers(2), backend=name, registry=registry)
    assert "comes from plugin 'later-broken' (curator-fixture-later-broken" in str(refused.value)
    assert reason in str(refused.value)
    # The listing imports every reference: none of these is left, the plugin is broken.
    assert set(registry.backends) == {"sequential", "thread-pool"}
    record = registry.host.records["later-broken"]
    assert record.status == "broken"
    assert record.provides == []
    assert [row.name for row in registry.listing("backend") if row.status == "broken"] == [
        "later-broken"
    ]
    # Refused with the reason every time, after the listing too (not "unknown backend").
    with pytest.raises(PluginError) as again:
        run(numbers(2), backend=name, registry=registry)
    assert reason in str(again.value)


def test_in_strict_mode_a_failing_reference_raises_each_time_and_is_imported_once(
    site: Path,
) -> None:
    install(site, "later-broken")
    registry = load(site, PluginSettings(strict=True))
    with pytest.raises(PluginError, match="cannot be imported: ModuleNotFoundError"):
        registry.backend("nowhere")
    error = registry.host.records["later-broken"].error
    with pytest.raises(PluginError, match="cannot be imported: ModuleNotFoundError"):
        registry.backend("nowhere")
    assert registry.host.records["later-broken"].error == error  # not imported again


def test_a_name_whose_reference_fails_goes_to_the_plugin_registration_ignored(
    site: Path, later_unimported: None
) -> None:
    install(site, "later-twin", "later")
    registry = load(site)
    assert registry.host.records["later"].provides == ["backend:later-unavailable"]
    result = run(numbers(3), backend="later", registry=registry, reporter=None)
    assert result.outputs == [["0"], ["2"], ["4"]]
    assert registry.backends["later"].plugin.name == "later"
    assert registry.host.records["later-twin"].status == "broken"
    assert "curator_fixture_nowhere" in registry.host.records["later-twin"].error
