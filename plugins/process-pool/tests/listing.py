"""Assert what `curator backends list --json` shows (used by the installed-wheel tox env).

Usage: python listing.py present|absent NAME [DISTRIBUTION VERSION]
"""

from __future__ import annotations

import json
import subprocess
import sys


def main() -> None:
    expect, name, *provider = sys.argv[1:]
    out = subprocess.run(
        [sys.executable, "-m", "curator", "backends", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = {row["name"]: row for row in json.loads(out)}
    if expect == "absent":
        assert name not in rows, f"{name} is still listed: {rows[name]}"
        print(f"ok: {name} is not listed ({sorted(rows)})")
        return
    row = rows[name]
    assert row["status"] == "ok", row
    if provider:
        assert [row["provided_by"], row["version"]] == provider, row
    print(f"ok: {name} listed as {row}")


if __name__ == "__main__":
    main()
