"""Plugins add commands to ``curator`` (the ``curator_add_commands`` hook)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from core_support import as_json, curator, make_distribution, subprocess_env

from curator import Registry
from curator.plugin_host.plugins import PluginSettings


@pytest.fixture
def commands_site(site: Path) -> Path:
    make_distribution(
        site, "curator-fixture-commands", "1.0", {"greet": "curator_fixture_commands"}
    )
    return site


def test_a_plugins_command_runs_with_the_registry_and_its_exit_code(commands_site: Path) -> None:
    env = subprocess_env(commands_site)
    proc = curator("greet", "ada", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    said = json.loads(proc.stdout)
    assert said["greeted"] == "ada"
    assert {"sequential", "thread-pool"} <= set(said["backends"])  # it got the registry
    assert curator("greet", "three", env=env).returncode == 3
    assert "greet someone (a plugin's command)" in curator("--help", env=env).stdout
    # By its alias too: the alias once broke every command (--no-plugins added twice).
    hello = curator("hello", "ada", "--json", env=env)
    assert hello.returncode == 0, hello.stderr
    assert json.loads(hello.stdout)["greeted"] == "ada"


def test_a_usage_error_in_a_plugins_command_is_exit_2_without_traceback(
    commands_site: Path,
) -> None:
    proc = curator("greet", "nobody", env=subprocess_env(commands_site))
    assert proc.returncode == 2, proc.stderr
    assert "curator: error: greet: 'nobody' cannot be greeted; name someone" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_plugins_leaves_a_plugins_commands_out(commands_site: Path) -> None:
    for args, env in [
        (["--no-plugins", "greet", "ada"], subprocess_env(commands_site)),
        (["greet", "ada", "--no-plugins"], subprocess_env(commands_site)),
        (["greet", "ada"], subprocess_env(commands_site, CURATOR_NO_PLUGINS="1")),
        (["greet", "ada"], subprocess_env(commands_site, CURATOR_DISABLE_PLUGINS="greet")),
    ]:
        proc = curator(*args, env=env)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "invalid choice: 'greet'" in proc.stderr, proc.stderr


def test_a_taken_command_name_breaks_its_plugin_and_changes_nothing(site: Path) -> None:
    make_distribution(
        site, "curator-fixture-clash", "1.0",
        {"clashing": "curator_fixture_commands:clashing", "half": "curator_fixture_commands:half"},
    )  # fmt: skip
    env = subprocess_env(site)
    rows = {row["name"]: row for row in as_json(curator("plugins", "list", "--json", env=env))}
    assert rows["clashing"]["status"] == "broken"
    assert "the command 'run' exists already" in rows["clashing"]["detail"]
    assert rows["half"]["status"] == "broken"
    assert "RuntimeError: half of the commands" in rows["half"]["detail"]
    ran = curator("run", "pipelines:ten", "--no-checkpoint", "--json", env=env)
    assert ran.returncode == 0, ran.stderr  # the built-in run, untouched
    assert json.loads(ran.stdout)["ok"] == 10
    half = curator("half", env=env)
    assert half.returncode == 2
    assert "invalid choice: 'half'" in half.stderr
    strict = curator("backends", "list", env=subprocess_env(site, CURATOR_STRICT_PLUGINS="1"))
    assert strict.returncode != 0
    assert "the command 'run' exists already" in strict.stderr


def test_a_backends_option_flag_sets_the_option_and_is_remembered(
    site: Path, tmp_path: Path
) -> None:
    """Issue 26: a plugin's flag of curator run, as the process pool's --memory-limit."""
    make_distribution(site, "curator-fixture-flags", "1.0", {"deep": "curator_fixture_flags"})
    env = subprocess_env(site)
    help_text = curator("run", "--help", env=env).stdout
    assert "--depth VALUE" in help_text
    assert "(-o depth=VALUE; deep)" in help_text
    ran = curator("run", "pipelines:ten", "-b", "deep", "--depth", "3", env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "deep: depth 3" in ran.stderr
    plan = curator("run", "pipelines:ten", "--resume", "--dry-run", "--json", env=env, cwd=tmp_path)
    assert json.loads(plan.stdout)["settings"]["options"] == {"depth": "3"}, plan.stdout
    resumed = curator("run", "pipelines:ten", "--resume", env=env, cwd=tmp_path)
    assert "resuming with the last run's settings: -b deep -o depth=3" in resumed.stderr
    other = curator("run", "pipelines:ten", "-b", "thread-pool", "--depth", "3", env=env)
    assert other.returncode == 2
    assert (
        "--depth is an option of backend deep; backend 'thread-pool' does not take it"
        in other.stderr
    )
    gone = curator("run", "pipelines:ten", "--depth", "3", env=subprocess_env())
    assert gone.returncode == 2  # not installed: no such flag
    assert "unrecognized arguments: --depth 3" in gone.stderr


def test_a_backend_flag_that_curator_run_has_already_breaks_its_plugin(site: Path) -> None:
    make_distribution(
        site, "curator-fixture-greedy-flags", "1.0", {"greedy": "curator_fixture_flags:greedy"}
    )
    env = subprocess_env(site)
    rows = {row["name"]: row for row in as_json(curator("plugins", "list", "--json", env=env))}
    assert rows["greedy"]["status"] == "broken"
    assert "declares the flag --jobs for its option 'workers'" in rows["greedy"]["detail"]
    ran = curator("run", "pipelines:ten", "-b", "thread-pool", "--jobs", "2", "--json",
                  "--no-checkpoint", env=env)  # fmt: skip
    assert ran.returncode == 0, ran.stderr  # --jobs is still curator run's own
    assert json.loads(ran.stdout)["jobs"] == 2


def test_a_flag_that_is_not_a_long_flag_breaks_its_plugin_not_the_command(site: Path) -> None:
    """Found by a review: flag="depth" (a bare word) made every curator command a traceback."""
    make_distribution(
        site, "curator-fixture-crooked-flags", "1.0", {"crooked": "curator_fixture_flags:crooked"}
    )
    env = subprocess_env(site)
    rows = {row["name"]: row for row in as_json(curator("plugins", "list", "--json", env=env))}
    assert rows["crooked"]["status"] == "broken"
    assert (
        "backend 'crooked-flags' declares a flag for its option 'depth', but the flag 'depth' "
        "is not a long flag" in rows["crooked"]["detail"]
    )
    helped = curator("run", "--help", env=env)
    assert helped.returncode == 0, helped.stderr
    assert "Traceback" not in helped.stderr
    ran = curator("run", "pipelines:ten", "-b", "crooked-flags", "-o", "depth=2", "--json",
                  "--no-checkpoint", env=env)  # fmt: skip
    assert ran.returncode == 0, ran.stderr  # its option stays reachable through -o
    assert json.loads(ran.stdout)["ok"] == 10


def test_a_long_flag_is_two_dashes_and_a_name_without_spaces_or_equals() -> None:
    from curator.cli.option_flags import flag_problem

    for flag in ("--memory-limit", "--max_mem", "--2x", "--Größe"):
        assert flag_problem(flag) is None, flag
    for flag in ("depth", "-d", "--", "---x", "--two words", "--x=1", None):
        assert "is not a long flag: it must be -- and a name" in str(flag_problem(flag)), flag


def test_an_unknown_backend_offers_only_backends_that_can_run(site: Path) -> None:
    """A plugin's broken classes were offered under "available backends" (their references
    not imported yet): found by a review."""
    make_distribution(site, "curator-fixture-later-broken", "1.0",
                      {"later-broken": "curator_fixture_later_broken"})  # fmt: skip
    unknown = curator("run", "pipelines:ten", "-b", "no-such", env=subprocess_env(site))
    assert unknown.returncode == 2, unknown.stderr
    (offered,) = [line for line in unknown.stderr.splitlines() if "available backends:" in line]
    assert "sequential" in offered
    assert "thread-pool" in offered
    for broken in ("nowhere", "misnamed", "not-a-backend", "no-colon"):
        assert broken not in offered.split(": ", 1)[1].split(", "), offered


def test_a_run_imports_only_its_own_backend_and_a_plugin_flag_still_parses(
    site: Path, tmp_path: Path
) -> None:
    """A run on the command line imports no other plugin's classes, as run() does.

    Their flags need them, so a line with one (or with help, an error, an
    abbreviation) is parsed by the parser that has every flag.
    """
    make_distribution(site, "curator-fixture-later-broken", "1.0",
                      {"later-broken": "curator_fixture_later_broken"})  # fmt: skip
    make_distribution(site, "curator-fixture-flags", "1.0", {"deep": "curator_fixture_flags"})
    env = subprocess_env(site)
    ran = curator("run", "pipelines:ten", "-b", "thread-pool", "-j", "2", "--json",
                  "--no-checkpoint", env=env)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "broken" not in ran.stderr  # later-broken's references were never imported
    assert json.loads(ran.stdout)["ok"] == 10
    # Its own backend is imported, and refused with the reason.
    nowhere = curator("run", "pipelines:ten", "-b", "nowhere", "--no-checkpoint", env=env)
    assert nowhere.returncode == 4, nowhere.stderr
    assert "cannot be imported: ModuleNotFoundError" in nowhere.stderr
    # Help has every flag (and so imports every class: the broken plugin is told).
    helped = curator("run", "--help", env=env)
    assert helped.returncode == 0, helped.stderr
    assert "--depth VALUE" in helped.stdout
    assert "later-broken" in helped.stderr
    # A plugin's flag, whole or abbreviated, and an abbreviated flag of curator run's own.
    for depth in ("--depth", "--dep"):
        deep = curator("run", "pipelines:ten", "-b", "deep", depth, "3", "--keep",
                       "--no-checkpoint", env=env, cwd=tmp_path)  # fmt: skip
        assert deep.returncode == 0, deep.stderr
        assert "deep: depth 3" in deep.stderr
    # An error's usage line is the whole parser's.
    bad = curator("run", "pipelines:ten", "-j", "two", env=env)
    assert bad.returncode == 2
    assert "[--depth VALUE]" in bad.stderr
    assert "argument -j/--jobs: invalid int value: 'two'" in bad.stderr
    # Found by a review: a value that abbreviates a flag is read as the whole parser reads
    # it (argparse takes "--keep=a b" for a positional when no flag starts with --keep).
    odd = curator("run", "pipelines:ten", "--checkpoint", "--keep=a b", env=env, cwd=tmp_path)
    assert odd.returncode == 2
    assert "argument --checkpoint: expected one argument" in odd.stderr
    assert not (tmp_path / "--keep=a b").exists()
    # Strict mode checks every plugin on every command, as before.
    strict = subprocess_env(site, CURATOR_STRICT_PLUGINS="1")
    refused = curator("run", "pipelines:ten", "-b", "thread-pool", "--no-checkpoint", env=strict)
    assert refused.returncode == 4, refused.stderr
    assert "later-broken" in refused.stderr


def test_plugins_commands_are_asked_for_once_when_the_whole_parser_takes_a_run_line(
    site: Path,
) -> None:
    """Found by a review: the lean parse, then the whole one, asked every plugin twice."""
    make_distribution(site, "curator-fixture-commands", "1.0",
                      {"half": "curator_fixture_commands:half"})  # fmt: skip
    env = subprocess_env(site)
    for line in (["run", "--help"], ["run", "pipelines:ten", "--keep", "--no-checkpoint"]):
        ran = curator(*line, env=env)
        assert ran.returncode == 0, ran.stderr
        assert ran.stderr.count("half: about to fail") == 1, ran.stderr


def test_curator_report_without_its_plugin_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import curator.cli.main as cli

    # Whatever this machine has installed: no plugin distribution at all.
    alone = Registry.load(PluginSettings(), entrypoints=False)
    monkeypatch.setattr(Registry, "load", lambda *args, **kwargs: alone)
    monkeypatch.setattr(cli, "_setup_logging", lambda: None)
    monkeypatch.chdir(tmp_path)
    for args in (["report"], ["report", "c.sqlite", "--html", "r.html"], ["report", "--json"]):
        assert cli.main(args) == 2, args
        assert capsys.readouterr().err == (
            "curator: error: curator report comes with the plugin curator-report, which is not "
            "installed: pip install curator-report\n"
        )
    assert "(needs the plugin curator-report)" in cli.build_parser(alone).format_help()
    assert list(tmp_path.iterdir()) == []  # nothing read, nothing made
    monkeypatch.undo()
    off = curator("--no-plugins", "report", cwd=tmp_path)
    assert off.returncode == 2
    assert "curator-report, and plugins are off (--no-plugins or CURATOR_NO_PLUGINS=1)" in (
        off.stderr
    )


def test_curator_report_with_its_plugin_disabled_or_broken_says_so(site: Path) -> None:
    make_distribution(site, "curator-report", "1.0", {"report": "curator_fixture_import_error"})
    broken = curator("report", env=subprocess_env(site))
    assert broken.returncode == 4, broken.stderr
    assert "curator report comes with the plugin curator-report, which is broken: " in (
        broken.stderr
    )
    disabled = curator("report", env=subprocess_env(site, CURATOR_DISABLE_PLUGINS="report"))
    assert disabled.returncode == 2, disabled.stderr
    assert "curator-report, which is disabled (CURATOR_DISABLE_PLUGINS)" in disabled.stderr


def test_a_reporters_flag_is_short_for_its_option_and_remembered(
    site: Path, tmp_path: Path
) -> None:
    """Issue 26: any plugin's flag goes through the one mechanism, a reporter's too."""
    make_distribution(site, "curator-fixture-tally", "1.0",
                      {"tally": "curator_fixture_flags:tally"})  # fmt: skip
    env = subprocess_env(site)
    help_text = curator("run", "--help", env=env).stdout
    assert "--tally-file VALUE" in help_text
    assert "tally.path=VALUE)" in help_text  # (--reporter-option tally.path=VALUE), wrapped
    counted = tmp_path / "count.txt"
    ran = curator("run", "pipelines:ten", "--reporter", "tally", "--tally-file", str(counted),
                  env=env, cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert counted.read_text() == "10\n"
    counted.unlink()
    resumed = curator("run", "pipelines:ten", "--resume", env=env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"--reporter-option tally.path={counted}" in resumed.stderr
    assert counted.read_text() == "10\n"  # the remembered reporter wrote it again
    twice = curator("run", "pipelines:ten", "--reporter", "tally", "--tally-file", "a",
                    "--reporter-option", "tally.path=b", env=env, cwd=tmp_path)  # fmt: skip
    assert twice.returncode == 2
    assert "reporter option tally.path is given twice (and by its flag)" in twice.stderr
    unselected = curator("run", "pipelines:ten", "--tally-file", "c", env=env, cwd=tmp_path)
    assert unselected.returncode == 2
    assert "options given for reporter 'tally', which is not selected" in unselected.stderr


def test_a_reporter_flag_that_curator_run_has_already_breaks_its_plugin(site: Path) -> None:
    make_distribution(site, "curator-fixture-loud", "1.0", {"loud": "curator_fixture_flags:loud"})
    env = subprocess_env(site)
    rows = {row["name"]: row for row in as_json(curator("plugins", "list", "--json", env=env))}
    assert rows["loud"]["status"] == "broken"
    assert (
        "reporter 'loud' declares the flag --json for its option 'level'"
        in (rows["loud"]["detail"])
    )
    ran = curator("run", "pipelines:ten", "--json", "--no-checkpoint", env=env)
    assert ran.returncode == 0, ran.stderr  # --json is still curator run's own
    assert json.loads(ran.stdout)["ok"] == 10


def test_a_reporter_option_given_again_on_resume_keeps_the_others(
    site: Path, tmp_path: Path
) -> None:
    """Found by a review: one reporter flag on --resume dropped json.file (events to stdout)."""
    make_distribution(site, "curator-fixture-tally", "1.0",
                      {"tally": "curator_fixture_flags:tally"})  # fmt: skip
    env = subprocess_env(site)
    events, first, second = tmp_path / "ev.jsonl", tmp_path / "t1", tmp_path / "t2"
    ran = curator("run", "pipelines:ten", "--reporter", "json", "--reporter", "tally",
                  "--reporter-option", f"json.file={events}", "--tally-file", str(first),
                  env=env, cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    events.unlink()
    resumed = curator("run", "pipelines:ten", "--resume", "--tally-file", str(second),
                      env=env, cwd=tmp_path)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert second.read_text() == "10\n"
    assert events.exists(), resumed.stdout[:200]  # json.file kept: the events went there
    assert '"event"' not in resumed.stdout
