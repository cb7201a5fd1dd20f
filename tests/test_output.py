"""The CLI's one ``--json [PATH]`` convention (defectnet.output)."""

import argparse
import json

import numpy as np
import pytest

from defectnet.cli import main
from defectnet.errors import DefectnetError
from defectnet.output import add_json_option, emit_json, json_default


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


def _predict_args(*host):
    from pathlib import Path

    ex = Path(__file__).resolve().parents[1] / "examples" / "gaas-si-zn"
    return ["predict", *host, "--doped", str(ex / "doped.csv"), "--pristine", str(ex / "pristine.csv"),
            "--candidates", "Si,Zn,Be,C"]


def test_predict_takes_the_host_positionally_or_as_an_option():
    from defectnet.cli import run_captured

    as_option = run_captured(_predict_args("--host", "GaAs"))
    positional = run_captured(_predict_args("GaAs"))
    assert as_option[0] == positional[0] == 0 and as_option[1] == positional[1]
    both = run_captured(_predict_args("GaAs", "--host", "GaAs"))
    assert both[0] == 0 and both[1] == positional[1]
    for host, fragment in ((["Si", "--host", "GaAs"], "two hosts"), ([], "no host")):
        code, _, err, _ = run_captured(_predict_args(*host))
        assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err


def test_predict_json_without_path_is_stdout(tmp_path):
    from defectnet.cli import run_captured

    code, out, _, _ = run_captured(_predict_args("GaAs") + ["--json"])
    assert code == 0 and json.loads(out)["candidates"][0]["element"] == "Si"
    code, out, _, _ = run_captured(_predict_args("GaAs") + ["--json", str(tmp_path / "p.json")])
    assert code == 0 and "wrote" in out and (tmp_path / "p.json").is_file()


@pytest.mark.parametrize("command", [["predict"], ["simulate"], ["basis"], ["limits"], ["recommend"], ["generate"],
                                     ["train"], ["finetune"], ["evaluate"], ["hosts", "build"],
                                     ["dataset", "export"], ["dataset", "bases"]])
def test_every_chatty_subcommand_has_quiet(command):
    from defectnet.cli import build_parser

    sub = build_parser()
    for word in command:
        action = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
        sub = action.choices[word]
    assert any("--quiet" in a.option_strings for a in sub._actions), command  # noqa: SLF001


def test_recommend_quiet_prints_the_table_only(capsys):
    assert main(["recommend", "GaAs", "--n", "3", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "rank" and len(lines) == 4


def test_json_default_writes_numpy_as_python_and_refuses_the_rest():
    text = json.dumps({"i": np.int64(3), "f": np.float32(0.5), "b": np.bool_(True), "a": np.arange(3)},
                      default=json_default, sort_keys=True)
    assert json.loads(text) == {"a": [0, 1, 2], "b": True, "f": 0.5, "i": 3}
    with pytest.raises(TypeError, match="not JSON serialisable: set"):
        json.dumps({1}, default=json_default)
