"""What the CLI's subcommands share: the :class:`Command` interface, one ``--json [PATH]`` option, one writer.

:func:`json_default` is the package's one ``default`` for ``json.dumps`` of numpy data.

The subcommand modules of other subpackages import :class:`Command` from here rather than
from :mod:`defectnet.cli`, which imports them: no cycle.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from defectnet.errors import DefectnetError

STDOUT = "-"


class Command:
    """A subcommand: its name and help, its arguments, and what it runs."""

    name: str = ""
    help: str = ""

    def add_arguments(self, p: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def add_json_option(parser, what: str) -> None:
    """``--json [PATH]``: write ``what`` as JSON to PATH, or to stdout when no PATH (or ``-``) is given."""
    parser.add_argument("--json", nargs="?", const=STDOUT, default=None, metavar="PATH",
                        help=f"write {what} as JSON to PATH (stdout without PATH)")


def add_quiet_option(parser, what: str = "no progress bars") -> None:
    """``--quiet``: the answer only (no progress bars, no chatter)."""
    parser.add_argument("--quiet", action="store_true", help=what)


def positive_int(text: str) -> int:
    """An argument type: an integer ≥ 1, or argparse's one-line error."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


#: Environment of worker processes that each run on one core: one BLAS/OpenMP thread (read at numpy import).
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def default_workers(limit: int = 4) -> int:
    """Processes a command runs at once unless told: the machine's cores, at most ``limit``."""
    import os

    return max(1, min(limit, os.cpu_count() or 1))


def json_default(o):
    """``json.dumps``' ``default``: numpy scalars and arrays (torch tensors too) as Python numbers and lists.

    Parameters
    ----------
    o : object
        What ``json`` cannot write itself.

    Returns
    -------
    int, float, bool or list
        ``o.tolist()``.

    Raises
    ------
    TypeError
        ``o`` is none of these, as ``json.dumps`` expects.
    """
    if hasattr(o, "tolist"):  # numpy's scalars give a Python scalar, its arrays and torch's tensors a list
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def emit_json(obj, dest: str) -> None:
    """Write ``obj`` as indented JSON to ``dest`` (a path, or ``-`` for stdout); a one-line error if it cannot."""
    text = json.dumps(obj, indent=2, default=str)
    if dest == STDOUT:
        print(text)
        return
    path = Path(dest)
    if path.is_dir():
        raise DefectnetError(f"--json {dest}: is a directory; expected a file path")
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text + "\n")
        tmp.replace(path)
    except OSError as exc:
        raise DefectnetError(f"--json {dest}: cannot write ({exc.strerror or exc})") from None
    print(f"wrote {path}")
