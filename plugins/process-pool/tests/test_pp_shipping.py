"""What a worker could not import travels by value, however the run's process reaches it."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pp_support import subprocess_env

from curator.backends.shipping import dumps
from curator.testing.processes import child_env


def test_local_functions_and_lambdas_travel_by_value() -> None:
    def local(x: int) -> int:
        return x + 1

    for obj in (local, lambda x: x * 2):
        again = pickle.loads(dumps(obj))
        assert again is not obj
        assert again(3) == obj(3)


def test_what_main_defines_loads_in_a_process_that_never_ran_main(tmp_path: Path) -> None:
    # Reached directly, through an instance, bound to an importable object, or as a
    # TypeVar: pickled by a script, then loaded by another process (a worker).
    code = textwrap.dedent(
        f"""
        import fractions, types, typing
        from curator.backends.shipping import dumps
        T = typing.TypeVar("T")
        class Here:
            def answer(self):
                return 42
        def shout(self):
            return f"bound to {{type(self).__name__}}"
        payload = [Here(), types.MethodType(shout, fractions.Fraction(1, 2)), T, typing.List[T]]
        open({str(tmp_path / "payload.bin")!r}, "wb").write(dumps(payload))
        """
    )
    env = subprocess_env()
    made = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert made.returncode == 0, made.stderr
    load = textwrap.dedent(
        f"""
        import pickle
        here, bound, typevar, alias = pickle.load(open({str(tmp_path / "payload.bin")!r}, "rb"))
        print(here.answer(), bound(), typevar.__name__, alias.__args__[0] is typevar)
        """
    )
    loaded = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == ["42", "bound", "to", "Fraction", "T", "True"]


INSTALLED = """
import sys
from curator import Sink, Source


class Numbers(Source):
    def __len__(self):
        return 6

    def __getitem__(self, index):
        yield index


class Modules(Sink):
    def __call__(self, items, index):
        return [f"{i}:{'cloudpickle' in sys.modules}" for i in items]


pipeline = Numbers().write(Modules())
"""

RUN_IT = """
import json, sys
from curator import run
from installed import pipeline
result = run(pipeline, backend="process-pool", jobs=2, reporter=None)
print(json.dumps([result.ok, result.outputs, "cloudpickle" in sys.modules]))
"""


def test_importable_work_is_pickled_plainly(tmp_path: Path) -> None:
    # Nothing in the work lives in __main__: neither the run's process nor a worker
    # imports cloudpickle (about 10 ms each, in every run).
    (tmp_path / "installed.py").write_text(INSTALLED)
    env = child_env(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", RUN_IT], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    ok, outputs, parent_has_it = json.loads(done.stdout.strip().splitlines()[-1])
    assert ok
    assert outputs == [[f"{i}:False"] for i in range(6)]
    assert not parent_has_it


@pytest.mark.parametrize("home", ["__main__", "shipped", "registered with cloudpickle"])
def test_a_global_only_named_from_a_module_workers_lack_travels_by_value(
    home: str, tmp_path: Path
) -> None:
    # No class or function of that module in the payload, only a TypeVar, which plain
    # pickle would name (as __main__.T, or jobs_file.T) for the loading process to find.
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "jobs_file.py").write_text("import typing\nT = typing.TypeVar('T')\n")
    # A Dask user's own cloudpickle.register_pickle_by_value counts too.
    where = "T = typing.TypeVar('T')"
    if home != "__main__":
        mark = "ship_by_value" if home == "shipped" else "cloudpickle.register_pickle_by_value"
        where = (
            "import cloudpickle, importlib.util\n"
            f"spec = importlib.util.spec_from_file_location('jobs_file', {str(tmp_path)!r} "
            "+ '/jobs/jobs_file.py')\n"
            "module = importlib.util.module_from_spec(spec)\n"
            "sys.modules['jobs_file'] = module\n"
            "spec.loader.exec_module(module)\n"
            f"{mark}(module)\n"
            "T = module.T"
        )
    code = (
        "import sys, typing\n"
        "from curator.backends.shipping import dumps, ship_by_value\n"
        f"{where}\n"
        f"open({str(tmp_path / 'payload.bin')!r}, 'wb').write(dumps([1, T]))\n"
    )
    env = subprocess_env()
    made = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert made.returncode == 0, made.stderr
    load = f"import pickle\nprint(pickle.load(open({str(tmp_path / 'payload.bin')!r}, 'rb'))[1])"
    loaded = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "~T"
