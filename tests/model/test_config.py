import pytest

from defectnet.errors import DefectnetError
from defectnet.model.config import CHOICES, TrainConfig


@pytest.mark.parametrize("name", sorted(CHOICES))
def test_every_choice_field_accepts_its_values_and_names_them_when_refusing(name):
    for value in CHOICES[name]:
        assert getattr(TrainConfig(**{name: value}), name) == value
    with pytest.raises(DefectnetError, match=f"{name} must be one of {', '.join(CHOICES[name])}, got 'nope'"):
        TrainConfig(**{name: "nope"})


def test_config_round_trips_through_its_dict_and_rejects_unknown_keys():
    config = TrainConfig(monitor="mae", monitor_split="val_ood", freeze=["conv"], model={"d_model": 32})
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(DefectnetError, match="epoch"):
        TrainConfig.from_dict({"epoch": 3})


def test_every_shipped_training_config_is_valid():
    from pathlib import Path

    paths = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
    assert len(paths) >= 3
    for path in paths:
        assert TrainConfig.from_yaml(path).epochs >= 1, path
