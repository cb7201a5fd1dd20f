"""Write ``docs/cli.md``, the CLI reference, from the ``defectnet`` argparse parser.

Every subcommand (and every action of a subcommand that has them, such as ``hosts list``)
gets its ``--help`` text, formatted at a fixed width so the file does not depend on the
terminal. ``tests/test_docs.py`` regenerates it and fails when the committed file is stale.

    python docs/gen_cli.py            # rewrite docs/cli.md
    python docs/gen_cli.py --check    # exit 1 if docs/cli.md is not up to date
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

#: Width of the help text in characters (argparse otherwise takes the terminal's).
WIDTH = 100
OUT = Path(__file__).resolve().parent / "cli.md"
HEADER = """# CLI reference

Every `defectnet` command and its options, as `--help` prints them. This page is generated
from the argparse parser by `docs/gen_cli.py` (Python {python}); do not edit it by hand:
`python docs/gen_cli.py` rewrites it, and `tests/test_docs.py` fails when it is stale.
What the commands are for is on the task pages: [predict](predict.md), [basis](basis.md),
[simulate](simulate.md), [hosts](hosts.md), [generate](generate.md), [train](train.md).
"""


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """{name: parser} of ``parser``'s subcommands, in the order ``--help`` lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _sections(parser: argparse.ArgumentParser, depth: int = 0):
    """(heading level, prog, help text) of ``parser`` and, depth first, of its subcommands:
    ``defectnet`` and its commands at level 2, the actions of a command at level 3."""
    parser.formatter_class = functools.partial(argparse.HelpFormatter, width=WIDTH)
    yield (3 if depth > 1 else 2), parser.prog, parser.format_help()
    for sub in _subcommands(parser).values():
        yield from _sections(sub, depth + 1)


def render(parser: argparse.ArgumentParser | None = None) -> str:
    """The markdown of the CLI reference (of ``defectnet.cli.build_parser()`` by default)."""
    if parser is None:
        from defectnet.cli import build_parser

        parser = build_parser()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    parts = [HEADER.format(python=python)]
    for level, prog, text in _sections(parser):
        parts.append(f"{'#' * level} {prog}\n\n```text\n{text.rstrip()}\n```\n")
    return "\n".join(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check that docs/cli.md is up to date")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date: run python docs/gen_cli.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
