"""The one config mechanism (:mod:`defectnet.settings`): the dicts it writes, the errors it raises."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from defectnet.errors import DefectnetError
from defectnet.settings import Settings, setting

ROOT = Path(__file__).resolve().parents[1]


def _merged(defaults: dict, differs: dict) -> dict:
    return {k: ({**v, **differs[k]} if isinstance(v, dict) and k in differs else differs.get(k, v))
            for k, v in defaults.items()}


def test_every_committed_config_writes_the_dict_it_wrote_before_the_refactor():
    """``tests/config_dicts.json`` holds ``to_dict()`` of each example config as the code before
    the one mechanism wrote it (edit a file's entry when its config changes on purpose).
    Generation configs must match to the JSON text: their identity hash is taken of it."""
    from defectnet.data.config import load_config
    from defectnet.model.config import TrainConfig

    expected = json.loads((ROOT / "tests" / "config_dicts.json").read_text())
    committed = {str(p.relative_to(ROOT)) for pattern in ("examples/*.yaml", "configs/*.yaml", "benchmarks/configs/*.yaml")
                 for p in ROOT.glob(pattern)}
    assert committed <= set(expected["files"]), sorted(committed - set(expected["files"]))
    for name, (kind, differs) in expected["files"].items():
        want = _merged(expected["defaults"][kind], differs)
        if kind == "GenerateConfig":
            config = load_config(ROOT / name)
            assert json.dumps(config.to_dict(), sort_keys=True) == json.dumps(want, sort_keys=True), name
            assert type(config).from_dict(json.loads(json.dumps(config.to_dict()))) == config, name
        else:  # numbers are read as their fields' types now: max_minutes 25 is 25.0, an equal dict
            config = TrainConfig.from_yaml(ROOT / name)
            assert config.to_dict() == want, name
            assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config, name


def _every_settings_class() -> list[type]:
    import defectnet.analysis.config  # noqa: F401 (each module defines its configs)
    import defectnet.data.config  # noqa: F401
    import defectnet.hosts.checks  # noqa: F401
    import defectnet.model.config  # noqa: F401
    import defectnet.phonons.clusters  # noqa: F401
    import defectnet.recommend  # noqa: F401
    import defectnet.sampling  # noqa: F401
    import defectnet.simulation  # noqa: F401

    found, todo = [], list(Settings.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return found


def test_every_config_round_trips_through_json():
    from defectnet.data.config import GenerateConfig, HostSelection
    from defectnet.phonons.potentials import potential_info
    from defectnet.recommend import DopantRecord

    made = {GenerateConfig: GenerateConfig(hosts=HostSelection(names=("Si",), filter="element=Ga")),
            HostSelection: HostSelection(names=("Si",)), DopantRecord: DopantRecord("Ge", "Si", 0.5, "periodic", 4),
            type(potential_info("emt")): potential_info("emt")}
    classes = [c for c in _every_settings_class() if c.__module__.startswith("defectnet.")]
    assert len(classes) >= 18
    for cls in classes:
        config = made.get(cls) or cls()
        assert cls.from_dict(json.loads(json.dumps(config.to_dict()))) == config, cls.__name__


@dataclass(frozen=True)
class Inner(Settings, what="inner settings"):
    size: int = setting(2, lo=1)
    span: tuple[float, float] = (0.1, 0.2)
    mode: str = setting("a", choices=("a", "b"))


@dataclass(frozen=True)
class Outer(Settings, what="outer config"):
    name: str = "x"
    cells: tuple[int, int] | int = setting(4, lo=1)
    rate: float | None = setting(None, above=0.0)
    energy: float = setting(1.0, exact=True)
    inner: Inner = setting(Inner(), key="inner_settings")
    tags: tuple[str, ...] = ()


@pytest.mark.parametrize("data, key, message", [
    ({"colour": 1}, "", "unknown config key 'colour'; expected one of cells, energy, inner_settings, name, rate, tags"),
    ({"colour": 1}, None, "unknown outer config keys ['colour']; expected some of ['cells', 'energy', 'inner_settings', "
                          "'name', 'rate', 'tags']"),
    ({"inner_settings": {"sise": 1}}, "", "unknown config key 'inner_settings.sise'; expected one of mode, size, span"),
    ({"inner_settings": {"sise": 1}}, None, "unknown inner settings keys ['sise']; expected some of ['mode', 'size', 'span']"),
    ({"inner_settings": {"size": 0}}, None, "config key 'inner_settings.size': must be >= 1, got 0"),
    ({"inner_settings": {"size": 1.5}}, "", "config key 'inner_settings.size': expected an integer, got 1.5"),
    ({"inner_settings": {"span": [0.3, 0.2]}}, "", "config key 'inner_settings.span': expected min <= max, got [0.3, 0.2]"),
    ({"inner_settings": {"span": 0.3}}, "", "config key 'inner_settings.span': expected a [min, max] pair, got 0.3"),
    ({"inner_settings": {"mode": "c"}}, "", "config key 'inner_settings.mode': expected one of a, b, got 'c'"),
    ({"inner_settings": 3}, "", "config key 'inner_settings': expected a mapping, got int"),
    ({"cells": [0, 5]}, "", "config key 'cells': must be >= 1, got 0"),
    ({"cells": "many"}, "", "config key 'cells': expected a [min, max] pair, got 'many'"),
    ({"rate": 0}, "", "config key 'rate': must be > 0.0, got 0"),
    ({"energy": "high"}, "", "config key 'energy': expected a number, got 'high'"),
    ({"name": ""}, "", "config key 'name': expected a non-empty string, got ''"),
    ({"tags": [1]}, "", "config key 'tags': expected a non-empty string, got 1"),
    ([1], "", "expected a mapping of outer config keys, got list"),
])
def test_errors_are_one_line_naming_the_key_and_the_expectation(data, key, message):
    with pytest.raises(DefectnetError) as exc:
        Outer.from_dict(data, key=key)
    assert str(exc.value) == message


def test_values_are_read_as_their_fields_say():
    got = Outer.from_dict({"cells": 8.0, "rate": None, "energy": 3, "tags": " a ", "inner_settings": {"span": [1, 2]}})
    assert got == Outer(cells=8, energy=3, tags=("a",), inner=Inner(span=(1.0, 2.0)))
    assert type(got.energy) is int and type(got.inner.span[0]) is float  # exact: as given; a float field: a float
    assert got.to_dict() == {"name": "x", "cells": 8, "rate": None, "energy": 3, "inner_settings":
                             {"size": 2, "span": [1.0, 2.0], "mode": "a"}, "tags": ["a"]}
    assert Outer.from_dict(None) == Outer() and Outer.from_dict({"cells": [3, 4]}).cells == (3, 4)
