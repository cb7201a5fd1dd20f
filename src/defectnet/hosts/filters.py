"""Host filter expressions and :func:`list_hosts`.

A filter is whitespace/comma-separated terms that must all hold, e.g.
``"element=Ga|In arity<=3 stable"``; :func:`list_hosts` applies one to the library
(:func:`~defectnet.hosts.library.get_library`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable

import numpy as np

from defectnet.errors import DefectnetError
from defectnet.hosts.library import HARD_CHECKS, SOURCES, Host, get_library


def _num(v) -> float:
    return float("nan") if v is None else float(v)


# field name -> (kind, getter); kinds: str, num, bool, set
_FIELDS: dict[str, tuple[str, Callable[[Host], object]]] = {
    "name": ("str", lambda h: h.all_names),
    "formula": ("str", lambda h: h.formula),
    "prototype": ("str", lambda h: h.prototype),
    "family": ("str", lambda h: h.family),
    "source": ("str", lambda h: h.source),
    "element": ("set", lambda h: h.elements),
    "chemsys": ("str", lambda h: "-".join(sorted(h.elements))),
    "arity": ("num", lambda h: h.arity),
    "n_atoms": ("num", lambda h: h.n_atoms),
    "spacegroup": ("num", lambda h: h.spacegroup_number),
    "min_frequency_mev": ("num", lambda h: _num(h.provenance.get("min_frequency_mev"))),
    "relaxed": ("bool", lambda h: h.relaxed),
    "stable": ("bool", lambda h: bool(h.dynamically_stable)),
    "charge_balanced": ("bool", lambda h: h.charge_balanced),
    "passed": ("bool", lambda h: all(h.checks.get(c) for c in HARD_CHECKS)),
}
_FIELD_ALIASES = {
    "elements": "element",
    "el": "element",
    "sg": "spacegroup",
    "natoms": "n_atoms",
    "nelements": "arity",
    "dynamically_stable": "stable",
    "proto": "prototype",
}
_ARITY_WORDS = {"binary": 2, "ternary": 3, "quaternary": 4, "quinary": 5}
_TERM = re.compile(r"^(!?)([A-Za-z_]+)\s*(<=|>=|!=|=|<|>|~)?\s*(.*)$")


def _parse_filter(expr: str) -> list[Callable[[Host], bool]]:
    """Turn ``"element=Ga arity<=3 stable"`` into predicates (all must hold)."""
    from defectnet.elements import check_element

    preds = []
    for raw in re.split(r"[\s,;]+", expr.strip()):
        if not raw:
            continue
        m = _TERM.match(raw)
        if not m:
            raise DefectnetError(f"bad host filter term {raw!r}; expected e.g. 'element=Ga', 'arity<=3' or 'stable'")
        neg, key, op, value = m.groups()
        key = key.lower()
        if op is None:  # bare word: boolean field, source, arity word, or an element symbol
            if key in _ARITY_WORDS:
                key, op, value = "arity", "=", str(_ARITY_WORDS[key])
            elif key in SOURCES:
                key, op, value = "source", "=", key
            elif raw.lstrip("!") in _SYMBOL_SET():
                key, op, value = "element", "=", raw.lstrip("!")
            else:
                key, op, value = key, "=", "true"
        key = _FIELD_ALIASES.get(key, key)
        if key not in _FIELDS:
            raise DefectnetError(f"unknown host filter field {key!r}; expected one of {', '.join(sorted(_FIELDS))}")
        kind, get = _FIELDS[key]
        preds.append(_predicate(kind, get, op, value, key, raw, negate=bool(neg), check_element=check_element))
    return preds


@lru_cache(maxsize=1)
def _SYMBOL_SET() -> frozenset:
    from ase.data import chemical_symbols

    return frozenset(chemical_symbols[1:])


def _predicate(kind, get, op, value, key, raw, *, negate, check_element):
    bad = DefectnetError(f"host filter {raw!r}: operator {op!r} does not apply to {key!r}")
    if kind == "num":
        if key == "spacegroup" and not re.fullmatch(r"-?\d+(\.\d+)?", value):
            if op not in ("=", "!=", "~"):
                raise bad
            sym = value.replace(" ", "").lower()
            base = lambda h: h.spacegroup_symbol.replace(" ", "").lower() == sym  # noqa: E731
            f = base if op != "!=" else (lambda h: not base(h))
        else:
            try:
                x = float(value)
            except ValueError:
                raise DefectnetError(f"host filter {raw!r}: {key!r} needs a number") from None
            ops = {
                "=": np.equal,
                "!=": np.not_equal,
                "<": np.less,
                "<=": np.less_equal,
                ">": np.greater,
                ">=": np.greater_equal,
            }
            if op not in ops:
                raise bad
            f = lambda h: bool(ops[op](get(h), x))  # noqa: E731
    elif kind == "bool":
        if op not in ("=", "!="):
            raise bad
        truth = value.lower() in ("1", "true", "yes", "y")
        if value.lower() not in ("1", "0", "true", "false", "yes", "no", "y", "n"):
            raise DefectnetError(f"host filter {raw!r}: {key!r} is true or false")
        f = lambda h: bool(get(h)) == (truth if op == "=" else not truth)  # noqa: E731
    elif kind == "set":
        wanted = [check_element(v) for v in value.split("|")]
        if op not in ("=", "!="):
            raise bad
        f = lambda h: any(w in get(h) for w in wanted) == (op == "=")  # noqa: E731
    else:  # str
        options = [v.lower() for v in value.split("|")]

        def values(h):
            v = get(h)
            return [x.lower() for x in (v if isinstance(v, tuple) else (v,))]

        if op == "~":
            f = lambda h: any(o in v for o in options for v in values(h))  # noqa: E731
        elif op in ("=", "!="):
            f = lambda h: any(o == v for o in options for v in values(h)) == (op == "=")  # noqa: E731
        else:
            raise bad
    return (lambda h: not f(h)) if negate else f


def list_hosts(filter_expr: str | None = None, *, candidates: bool = False) -> list[Host]:
    """Library hosts matching a filter expression, in library order.

    The expression is whitespace/comma-separated terms that must all hold: ``field op value``
    with ``op`` one of ``= != < <= > >= ~`` (``~`` = substring), ``|`` between alternatives,
    a leading ``!`` negates. Fields: name, formula, prototype, family, source, element,
    chemsys, arity, n_atoms, spacegroup (number or symbol), min_frequency_mev, relaxed,
    stable, charge_balanced, passed. Bare words: a boolean field (``stable``), a source
    (``curated``), ``binary``…``quinary``, or an element symbol (``O``).

    Examples: ``"element=Ga|In arity=2"``, ``"prototype=perovskite stable"``, ``"curated !relaxed"``.

    Parameters
    ----------
    candidates : bool
        Also list the unbuilt prototype candidates.
    """
    lib = get_library()
    pool = lib.hosts + (lib.candidates if candidates else [])
    if not filter_expr:
        return list(pool)
    preds = _parse_filter(filter_expr)
    return [h for h in pool if all(p(h) for p in preds)]
