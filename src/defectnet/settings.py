"""One mechanism for the config dataclasses: ``to_dict`` and a checked ``from_dict``.

A config dataclass subclasses :class:`Settings` and names itself for error messages
(``class ModelConfig(Settings, what="model config")``). :meth:`Settings.to_dict` writes a
JSON-safe dict (tuples as lists, nested configs by their own ``to_dict``);
:meth:`Settings.from_dict` rebuilds the config from such a dict — a file the code saved, or a
YAML file a user wrote, typos included — and refuses what does not fit with one line naming
the key and what was expected (``config key 'sampler.n_dopants': expected a [min, max] pair,
got 3``).

A field is read by its annotation:

======================  =========================================================
``bool``                ``true`` or ``false``
``int``                 an integer (``2.0`` reads as 2)
``float``               a number, read as a float
``str``                 a non-empty string, stripped
``tuple[int, int]``     a ``[min, max]`` pair with min <= max (``tuple[float, float]`` too)
``tuple[str, ...]``     a list of strings (one string is a list of one)
``tuple``               a list
``dict``, ``Mapping``   a mapping
a :class:`Settings`     a mapping of some of its keys (the others keep their defaults)
``X | None``            ``null`` or an X
``A | B``               the member the value's shape fits (a number, a list, a string, a mapping)
======================  =========================================================

A field that needs more says so with :func:`setting`: bounds ``lo`` (>=) and ``above`` (>),
``choices`` (one of these strings), ``check`` (a function raising
:class:`~defectnet.errors.DefectnetError` on a bad value; its message gets the key),
``parse`` (``parse(key, value)`` reads the value itself, in place of its annotation),
``key`` (its name in the dict when that is not the field's), ``exact`` (a number is kept as
given, an int stays an int: for values hashed into an identifier), ``required`` (absent is an
error; the text says what to give). A field without a default is required too.

Errors name the key two ways. ``from_dict(d, key="")`` reads a user's config file, where the
dotted key says where: ``unknown config key 'sampler.n_dopant'; expected one of ...``.
``from_dict(d)`` (the default) names the config instead: ``unknown model config keys ['x'];
expected some of [...]``; a value that does not fit names its key either way.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import MISSING, field, fields
from functools import cache
from typing import ClassVar, Union, get_args, get_origin, get_type_hints

import numpy as np

from defectnet.errors import DefectnetError, refuse_unknown_keys

RULES = frozenset({"lo", "above", "choices", "check", "parse", "key", "exact", "required"})


def setting(default=MISSING, *, default_factory=MISSING, **rules):
    """A dataclass field with rules for :meth:`Settings.from_dict` (see the module docstring)."""
    if unknown := sorted(set(rules) - RULES):
        raise TypeError(f"unknown setting rules {unknown}; expected some of {sorted(RULES)}")
    return field(default=default, default_factory=default_factory, metadata=rules)


def plain(value):
    """``value`` as JSON has it: tuples as lists (in nested lists and dicts too), configs as their ``to_dict``."""
    if isinstance(value, Settings):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value


class Settings:
    """Mixin of a dataclass: :meth:`to_dict` and :meth:`from_dict` (``from_dict(to_dict())`` is equal)."""

    settings_name: ClassVar[str] = "settings"

    def __init_subclass__(cls, what: str | None = None, **kw):
        super().__init_subclass__(**kw)
        if what is not None:
            cls.settings_name = what

    def to_dict(self) -> dict:
        """The fields as a JSON-safe dict (tuples as lists), each under its key."""
        return {k: plain(getattr(self, f.name)) for k, (f, _) in _fields(type(self)).items()}

    @classmethod
    def from_dict(cls, d, *, key: str | None = None):
        """The config of ``d`` (the dict :meth:`to_dict` wrote, or part of one: absent keys keep
        their defaults), checked field by field.

        Parameters
        ----------
        d : mapping
            ``None`` is ``{}``.
        key : str or None
            Where ``d`` sits in a user's config file, as a dotted key (``""`` for the file
            itself): errors name the dotted key of what is wrong. ``None``: they name the config.

        Raises
        ------
        DefectnetError
            One line: unknown keys, a required key absent, a value of the wrong type or out of
            its bounds, or what the config itself refuses.
        """
        if d is None and key is None:
            d = {}
        return _read_settings(cls, d, key or "", named=key is None)


@cache
def _fields(cls) -> dict:
    """``{key in the dict: (field, its resolved annotation)}`` of a config class."""
    hints = get_type_hints(cls)
    return {f.metadata.get("key", f.name): (f, hints[f.name]) for f in fields(cls) if f.init}


def _join(key: str, name) -> str:
    return f"{key}.{name}" if key else str(name)


def _read_settings(cls, d, key: str, named: bool):
    if isinstance(d, cls):
        return d
    known = _fields(cls)
    if named and isinstance(d, Mapping):
        refuse_unknown_keys(d, known, cls.settings_name)
    elif not key and not isinstance(d, Mapping):
        raise DefectnetError(f"expected a mapping of {cls.settings_name} keys, got {type(d).__name__}")
    d = check_keys(key, d, known)
    for k, (f, _) in known.items():
        if k not in d and (f.metadata.get("required") or f.default is MISSING and f.default_factory is MISSING):
            hint = f.metadata.get("required")
            raise DefectnetError(f"config key '{_join(key, k)}' is required" + (f" ({hint})" if isinstance(hint, str) else ""))
    values = {known[k][0].name: _read_field(*known[k], v, _join(key, k), named) for k, v in d.items()}
    try:
        return cls(**values)
    except DefectnetError as exc:
        if not key:
            raise
        raise key_error(key, str(exc)) from None


def _read_field(f, hint, value, key: str, named: bool):
    rules = f.metadata
    value = rules["parse"](key, value) if "parse" in rules else _read(hint, value, key, rules, named)
    if "check" in rules and value is not None:
        try:
            rules["check"](value)
        except DefectnetError as exc:
            raise key_error(key, str(exc)) from None
    return value


def _read(hint, v, key: str, rules: Mapping, named: bool):
    """``v`` read as annotation ``hint`` says, with the field's ``rules``."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        if v is None and len(kinds) < len(args):
            return None
        fitting = [a for a in kinds if _fits(a, v)]
        return _read((fitting or kinds)[0], v, key, rules, named)
    if "choices" in rules:
        choice = v.strip() if isinstance(v, str) else v
        if choice not in rules["choices"]:
            raise key_error(key, f"expected one of {', '.join(rules['choices'])}, got {v!r}")
        return choice
    if isinstance(hint, type) and issubclass(hint, Settings):
        return _read_settings(hint, v, key, named)
    if hint is bool:
        return to_bool(key, v)
    if hint is int:
        return _bounded(key, to_int(key, v), v, rules)
    if hint is float:
        x = _bounded(key, to_float(key, v), v, rules)
        return v if rules.get("exact") else x
    if hint is str:
        return to_str(key, v)
    if hint is tuple or origin is tuple:
        if args in ((int, int), (float, float)):
            return tuple(_bounded(key, x, x, rules) for x in to_pair(key, v, args[0]))
        if args == (str, ...):
            return to_str_list(key, v)
        if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple)):
            raise key_error(key, f"expected a list, got {v!r}")
        return tuple(v)
    if hint in (dict, Mapping) or origin in (dict, Mapping):
        if not isinstance(v, Mapping):
            raise key_error(key, f"expected a mapping, got {type(v).__name__}")
        return dict(v)
    return v


def _fits(hint, v) -> bool:
    """Whether ``v`` has the shape of ``hint`` (a member of a union)."""
    origin = get_origin(hint) or hint
    if origin in (int, float):
        return is_number(v)
    if origin in (bool, str):
        return isinstance(v, origin)
    if origin is tuple:
        return isinstance(v, (list, tuple))
    return isinstance(v, Mapping)


def _bounded(key: str, x, given, rules: Mapping):
    """``x`` (read from ``given``) if it lies within the field's bounds."""
    if "lo" in rules and x < rules["lo"]:
        raise key_error(key, f"must be >= {rules['lo']}, got {given}")
    if "above" in rules and not x > rules["above"]:
        raise key_error(key, f"must be > {rules['above']}, got {given}")
    return x


# ----------------------------------------------------------------- checks of one value
def key_error(key: str, msg: str) -> DefectnetError:
    """``config key '<key>': <msg>``."""
    return DefectnetError(f"config key '{key}': {msg}")


def is_number(v) -> bool:
    """A real number (numpy's too), not a bool."""
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool)


def to_int(key: str, v) -> int:
    """``v`` as an int if it is a whole number (``2.0`` is 2)."""
    if not is_number(v) or float(v) != int(v):
        raise key_error(key, f"expected an integer, got {v!r}")
    return int(v)


def to_float(key: str, v) -> float:
    """``v`` as a float if it is a number."""
    if not is_number(v):
        raise key_error(key, f"expected a number, got {v!r}")
    return float(v)


def to_bool(key: str, v) -> bool:
    """``v`` if it is ``true`` or ``false`` (no 0, 1 or "yes")."""
    if not isinstance(v, (bool, np.bool_)):
        raise key_error(key, f"expected true or false, got {v!r}")
    return bool(v)


def to_str(key: str, v) -> str:
    """``v`` stripped, if it is a non-empty string."""
    if not isinstance(v, str) or not v.strip():
        raise key_error(key, f"expected a non-empty string, got {v!r}")
    return v.strip()


def to_pair(key: str, v, kind) -> tuple:
    """``(min, max)`` of ``kind`` (int or float) from a two-item list with min <= max."""
    if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple)) or len(v) != 2:
        raise key_error(key, f"expected a [min, max] pair, got {v!r}")
    lo, hi = ((to_int if kind is int else to_float)(key, x) for x in v)
    if lo > hi:
        raise key_error(key, f"expected min <= max, got {list(v)}")
    return lo, hi


def to_str_list(key: str, v) -> tuple[str, ...]:
    """A tuple of non-empty strings from a list of them, or from one string."""
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, (list, tuple)):
        raise key_error(key, f"expected a list of strings, got {v!r}")
    return tuple(to_str(key, x) for x in v)


def check_keys(key: str, data, allowed) -> dict:
    """``data`` as a dict, refused unless it is a mapping of keys in ``allowed``."""
    if not isinstance(data, Mapping):
        raise key_error(key, f"expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise DefectnetError(f"unknown config key '{_join(key, unknown[0])}'; expected one of {', '.join(sorted(allowed))}")
    return dict(data)
