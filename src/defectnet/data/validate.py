"""Validators of config values: each takes the dotted key it checks, for one-line errors.

``to_int("sampler.dopant_pool", v, 1)`` returns the value or raises
``config key 'sampler.dopant_pool': must be >= 1, got 0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields

import numpy as np

from defectnet.errors import DefectnetError


def key_error(key: str, msg: str) -> DefectnetError:
    return DefectnetError(f"config key '{key}': {msg}")


def is_number(v) -> bool:
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool)


def to_int(key, v, lo=None):
    if not is_number(v) or float(v) != int(v):
        raise key_error(key, f"expected an integer, got {v!r}")
    if lo is not None and int(v) < lo:
        raise key_error(key, f"must be >= {lo}, got {v}")
    return int(v)


def to_float(key, v, lo=None, *, strict=False):
    if not is_number(v):
        raise key_error(key, f"expected a number, got {v!r}")
    if lo is not None and (float(v) <= lo if strict else float(v) < lo):
        raise key_error(key, f"must be {'>' if strict else '>='} {lo}, got {v}")
    return float(v)


def to_bool(key, v):
    if not isinstance(v, bool):
        raise key_error(key, f"expected true or false, got {v!r}")
    return v


def to_str(key, v):
    if not isinstance(v, str) or not v.strip():
        raise key_error(key, f"expected a non-empty string, got {v!r}")
    return v.strip()


def to_pair(key, v, kind):
    if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple)) or len(v) != 2:
        raise key_error(key, f"expected a [min, max] pair, got {v!r}")
    lo, hi = ((to_int if kind is int else to_float)(key, x) for x in v)
    if lo > hi:
        raise key_error(key, f"expected min <= max, got {list(v)}")
    return lo, hi


def to_str_list(key, v):
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, (list, tuple)):
        raise key_error(key, f"expected a list of strings, got {v!r}")
    return tuple(to_str(key, x) for x in v)


def check_keys(key: str, data, allowed) -> dict:
    if not isinstance(data, Mapping):
        raise key_error(key, f"expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        where = f"{key}." if key else ""
        raise DefectnetError(f"unknown config key '{where}{unknown[0]}'; expected one of {', '.join(sorted(allowed))}")
    return dict(data)


def parse_settings(key, v, cls):
    """A frozen settings dataclass from a partial mapping; types follow the defaults."""
    if isinstance(v, cls):
        return v
    default = cls()
    d = check_keys(key, v, [f.name for f in fields(cls)])
    out = {}
    for k, val in d.items():
        ref, kk = getattr(default, k), f"{key}.{k}"
        if isinstance(ref, bool):
            out[k] = to_bool(kk, val)
        elif isinstance(ref, int):
            out[k] = to_int(kk, val, 0)
        elif isinstance(ref, float):
            out[k] = to_float(kk, val, 0.0)
        else:
            out[k] = to_str(kk, val)
    return cls(**out)
