"""What a worker could not import travels by value, however the run's process reaches it."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

from pp_support import subprocess_env

from curator.backends.shipping import dumps


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
