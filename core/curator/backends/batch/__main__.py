"""``python -m curator.backends.batch ROUND TASK``: run one task of a round in a batch job."""

from __future__ import annotations

import sys

from curator.backends.batch.job import main

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m curator.backends.batch ROUND_FOLDER TASK")
    sys.exit(main(sys.argv[1], sys.argv[2]))
