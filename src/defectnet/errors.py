"""User-facing errors.

Every problem with what the user gave us (a file, a dopant spec, a host name) raises
:class:`DefectnetError` with a one-line message saying *where* (file, line) and *what was
expected*. The CLI prints it as ``defectnet: error: <message>`` and exits with status 2,
never with a traceback.
"""

from __future__ import annotations


class DefectnetError(ValueError):
    """A one-line, user-facing error about bad input or an unusable resource."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None):
        where = ""
        if source is not None:
            where = f"{source}:{line}: " if line is not None else f"{source}: "
        super().__init__(f"{where}{message}")


def dataclass_from_dict(cls, d, what: str):
    """``cls(**d)`` for a dataclass, unknown keys rejected by a one-line error naming ``what``."""
    from dataclasses import fields

    d = dict(d or {})
    known = sorted(f.name for f in fields(cls))
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise DefectnetError(f"unknown {what} keys {unknown}; expected some of {known}")
    return cls(**d)
