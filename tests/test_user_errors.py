"""A user's mistake is a one-line error and exit 2: never a traceback, never a silent start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from core_support import curator, subprocess_env

from curator import UsageError, run

CASES = {
    "len raises": (["pipelines:len_raises"], "len() raised RuntimeError: cannot count the files"),
    "len negative": (["pipelines:len_negative"], "__len__() should return >= 0"),
    "len fractional": (["pipelines:len_fractional"], "'float' object cannot be interpreted"),
    "huge jobs": (
        ["pipelines:ten", "-b", "thread-pool", "-j", "99999999999999999999999"],
        "is more workers than curator starts",
    ),
    "json file in a missing folder": (
        ["pipelines:ten", "--reporter", "json", "--reporter-option", "json.file=/no/such/e.jsonl"],
        "the folder /no/such does not exist",
    ),
    "a word as the log reporter's stream": (
        ["pipelines:ten", "--reporter", "log", "--reporter-option", "log.stream=abc"],
        "stream must be a text stream (an object with write()), not 'abc'",
    ),
    "a word as the json reporter's stream": (
        ["pipelines:ten", "--reporter", "json", "--reporter-option", "json.stream=abc"],
        "stream must be a text stream",
    ),
    "a word as the rich reporter's console": (
        ["pipelines:ten", "--reporter", "rich", "--reporter-option", "rich.console=foo"],
        "console must be a rich Console, not 'foo': give it from Python",
    ),
    "a reporter option without its reporter's name, its value with a dot": (
        ["pipelines:ten", "--reporter", "json", "--reporter-option", "file=events.jsonl"],
        "invalid reporter option 'file=events.jsonl': expected NAME.KEY=VALUE, the reporter's "
        "name first",
    ),
    "infinite retry delay": (
        ["pipelines:ten", "--retries", "1", "--retry-delay", "inf"],
        "retry_delay must be a finite number",
    ),
    "nan retry delay": (["pipelines:ten", "--retry-delay", "nan"], "retry_delay must be a finite"),
    "nan grace": (["pipelines:ten", "--grace", "nan"], "grace must be a finite number"),
    "nan timeout": (["pipelines:ten", "--timeout", "nan"], "timeout must be a finite number"),
    "empty slice": (["pipelines:ten", "--indices", "5:2"], "'5:2' selects no index"),
    "underscore digits": (["pipelines:ten", "--indices", "1_0"], "'1_0' is not an integer"),
    "non-ASCII digits": (["pipelines:ten", "--indices", "\u0661"], "is not an integer"),
    "a file that is not a checkpoint": (
        ["pipelines:ten", "--checkpoint", "notes.txt"],
        "is not a curator checkpoint",
    ),
    "sys.exit as the target": (["sys:exit"], "calling exit() called sys.exit(None)"),
    "a target that exits on import": (
        ["exits_on_import.py:pipeline"],
        "importing 'exits_on_import' called sys.exit(0)",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_user_mistake_exits_2_with_a_clear_message_and_starts_nothing(
    case: str, tmp_path: Path
) -> None:
    args, message = CASES[case]
    (tmp_path / "notes.txt").write_text("my notes\n")
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(0)\n")
    proc = curator("run", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "internal error" not in proc.stderr
    assert not (tmp_path / ".curator").exists(), "a checkpoint was created for a refused run"
    assert (tmp_path / "notes.txt").read_text() == "my notes\n"


def test_control_characters_in_a_failure_are_shown_never_obeyed(tmp_path: Path) -> None:
    shown = r"ValueError: bad \x1b[31mRED\x1b]0;TITLE\x07\r\ncurator: forged line"
    ran = curator("run", "pipelines:hostile", "--keep-going", "--reporter", "log", cwd=tmp_path)
    assert ran.returncode == 1, ran.stderr
    stopped = curator("run", "pipelines:hostile", "--no-checkpoint", cwd=tmp_path)  # the error
    assert r"ValueError: bad \x1b[31mRED\x1b]0;TITLE\x07\r" in stopped.stderr, stopped.stderr
    assert not set(stopped.stderr) & {"\x1b", "\x07", "\r"}, stopped.stderr
    status = curator("status", "pipelines:hostile", cwd=tmp_path)
    logs = curator("logs", "1", cwd=tmp_path)
    one = curator("status", "pipelines:hostile", "--index", "1", cwd=tmp_path)
    for printed in (ran.stderr, status.stdout):  # one line per failure
        assert shown in printed, printed
        assert not any(line.startswith("curator: forged") for line in printed.splitlines())
    for printed in (logs.stdout, one.stdout):  # tracebacks keep their lines, as Python's
        assert r"ValueError: bad \x1b[31mRED\x1b]0;TITLE\x07\r" in printed, printed
    for printed in (ran.stderr, status.stdout, logs.stdout, one.stdout):
        assert not set(printed) & {"\x1b", "\x07", "\r"}, printed
    # JSON keeps the message as it was (json escapes it).
    [failed] = json.loads(
        curator("status", "pipelines:hostile", "--failed", "--json", cwd=tmp_path).stdout
    )
    assert failed["message"] == "bad \x1b[31mRED\x1b]0;TITLE\x07\r\ncurator: forged line"


PLANS = {
    "a dry run": (["run", "pipelines:ten", "--dry-run"], 0),
    "a resume's dry run": (["run", "pipelines:ten", "--resume", "--dry-run", "--json"], 0),
    "status of no checkpoint": (["status"], 2),
    "report of no checkpoint": (["report"], 2),
    "logs of no checkpoint": (["logs", "1"], 2),
    "a backend that does not exist": (["run", "pipelines:ten", "-b", "nosuch"], 2),
    "jobs on a backend that runs one item": (["run", "pipelines:ten", "-j", "2"], 2),
    "a timeout threads cannot keep": (["run", "pipelines:ten", "--timeout", "5"], 2),
    "an index beyond the pipeline": (["run", "pipelines:ten", "--indices", "7:12"], 2),
    "an unknown backend option": (["run", "pipelines:ten", "-b", "thread-pool", "-o", "x=1"], 2),
}


@pytest.mark.parametrize("case", list(PLANS))
def test_planning_and_reading_create_no_file(case: str, tmp_path: Path) -> None:
    """Issue 26: a dry run, a reading command or a refused run leaves no checkpoint, lock or key."""
    args, code = PLANS[case]
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = subprocess_env(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    env.pop("CURATOR_KEY_FILE", None)  # the key would be made where the user's lives
    proc = curator(*args, env=env, cwd=work)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    made = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert made == ["home", "work"], f"{case} left files behind: {made}"


def test_ctrl_c_before_the_command_takes_it_ends_quietly_with_130(tmp_path: Path) -> None:
    """A Ctrl-C while the command still sets itself up (as while its modules load)."""
    code = (
        "import curator.cli.main as command\n"
        "def pressed():\n"
        "    raise KeyboardInterrupt\n"
        "command._setup_logging = pressed\n"
        "command.cli()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
        env=subprocess_env(), timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr == "curator: interrupted\n"


def test_a_run_of_what_is_no_pipeline_is_refused_before_any_plugin_loads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import curator.plugin_host.registry as registries

    def broken() -> None:
        raise AssertionError("the plugins were loaded before the pipeline was checked")

    monkeypatch.setattr(registries, "default_registry", broken)
    monkeypatch.setattr("curator.running.runner.default_registry", broken)
    with pytest.raises(UsageError, match="Pipeline"):
        run(42)  # type: ignore[arg-type]
