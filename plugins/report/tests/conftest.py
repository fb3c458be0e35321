from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

pytest_plugins = ["curator.testing.pytest_plugin"]
