"""Build every distribution into a wheelhouse, check it, and install plugins from it by name.

Usage (from the repository root; ``tox -e release`` runs both steps)::

    python tools/release.py build  [--out wheelhouse]   # wheels + sdists, then twine check
    python tools/release.py verify [--wheelhouse wheelhouse]

``build`` needs ``build`` and ``twine``. ``verify`` creates a fresh virtual
environment, installs ``curator-backend-process-pool`` *by name* from the
wheelhouse (``curator-core`` comes along the same way; only third-party
dependencies come from the package index), checks that ``curator backends
list`` shows it, runs the example pipeline on it, uninstalls it and checks that
it is gone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTIONS = {
    "curator-core": ROOT,
    "curator-backend-process-pool": ROOT / "plugins" / "process-pool",
    "curator-backend-dask": ROOT / "plugins" / "dask",
    "curator-report": ROOT / "plugins" / "report",
    "curator-backend-slurm": ROOT / "plugins" / "slurm",
}


def sh(*args: str | Path, capture: bool = False) -> str:
    """Run a command, echoing it; fail loudly with its output."""
    print("+", " ".join(str(a) for a in args), flush=True)
    done = subprocess.run([str(a) for a in args], text=True, capture_output=capture)
    if done.returncode != 0:
        if capture:
            sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"failed ({done.returncode}): {' '.join(str(a) for a in args[:3])}")
    return done.stdout if capture else ""


def build(out: Path) -> None:
    """Build a wheel and an sdist of every distribution into ``out``; twine-check them."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("curator*"):
        old.unlink()
    for name, source in DISTRIBUTIONS.items():
        sh(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", out, source)
        built = sorted(p.name for p in out.glob(f"{name.replace('-', '_')}-*"))
        if len(built) != 2:
            raise SystemExit(f"expected a wheel and an sdist of {name}, found {built}")
    sh(sys.executable, "-m", "twine", "check", "--strict", *sorted(out.glob("curator*")))
    print(f"wheelhouse: {out}")
    for path in sorted(out.glob("curator*")):
        print(f"  {path.name}")


def verify(wheelhouse: Path) -> None:
    """Install the plugins by name from ``wheelhouse`` into a fresh venv; use them."""
    wheelhouse = wheelhouse.resolve()
    if not any(wheelhouse.glob("curator_backend_process_pool-*.whl")):
        raise SystemExit(f"no plugin wheel in {wheelhouse}: run `python tools/release.py build`")
    with tempfile.TemporaryDirectory(prefix="curator-release-") as tmp:
        venv = Path(tmp) / "venv"
        sh(sys.executable, "-m", "venv", venv)
        python = venv / "bin" / "python"
        report = Path(tmp) / "install.json"
        sh(
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--find-links",
            wheelhouse,
            "--report",
            report,
            "curator-backend-process-pool",
        )
        installed = {
            item["metadata"]["name"]: item["download_info"]["url"]
            for item in json.loads(report.read_text())["install"]
        }
        for name in ("curator-core", "curator-backend-process-pool"):
            where = installed.get(name, "")
            if not where.startswith(wheelhouse.as_uri()):
                raise SystemExit(f"{name} was not installed from the wheelhouse: {where!r}")
        rows = _backends(python)
        row = rows.get("process-pool")
        if row is None or row["status"] != "ok":
            raise SystemExit(f"process-pool is not listed ok after the install: {row}")
        print(f"ok: listed {row}")
        work = Path(tmp) / "work"
        work.mkdir()
        summary = json.loads(
            subprocess.run(
                [
                    str(venv / "bin" / "curator"),
                    "run",
                    "curator.examples.snapshots:pipeline",
                    "--backend",
                    "process-pool",
                    "--jobs",
                    "2",
                    "--indices",
                    "0:20",
                    "--reporter",
                    "none",
                    "--json",
                ],
                cwd=work,
                text=True,
                capture_output=True,
                check=True,
            ).stdout
        )
        if summary["ok"] != 20 or summary["backend"] != "process-pool":
            raise SystemExit(f"the example did not run on process-pool: {summary}")
        print(f"ok: the example ran 20 items on process-pool ({summary['seconds']:.2f} s)")
        _verify_report(python, venv, wheelhouse, work)
        sh(python, "-m", "pip", "uninstall", "--quiet", "--yes", "curator-backend-process-pool")
        if "process-pool" in _backends(python):
            raise SystemExit("process-pool is still listed after the uninstall")
        print("ok: process-pool is gone after the uninstall; the core still lists its built-ins")


def _verify_report(python: Path, venv: Path, wheelhouse: Path, work: Path) -> None:
    """``curator report`` names its plugin until it is installed by name; then it reports."""
    curator = str(venv / "bin" / "curator")
    missing = subprocess.run([curator, "report"], cwd=work, text=True, capture_output=True)
    if missing.returncode != 2 or "pip install curator-report" not in missing.stderr:
        raise SystemExit(f"curator report without its plugin: {missing}")
    print("ok: curator report without its plugin exits 2 and names curator-report")
    sh(python, "-m", "pip", "install", "--quiet", "--find-links", wheelhouse, "curator-report")
    shown = subprocess.run(
        [curator, "report", "--json"], cwd=work, text=True, capture_output=True, check=True
    )
    counts = json.loads(shown.stdout)["counts"]
    if counts != {"ok": 20}:
        raise SystemExit(f"curator report after installing curator-report: {counts}")
    print(f"ok: curator-report installed by name reports the example's checkpoint: {counts}")


def _backends(python: Path) -> dict[str, dict[str, str]]:
    out = sh(python, "-m", "curator", "backends", "list", "--json", capture=True)
    return {row["name"]: row for row in json.loads(out)}


def main() -> None:
    """Run the step named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)
    steps.add_parser("build").add_argument("--out", type=Path, default=ROOT / "wheelhouse")
    steps.add_parser("verify").add_argument("--wheelhouse", type=Path, default=ROOT / "wheelhouse")
    args = parser.parse_args()
    if args.step == "build":
        build(args.out)
    else:
        verify(args.wheelhouse)


if __name__ == "__main__":
    main()
