"""One mechanism for the config dataclasses' ``to_dict`` / ``from_dict``.

A config dataclass subclasses :class:`Settings` and names itself for error messages
(``class ModelConfig(Settings, what="model config")``); it writes a JSON-safe dict (tuples as
lists) and is rebuilt from one with unknown keys refused (:func:`defectnet.errors.dataclass_from_dict`).
A config with nested configs or derived fields still writes its own pair.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import ClassVar

from defectnet.errors import dataclass_from_dict


def plain(value):
    """``value`` with every tuple a list, in nested lists and dicts too (what JSON gives back)."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


class Settings:
    """Mixin of a dataclass: :meth:`to_dict` and :meth:`from_dict` (round trip: ``from_dict(to_dict())`` is equal)."""

    settings_name: ClassVar[str] = "settings"

    def __init_subclass__(cls, what: str | None = None, **kw):
        super().__init_subclass__(**kw)
        if what is not None:
            cls.settings_name = what

    def to_dict(self) -> dict:
        """The fields as a JSON-safe dict (tuples as lists)."""
        return plain(asdict(self))

    @classmethod
    def from_dict(cls, d):
        """The config :meth:`to_dict` wrote; unknown keys are a one-line :class:`~defectnet.errors.DefectnetError`."""
        return dataclass_from_dict(cls, d, cls.settings_name)
