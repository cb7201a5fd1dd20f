"""The CLI's one ``--json [PATH]`` convention (defectnet.output)."""

import argparse
import json

import pytest

from defectnet.cli import main
from defectnet.errors import DefectnetError
from defectnet.output import add_json_option, emit_json


def test_json_option_means_stdout_without_a_path():
    p = argparse.ArgumentParser()
    add_json_option(p, "it")
    assert p.parse_args([]).json is None
    assert p.parse_args(["--json"]).json == "-"
    assert p.parse_args(["--json", "out.json"]).json == "out.json"


def test_emit_json_writes_a_file_or_stdout_and_refuses_in_one_line(tmp_path, capsys):
    emit_json({"a": 1}, str(tmp_path / "x.json"))
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}
    assert not list(tmp_path.glob("*.tmp"))
    assert capsys.readouterr().out.startswith("wrote ")
    emit_json([1, 2], "-")
    assert json.loads(capsys.readouterr().out) == [1, 2]
    with pytest.raises(DefectnetError, match="is a directory"):
        emit_json({}, str(tmp_path))
    with pytest.raises(DefectnetError, match="cannot write"):
        emit_json({}, str(tmp_path / "missing" / "x.json"))


def test_recommend_json_to_a_path_and_to_stdout(tmp_path, capsys):
    assert main(["recommend", "GaAs", "--n", "3", "--json", str(tmp_path / "r.json")]) == 0
    records = json.loads((tmp_path / "r.json").read_text())
    assert len(records) == 3 and all("dopant" in r for r in records)
    capsys.readouterr()
    assert main(["recommend", "GaAs", "--n", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == records
