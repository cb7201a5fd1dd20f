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


def exception_reason(exc: BaseException, limit: int = 200) -> str:
    """One line saying why a third-party reader failed: the first line of its message, or, when it
    has none (a bare ``StopIteration`` from a parser that ran out of lines), what that means."""
    lines = str(exc).strip().splitlines()
    text = " ".join(lines[0].split()) if lines else ""
    if not text or text == type(exc).__name__:
        return f"malformed or incomplete: the reader stopped with a bare {type(exc).__name__}"
    return f"{type(exc).__name__}: {text[:limit]}"


def refuse_unknown_keys(d, known, what: str) -> None:
    """A one-line error naming ``what`` when mapping ``d`` has keys not in ``known``."""
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise DefectnetError(f"unknown {what} keys {unknown}; expected some of {sorted(known)}")


def dataclass_from_dict(cls, d, what: str):
    """``cls(**d)`` for a dataclass, unknown keys rejected by a one-line error naming ``what``.

    The unchecked form of :meth:`defectnet.settings.Settings.from_dict`, for a dataclass that is not one.
    """
    from dataclasses import fields

    d = dict(d or {})
    refuse_unknown_keys(d, [f.name for f in fields(cls)], what)
    return cls(**d)
