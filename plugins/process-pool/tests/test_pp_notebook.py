"""A notebook whose cells define and run a pipeline on process-pool, through a real Jupyter kernel.

Needs ``nbclient`` and ``ipykernel`` (tox env ``notebook``, where
``CURATOR_REQUIRE_NOTEBOOK=1`` turns their absence into a failure, not a skip).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

if os.environ.get("CURATOR_REQUIRE_NOTEBOOK") != "1":
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")

import nbformat
from nbclient import NotebookClient

CELLS = [
    """
from dataclasses import dataclass
from curator import Sink, Source, run

@dataclass
class Shape:
    index: int
    area: float
    tag: str

class Boxes(Source):
    def __init__(self, n):
        self.n = n
    def __len__(self):
        return self.n
    def __getitem__(self, i):
        yield (i, i + 1)
""",
    """
import os

class Measure(Sink):
    def __call__(self, items, index):
        return [Shape(index, w * h, os.environ.get("CURATOR_TAG", "")) for w, h in items]

pipeline = Boxes(6).filter(lambda items: ((w * 2, h) for w, h in items)).write(Measure())
""",
    """
import json
os.environ["CURATOR_TAG"] = "first"
first = run(pipeline, backend="process-pool", jobs=2, reporter=None)
shapes = [s for out in first.outputs for s in out]
print(json.dumps([[s.index, s.area, s.tag, isinstance(s, Shape)] for s in shapes]))
""",
    """
os.environ["CURATOR_TAG"] = "second"
second = run(pipeline, backend="process-pool", jobs=2, reporter=None, indices=[5, 0])
print(json.dumps([[s.index, s.area, s.tag] for out in second.outputs for s in out]))
""",
]


def _printed(cell: nbformat.NotebookNode) -> object:
    text = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
    return json.loads(text.strip().splitlines()[-1])


def test_cells_define_and_run_a_pipeline_on_process_pool(tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    client = NotebookClient(
        notebook,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    errors = [o for cell in notebook.cells for o in cell.outputs if o.output_type == "error"]
    assert not errors, errors
    assert _printed(notebook.cells[2]) == [
        [i, float(2 * i * (i + 1)), "first", True] for i in range(6)
    ]
    assert _printed(notebook.cells[3]) == [[5, 60.0, "second"], [0, 0.0, "second"]]
