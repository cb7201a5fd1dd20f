"""Provenance blocks: what made an artefact, so a reader can rerun it."""

import re

import defectnet
from defectnet.provenance import git_commit, library_versions, provenance


def test_provenance_names_version_commit_command_and_libraries(tmp_path):
    prov = provenance(["benchmarks/lvm.py", "--hosts", "Si"])
    assert prov["defectnet"] == defectnet.__version__
    assert prov["command"] == "benchmarks/lvm.py --hosts Si"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", prov["date"])
    assert {"numpy", "phonopy", "torch"} <= set(prov["versions"])
    # this test runs from a git checkout of the project: the commit is a 40-hex hash, maybe dirty
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", prov["commit"])
    assert git_commit(tmp_path) is None  # not a repository: no commit, no exception


def test_library_versions_leaves_out_what_is_not_installed():
    assert library_versions(("numpy", "no-such-distribution-xyz")) == {"numpy": library_versions(("numpy",))["numpy"]}
