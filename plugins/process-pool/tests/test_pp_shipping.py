"""Work that names only importable code ships with pickle; the rest still travels by value."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

from pp_support import subprocess_env

from curator.backends.shipping import dumps


def test_work_of_importable_modules_ships_without_cloudpickle() -> None:
    code = textwrap.dedent(
        """
        import pickle, sys
        import pp_pipelines
        from curator import run
        from curator.backends.shipping import dumps
        pipeline = pp_pipelines.pipeline(4)
        assert pickle.loads(dumps(pipeline)).source is not None
        result = run(pipeline, backend="process-pool", jobs=2, reporter=None)
        print(len(result.outputs), "cloudpickle" in sys.modules)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env()
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["4", "False"]


def test_what_a_worker_could_not_import_still_travels_by_value() -> None:
    def local(x: int) -> int:
        return x + 1

    for obj in (local, lambda x: x * 2):
        again = pickle.loads(dumps(obj))
        assert again is not obj
        assert again(3) == obj(3)
    code = textwrap.dedent(
        """
        import pickle, sys
        from curator.backends.shipping import dumps
        class Here:
            def answer(self):
                return 42
        data = dumps([Here()])
        assert "cloudpickle" in sys.modules
        assert b"__main__" not in data.split(b"cloudpickle")[0]  # not a reference to __main__
        print(pickle.loads(data)[0].answer())
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env()
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["42"]
