"""Provenance of an artefact: package version, git commit, command line, library versions, date.

Every result file a benchmark or a command writes carries this block, so a reader can
rerun it.
"""

from __future__ import annotations

import datetime
import importlib.metadata as md
import subprocess
import sys
from pathlib import Path

LIBRARIES = ("numpy", "scipy", "ase", "phonopy", "spglib", "pymatgen", "torch", "sevenn", "chgnet")


def library_versions(packages=LIBRARIES) -> dict[str, str]:
    """{distribution: installed version} of ``packages`` (those not installed are left out)."""
    out = {}
    for pkg in packages:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit checked out where this package lives (``+dirty`` if the tree has changes), or None."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def provenance(command: list[str] | None = None, packages=LIBRARIES) -> dict:
    """What made an artefact: ``{"defectnet", "commit", "command", "date", "python", "versions"}``."""
    import defectnet

    return {
        "defectnet": defectnet.__version__,
        "commit": git_commit(),
        "command": " ".join(command if command is not None else [Path(sys.argv[0]).name, *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "versions": library_versions(packages),
    }
