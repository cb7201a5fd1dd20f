"""Every benchmark script imports and parses its arguments, and most run end to end on tiny inputs.

``main(["--help"])`` of every script prints its usage and exits 0: this catches a script broken
by a change elsewhere (a moved function, a renamed option) before someone needs its numbers.

Run end to end on tiny inputs (a few committed spectra of six hosts with their committed bases,
written to a temporary folder by the ``tiny`` fixture; outputs under ``tmp_path``), checking the
files written, their keys and counts against the inputs, metrics within their range and the
provenance: ``auto_candidates``, ``cluster_stats`` (one placement), ``combine`` (a never-seen host
of the shipped model), ``conditioned`` (one epoch of a small network, then ``--reuse-model``),
``consistency`` (the tables, and ``--swaps`` on 4 pairs), ``data_coverage``, ``cross_potential``,
``error_calibration`` (one host, two samples), ``learning_curve`` (one epoch), ``limits`` (the
GaAs example's basis, one setting, 5 measurements, 3 concentrations, no held-out run), ``pair_coupling``
(its saving and resuming with a stand-in for the MLIP run, and one Ni pair in Cu with EMT, ~20 s),
``recommender``, ``ship_model`` (the shipped checkpoint, into a temporary folder), ``unexplained``,
``unmix`` (the committed bases, nothing simulated), ``validation`` (the committed 64-atom
``full`` set's Si samples against their ``mass``-tier twin: one host relaxation, ~15 s).

``--help`` only, and why:

* ``accuracy``: trains DefectNet, the paper's network and four baselines on one split (its
  ``--inference-only`` times 16,000 spectra): minutes at any setting;
* ``dev_dataset``, ``lvm``, ``patch_range``, ``tiers``: MLIP force calls, minutes to hours;
* ``generation``: runs the MLIP and a two-worker dask cluster (``--skip-throughput`` still
  starts the cluster and pushes 2,000 tasks: ~12 s of CPU plus two worker processes);
* ``host_adaptation``, ``host_scaling``: fine-tune or train a network per host set from the
  training configs (dozens of epochs, no option to shrink them to seconds);
* ``hostile``: a ``defectnet predict`` per committed sample, which simulates the host with the MLIP;
* ``refine``, ``soft_hosts``, ``transfer``: need generation stores (``.sqlite``, not committed)
  and patches or spectra from the MLIP;
* ``refine_conditioned``: needs the hosts' patches in the engine's disk cache (off in the tests).
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py"))
#: conditioned.py's never-seen test hosts in the tiny data, the other basis hosts, and a host the
#: shipped model never saw (for combine.py)
TEST_HOSTS = ("AgI-zincblende", "BAs-zincblende")
OTHER_HOSTS = ("BeS-zincblende", "BeSe-zincblende", "CaS-rocksalt")
UNSEEN = "CuInS2"
PER_HOST = 6


def load(path: Path, monkeypatch):
    """The script as a module, its folder on sys.path (scripts import their siblings) as when run."""
    monkeypatch.syspath_prepend(str(path.parent))
    spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_script_is_covered():
    assert len(SCRIPTS) >= 25 and all(p.read_text().count("def main(argv=None)") == 1 for p in SCRIPTS), \
        [p.name for p in SCRIPTS if p.read_text().count("def main(argv=None)") != 1]


def test_no_script_shadows_an_installed_module():
    # Scripts import their siblings with benchmarks/ on sys.path; a script named like a package
    # (coverage.py) then replaced that package for everything imported later (numba's coverage hook).
    # Checked against the standard library and every installed distribution's top-level names
    # (`coverage` itself is not installed here: numba only tries it, which is how it bit).
    from importlib.metadata import packages_distributions

    taken = set(sys.stdlib_module_names) | set(packages_distributions()) | {"coverage"}
    assert [p.name for p in SCRIPTS if p.stem in taken] == []


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_the_script_imports_and_parses_its_arguments(path, capsys, monkeypatch):
    module = load(path, monkeypatch)
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and (module.__doc__ or "").split("\n")[0].strip()[:40] in " ".join(out.split())


# --- end to end on tiny inputs -------------------------------------------------------------------

def tiny_h5(src: Path, hosts, n: int, out: Path) -> int:
    """The first ``n`` samples of each of ``hosts`` in the compact training file ``src``, as a file of
    the same layout and attributes (per-host arrays kept whole); returns the number of samples."""
    import h5py

    with h5py.File(src) as h, h5py.File(out, "w") as o:
        names = [x.decode() if isinstance(x, bytes) else x for x in h["host_names"][()]]
        host_id = h["host_id"][()]
        rows = np.sort(np.concatenate([np.flatnonzero(host_id == names.index(x))[:n] for x in hosts]))
        o.attrs.update(dict(h.attrs))
        for key, ds in h.items():
            if ds.shape[:1] == host_id.shape:
                o.create_dataset(key, data=ds[()][rows])
            else:
                h.copy(ds, o, key)
    return len(rows)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """Folders of tiny committed data: ``ref`` (6 samples of each basis host, GaAs from the textbook
    file), ``xpot`` (4 of each test host's 7net-l3i5 spectra), ``unseen`` (CuInS2), and ``bases``,
    ``unseen_bases`` (their committed bases); ``n`` counts the samples per folder."""
    root = tmp_path_factory.mktemp("tiny")
    for sub in ("ref", "xpot", "unseen", "bases", "unseen_bases"):
        (root / sub).mkdir()
    ds = ROOT / "datasets"
    n = {"ref": tiny_h5(ds / "reference" / "chunk-016.h5", TEST_HOSTS + OTHER_HOSTS, PER_HOST, root / "ref" / "a.h5")
         + tiny_h5(ds / "textbook" / "textbook-001.h5", ["GaAs"], PER_HOST, root / "ref" / "b.h5"),
         "xpot": tiny_h5(ds / "cross-potential" / "l3i5-001.h5", TEST_HOSTS, 4, root / "xpot" / "a.h5"),
         "unseen": tiny_h5(ds / "reference" / "chunk-024.h5", [UNSEEN], PER_HOST, root / "unseen" / "a.h5")}
    for host in (*TEST_HOSTS, *OTHER_HOSTS, "GaAs"):
        shutil.copy(ds / "reference" / "bases" / f"{host}.npz", root / "bases")
    shutil.copy(ds / "reference" / "bases" / f"{UNSEEN}.npz", root / "unseen_bases")
    assert n == {"ref": 6 * PER_HOST, "xpot": 8, "unseen": PER_HOST}
    return root, n


def run(name: str, argv: list[str], monkeypatch, capsys, **constants) -> str:
    """``benchmarks/<name>.py`` run with ``argv`` from the repository root (as its docs run it; the
    command line it records is this one), module constants replaced by ``constants``; its stdout."""
    path = BENCHMARKS / f"{name}.py"
    module = load(path, monkeypatch)
    for key, value in constants.items():
        monkeypatch.setattr(module, key, value)
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", [path.name, *map(str, argv)])
    code = module.main(list(map(str, argv)))
    assert not isinstance(code, int) or code == 0  # None, 0, or what the script returns (recommender: its results)
    return capsys.readouterr().out


def check_provenance(prov: dict, name: str):
    assert re.fullmatch(r"[0-9a-f]{7,40}(\+dirty)?", str(prov["commit"])), prov
    assert prov["command"].startswith(f"{name}.py "), prov


def in_range(m: dict, keys=("f1", "f1_ge1pct", "auc", "coverage_1sigma", "f1_all_present")):
    """Scores of one row: finite, errors ≥ 0, shares in [0, 1] (NaN only where a score is undefined)."""
    for key, v in m.items():
        if key.startswith(("mae", "rmse", "distractor", "seconds")):
            assert math.isfinite(v) and v >= 0, (key, v)
        elif key in keys:
            assert math.isnan(v) or 0 <= v <= 1, (key, v)


def table_lines(md: str) -> list[str]:
    """The lines of the Markdown tables in ``md``, separators left out."""
    return [line for line in md.splitlines() if line.startswith("|") and not re.match(r"\|\s*-", line)]


def read_json(path: Path) -> dict:
    assert path.is_file(), path
    return json.loads(path.read_text())


def test_cluster_stats(tmp_path, monkeypatch, capsys):
    out = run("cluster_stats", ["--samples", 1, "--out", tmp_path], monkeypatch, capsys)
    res, md = read_json(tmp_path / "cluster_stats.json"), (tmp_path / "cluster_stats.md").read_text()
    module = sys.modules["benchmark_cluster_stats"]
    assert len(res["rows"]) == len(module.CASES) * len(module.FRACTIONS) == len(out.strip().splitlines())
    for r in res["rows"]:
        assert 0 <= r["in_patched_clusters"] <= r["in_clusters"] <= 1 and r["largest_cluster"] >= 1
        assert r["distinct_keys"] <= r["lookups"] and (r["hit_rate"] is None or 0 <= r["hit_rate"] <= 1)
    assert len(table_lines(md)) == len(res["rows"]) + 1  # the header and a line per row
    check_provenance(res["meta"]["provenance"], "cluster_stats")


def test_data_coverage(tiny, tmp_path, monkeypatch, capsys):
    root, n = tiny
    (tmp_path / "stores").mkdir()
    run("data_coverage", ["--data", root / "ref", "--stores", tmp_path / "stores", "--out", tmp_path / "out"],
        monkeypatch, capsys)
    res = read_json(tmp_path / "out" / "coverage.json")
    assert res["data"]["spectra"] == n["ref"] and res["data"]["files"] == 2
    assert sum(sum(r["files"].values()) for r in res["curated"]) <= n["ref"]
    assert (tmp_path / "out" / "coverage.md").read_text().strip()
    check_provenance(res["provenance"], "data_coverage")


def test_recommender(tmp_path, monkeypatch, capsys):
    out = run("recommender", [], monkeypatch, capsys, RESULTS=tmp_path / "recommender.json")
    res, module = read_json(tmp_path / "recommender.json"), sys.modules["benchmark_recommender"]
    assert [r["host"] for r in res["hosts"]] == list(module.KNOWN_DOPANTS)
    for r in res["hosts"]:
        assert 0 < len(r["top"]) <= module.TOP and 0 <= r["found_primary"] <= r["n_primary"] <= r["n_all"]
        assert all(v["rank"] is None or v["rank"] >= 1 for v in r["known"].values())
        assert re.search(rf"^{re.escape(r['host'])}\s+{r['found_primary']}/{r['n_primary']}", out, re.M)
    assert 0 <= res["coverage_min5"] <= 1
    assert re.fullmatch(r"[0-9a-f]{7,40}(\+dirty)?", str(res["provenance"]["commit"]))  # no options: no command args
    assert res["provenance"]["command"] == "recommender.py"


def test_unexplained(tiny, tmp_path, monkeypatch, capsys):
    root, _ = tiny
    run("unexplained", ["--data", root / "ref", "--bases", root / "bases", "--out", tmp_path], monkeypatch, capsys)
    res = read_json(tmp_path / "unexplained.json")
    assert 0 < res["n"] <= len(TEST_HOSTS) * PER_HOST
    for q in res["quantiles"].values():
        assert 0 <= q["0.5"] <= q["0.9"] <= q["0.95"] <= q["0.99"]
    for case in ("complete", "withheld"):  # a higher threshold fires no more often
        rates = [f[case] for f in res["firing"].values()]
        assert all(0 <= b <= a <= 1 for a, b in zip(rates, rates[1:]))
    assert f"({res['n']} spectra)" in (tmp_path / "unexplained.md").read_text()
    check_provenance(res["provenance"], "unexplained")


def test_auto_candidates(tiny, tmp_path, monkeypatch, capsys):
    root, _ = tiny
    run("auto_candidates", ["--data", root / "ref", "--bases", root / "bases", "--out", tmp_path],
        monkeypatch, capsys)
    res = read_json(tmp_path / "auto_candidates.json")
    assert set(res["rows"]) == {f"{lst} | {m}" for lst in ("given", "auto (whole basis)")
                                for m in ("conditioned", "unmix")}
    for m in res["rows"].values():
        assert 0 < m["n"] <= len(TEST_HOSTS) * PER_HOST and m["n"] == res["rows"]["given | unmix"]["n"]
        assert 0 <= m["recall_top3_ge1pct"] <= m["recall_top3_ceiling"] <= 1 and m["false_present_per_sample"] >= 0
        in_range(m)
    assert (res["rows"]["auto (whole basis) | unmix"]["candidates_per_sample"]
            >= res["rows"]["given | unmix"]["candidates_per_sample"])
    check_provenance(res["provenance"], "auto_candidates")


def test_cross_potential(tiny, tmp_path, monkeypatch, capsys):
    root, n = tiny
    model = ROOT / "src" / "defectnet" / "pretrained" / "conditioned.pt"
    run("cross_potential", ["--data", root / "xpot", "--same", root / "ref", "--bases", root / "bases",
                            "--model", model, "--out", tmp_path], monkeypatch, capsys)
    res = read_json(tmp_path / "cross_potential.json")
    assert res["hosts"] == sorted(TEST_HOSTS)
    methods = ("zeros", "unmix", "unmix, stretch 0.2", "unmix, registered", "unmix, registered, stretch 0.2",
               "conditioned", "conditioned, registered")
    assert set(res["rows"]) == {f"{s} | {m}" for s in ("second potential", "same potential") for m in methods}
    for key, m in res["rows"].items():
        assert 0 < m["n"] <= (n["xpot"] if key.startswith("second") else len(TEST_HOSTS) * PER_HOST)
        in_range(m)
    for shares in res["explained"].values():
        assert all(v <= 1 if "warned" not in k else 0 <= v <= 1 for k, v in shares.items())
    check_provenance(res["provenance"], "cross_potential")


def test_validation_against_itself_is_exact(monkeypatch):
    module = load(BENCHMARKS / "validation.py", monkeypatch)
    from defectnet.model.dataset import load_training_file

    full = load_training_file(ROOT / "datasets" / "validation" / "full-001.h5")
    rows = module.fidelity(full, {"same": full})
    assert len(rows) == len(full) and all(abs(r["S"]["same"] - 1) < 1e-9 for r in rows)
    redrawn = full.subset(np.arange(len(full)))
    redrawn.targets = redrawn.targets.copy()
    redrawn.targets[0] = np.roll(redrawn.targets[0], 1)  # other dopants under sample 0's id
    rows2 = module.fidelity(full, {"twin": redrawn})
    first = next(r for r in rows2 if r["sample_id"] == int(full.sample_id[0]))
    assert first["redrawn"] == ["twin"] and "twin" not in first["S"]
    assert sum("twin" in r["S"] for r in rows2) == len(full) - 1
    ans = module.answers(full, {"same": full}, rows, str(ROOT / "datasets" / "reference" / "bases"), None, 0)
    assert ans["full"] == ans["same"] and ans["full"]["n"] > 0
    assert set(ans["full"]) == {"n", "zeros", "basis route"}  # no model given: no network row
    in_range(ans["full"]["basis route"])


def test_validation_mass_twin(tmp_path, monkeypatch, capsys):
    from defectnet.model.dataset import load_training_file

    full = ROOT / "datasets" / "validation" / "full-001.h5"
    d = load_training_file(full)
    n_si = int(np.sum(np.asarray(d.host_names, str)[d.host_id] == "Si"))
    out = run("validation", [full, "--tiers", "mass", "--hosts", "Si", "--twins", tmp_path / "twins",
                             "--out", tmp_path / "out"], monkeypatch, capsys)
    res = read_json(tmp_path / "out" / "validation.json")
    assert len(res["rows"]) == n_si > 0 and {r["host"] for r in res["rows"]} == {"Si"}
    assert res["summary"]["kept"] == {"mass": n_si}  # a mass-only change has no imaginary modes to reject
    # the mass tier keeps the host's force constants: it misses part of every signature, never all of it
    assert all(-1 < r["S"]["mass"] < 1 for r in res["rows"])
    assert set(res["answers"]) >= {"full", "mass"} and res["answers"]["full"]["n"] == res["answers"]["mass"]["n"]
    assert res["answers"]["full"]["zeros"] == res["answers"]["mass"]["zeros"]  # same samples, same truth
    for label in ("full", "mass"):
        for m in res["answers"][label].values():
            if isinstance(m, dict):
                in_range(m)
    assert "| mass |" in out and (tmp_path / "out" / "validation.png").is_file()
    check_provenance(res["provenance"], "validation")


def test_combine(tiny, tmp_path, monkeypatch, capsys):
    root, n = tiny
    out = tmp_path / "combine.json"
    printed = run("combine", ["--data", root / "unseen", "--basis-dir", root / "unseen_bases", "--out", out],
                  monkeypatch, capsys)
    res = read_json(out)
    assert list(res["groups"]) == ["never-seen hosts"]  # the shipped model never trained on CuInS2
    group = res["groups"]["never-seen hosts"]
    assert group["hosts"] == [UNSEEN] and 0 < group["n_samples"] <= n["unseen"]
    assert set(group["answers"]) == {"model", "unmix", "merged"}
    for m in group["answers"].values():
        in_range(m)
    assert len(re.findall(r"^never-seen hosts\s+(model|unmix|merged)\s", printed, re.M)) == 3
    check_provenance(res["provenance"], "combine")


def test_error_calibration(tiny, tmp_path, monkeypatch, capsys):
    root, _ = tiny
    run("error_calibration", ["--data", root / "ref", "--bases", root / "bases", "--hosts", TEST_HOSTS[0],
                              "--per-host", 2, "--noise", 0.05, "--out", tmp_path], monkeypatch, capsys)
    res, module = read_json(tmp_path / "error_calibration.json"), sys.modules["benchmark_error_calibration"]
    assert res["hosts"] == [TEST_HOSTS[0]] and set(res["rows"]) == {"basis, noise 0.05", "fresh, noise 0.05"}
    for entry in res["rows"].values():
        for reading in module.READINGS:
            c = entry[reading]
            assert c["n"] > 0 and 0 <= c["coverage_1sigma"] <= c["coverage_2sigma"] <= 1 and c["mae_at_pct"] >= 0
        assert entry["chi2_median"] > 0 and entry["inflation_median"] >= 1
    check_provenance(res["provenance"], "error_calibration")


def test_consistency(tiny, tmp_path, monkeypatch, capsys):
    root, n = tiny
    out = run("consistency", ["--data", root / "ref"], monkeypatch, capsys)
    assert out.startswith(f"{n['ref']} spectra of 6 hosts from 2 files")
    assert all(f"## {s}" in out for s in ("doped vs pristine", "same host", "other hosts, GaAs files"))
    out = run("consistency", ["--data", root / "ref", "--swaps", "--moved-pairs", 4, "--noise-pairs", 4,
                              "--out", tmp_path], monkeypatch, capsys)
    res = read_json(tmp_path / "consistency.json")
    assert res["stretched"]["moved_pairs"] == 4 and res["stretched"]["pairs"] == n["ref"]
    swapped = res["swapped"]
    assert swapped["no basis: total PDoS vs the q-mesh PDoS"]["pairs"] == n["ref"]
    assert all(r["pairs"] == 4 for k, r in swapped.items() if not k.startswith("no basis:"))
    assert all(r["right_way_flagged"] <= r["pairs"] for r in swapped.values())
    assert (tmp_path / "consistency.md").read_text().count("\n- **") == len(swapped)
    check_provenance(res["provenance"], "consistency")


def test_limits(tmp_path, monkeypatch, capsys):
    basis = "examples/gaas-si-zn/basis.npz"
    stem = tmp_path / "limits"
    run("limits", ["--bases", basis, "--resolutions", "tosca", "--noise", 0.1, "--measurements", 5, "--points", 3,
                   "--no-heldout", "--no-predict", "--out", stem], monkeypatch, capsys)
    res = read_json(stem.with_suffix(".json"))
    from defectnet.unmix import SignatureBasis

    elements = list(SignatureBasis.load(ROOT / basis).elements)
    run_ = res["planner"][basis]["tosca|0.1"]
    assert list(res["planner"]) == [basis] and [lim["element"] for lim in run_["limits"]] == elements
    assert all(lim["limit"] is None or 0 < lim["limit"] <= 0.25 for lim in run_["limits"])
    assert not res["heldout"] and not res["predict"]
    md = stem.with_suffix(".md").read_text()
    assert all(f"| GaAs (example) | {el} |" in md for el in elements)
    stem.with_suffix(".md").unlink()
    run("limits", ["--md-only", "--out", stem], monkeypatch, capsys)
    assert stem.with_suffix(".md").read_text() == md
    check_provenance(res["provenance"], "limits")


def test_unmix(tiny, tmp_path, monkeypatch, capsys):
    root, n = tiny
    bases = shutil.copytree(root / "bases", tmp_path / "bases")
    run("unmix", ["--data", root / "ref", "--hosts", "all", "--basis-dir", bases, "--candidates", "pool",
                  "--out", tmp_path / "unmix.json"], monkeypatch, capsys)
    res = read_json(tmp_path / "unmix.json")
    hosts = sorted((*TEST_HOSTS, *OTHER_HOSTS, "GaAs"))
    assert sorted({r["host"] for r in res["rows"]} - {"all"}) == hosts
    assert sorted(p.name for p in bases.iterdir()) == [f"{h}.npz" for h in hosts]  # nothing simulated
    methods = {r["method"] for r in res["rows"]}
    assert {"shipped DefectNet", "every concentration 0", "unmix (auto, gpdos)"} <= methods
    for r in res["rows"]:
        assert r["n_samples"] == (n["ref"] if r["host"] == "all" else PER_HOST)
        in_range(r)
    assert len(res["rows"]) == (len(hosts) + 1) * len(methods)
    check_provenance(res["provenance"], "unmix")


def test_conditioned(tiny, tmp_path, monkeypatch, capsys):
    root, _ = tiny
    argv = ["--data", root / "ref", "--bases", root / "bases", "--test-hosts", ",".join(TEST_HOSTS),
            "--val-hosts", 1, "--epochs", 1, "--max-minutes", 0.2, "--width", 16, "--layers", 1, "--threads", 1,
            "--out", tmp_path, "--model-out", tmp_path / "model.pt"]
    run("conditioned", argv, monkeypatch, capsys)
    res = read_json(tmp_path / "conditioned.json")
    split = res["split"]
    assert split["test"] == sorted(TEST_HOSTS) and len(split["val"]) == 1 and len(split["train"]) == 3
    assert split["n"] == {"train": 3 * PER_HOST, "val": PER_HOST, "test": len(TEST_HOSTS) * PER_HOST}
    assert set(res["rows"]) == {"conditioned", "unmix", "unmix, stretch 0.2"} and res["history"]["epochs_run"] == 1
    for m in res["rows"].values():
        in_range(m)
    assert set(res["per_host_mae_at_pct"]) == set(TEST_HOSTS)
    n_scored = split["n"]["test"] + sum(v for k, v in split.items() if k.startswith("n_") and k.endswith("_test"))
    assert set(res["by_total"]) == set(res["rows"])  # every method, binned by the true total
    assert sum(b["n"] for b in res["by_total"]["conditioned"].values()) == n_scored
    check_provenance(res["provenance"], "conditioned")
    run("conditioned", [*argv, "--reuse-model", "--out", tmp_path / "again"], monkeypatch, capsys)
    again = read_json(tmp_path / "again" / "conditioned.json")
    assert again["split"] == split and again["rows"]["conditioned"]["mae_at_pct"] == pytest.approx(
        res["rows"]["conditioned"]["mae_at_pct"])


def test_conditioned_ensemble_scored_on_hosts_added_since(tiny, tmp_path, monkeypatch, capsys):
    from defectnet.model.checkpoint import load_model
    from defectnet.model.ensemble import Ensemble

    root, _ = tiny
    common = ["--test-hosts", ",".join(TEST_HOSTS), "--val-hosts", 1, "--epochs", 1, "--max-minutes", 0.2,
              "--width", 16, "--layers", 1, "--threads", 1]
    for seed in (0, 1):  # members trained before CuInS2 had a basis
        run("conditioned", ["--data", root / "ref", "--bases", root / "bases", *common, "--seed", seed,
                            "--out", tmp_path / f"m{seed}", "--model-out", tmp_path / f"m{seed}.pt"], monkeypatch, capsys)
    both = tmp_path / "bases"
    shutil.copytree(root / "bases", both)
    shutil.copy(root / "unseen_bases" / f"{UNSEEN}.npz", both)
    run("conditioned", ["--data", f"{root / 'ref'},{root / 'unseen'}", "--bases", both, *common,
                        "--ensemble", f"{tmp_path / 'm0.pt'},{tmp_path / 'm1.pt'}", "--fresh-from",
                        root / "unseen" / "a.h5", "--model-out", tmp_path / "ens.pt", "--out", tmp_path / "ens"],
        monkeypatch, capsys)
    res = read_json(tmp_path / "ens" / "conditioned.json")
    split = res["split"]
    assert split["test"] == sorted(TEST_HOSTS) and split["val"] == [] and UNSEEN not in split["train"]
    assert split["fresh_test"] == [UNSEEN] and split["n_fresh_test"] == PER_HOST
    assert {"conditioned", "unmix"} <= set(res["fresh_rows"])
    for m in res["fresh_rows"].values():
        in_range(m)
    assert f"Hosts of {root / 'unseen' / 'a.h5'}" in (tmp_path / "ens" / "conditioned.md").read_text()
    ens = load_model(tmp_path / "ens.pt", arch="conditioned")
    assert isinstance(ens, Ensemble) and ens.config.ensemble == 2
    assert ens.meta["metrics"]["test_ood"]["mae_at_pct"] == pytest.approx(res["rows"]["conditioned"]["mae_at_pct"])


def test_learning_curve(tiny, tmp_path, monkeypatch, capsys):
    root, _ = tiny
    run("learning_curve", ["--data", root / "ref", "--bases", root / "bases", "--test-hosts", ",".join(TEST_HOSTS),
                           "--val-hosts", 1, "--fractions", "0.5,1", "--epochs", 1, "--max-minutes", 0.2,
                           "--out", tmp_path], monkeypatch, capsys)
    res = read_json(tmp_path / "learning_curve.json")
    assert res["test"] == sorted(TEST_HOSTS) and res["n_test"] == len(TEST_HOSTS) * PER_HOST
    assert [(r["arch"], r["n_hosts"]) for r in res["runs"]] == [("defectnet", 2), ("conditioned", 2),
                                                                ("defectnet", 3), ("conditioned", 3)]
    for r in res["runs"]:
        assert r["n_spectra"] == r["n_hosts"] * PER_HOST and r["epochs_run"] == 1
        in_range(r)
    in_range(res["unmix"])
    assert (tmp_path / "learning_curve.png").stat().st_size > 0 and (tmp_path / "learning_curve.md").is_file()
    check_provenance(res["provenance"], "learning_curve")


def test_ship_model(tmp_path, monkeypatch, capsys):
    from defectnet.model.checkpoint import PRETRAINED_FILE, load_model, pretrained_path

    out = run("ship_model", [pretrained_path()], monkeypatch, capsys, DEST=tmp_path)
    assert f"shipped {tmp_path / PRETRAINED_FILE}" in out
    load_model(tmp_path / PRETRAINED_FILE)
    card = (tmp_path / "MODEL_CARD.md").read_text()
    assert "**Bundled example**" in card and str(ROOT) not in card


# --- pair_coupling: its bookkeeping without a force call, and one pair with EMT -------------------

def test_pair_coupling_places_the_pair_on_the_chosen_sublattice(monkeypatch):
    from ase.build import bulk

    module = load(BENCHMARKS / "pair_coupling.py", monkeypatch)
    assert module.parse_case("GaAs:Si,Zn:1@As") == ("GaAs", ["Si", "Zn"], 1, "As")
    assert module.parse_case("SrO:Mg,Mg:0") == ("SrO", ["Mg", "Mg"], 0, None)
    cell = bulk("GaAs", "zincblende", a=5.653, cubic=True).repeat(2)  # 64 atoms, Ga first
    for site, on, shell, sep in ((None, "Ga", 0, 5.653 / 2**0.5), ("Ga", "Ga", 1, 5.653), ("As", "As", 0, 5.653 / 2**0.5)):
        doped, idx, separation = module.place_pair(cell, ["Si", "Zn"], shell, site)
        assert [cell[i].symbol for i in idx] == [on, on] and sorted(doped[i].symbol for i in idx) == ["Si", "Zn"]
        assert separation == pytest.approx(sep, abs=0.01)
        assert doped.get_distance(*idx, mic=True) == pytest.approx(separation, abs=0.01)
        assert doped.get_chemical_symbols().count(on) == 30 and doped[idx[0]].mass != cell[idx[0]].mass
    _, _, bond = module.place_pair(bulk("Si", "diamond", a=5.431, cubic=True).repeat(2), ["B", "B"], 0)
    assert bond == pytest.approx(5.431 * 3**0.5 / 4, abs=0.01)  # one sublattice = every Si: the bond


def test_pair_coupling_fidelity_is_the_share_of_the_signature(monkeypatch):
    from defectnet.grid import DEFAULT_GRID
    from defectnet.spectrum import Spectrum

    module = load(BENCHMARKS / "pair_coupling.py", monkeypatch)
    modes = lambda f, w=None: Spectrum.from_modes(f, DEFAULT_GRID, weights=w, fwhm_mev=1.0)  # noqa: E731
    pristine, full = modes([10.0, 20.0, 30.0]), modes([10.0, 20.0, 40.0])
    half = modes([10.0, 20.0, 30.0, 40.0], [1, 1, 0.5, 0.5])  # halfway from pristine to full
    s = module.fidelities({"full": full, "same": modes([10.0, 20.0, 40.0]), "mass": pristine, "half": half}, pristine)
    assert s == pytest.approx({"same": 1.0, "mass": 0.0, "half": 0.5})
    assert module.fidelities({"patch": half}, pristine) == {}


def test_pair_coupling_saves_each_case_and_resumes(tmp_path, monkeypatch, capsys):
    module = load(BENCHMARKS / "pair_coupling.py", monkeypatch)
    calls = []

    def fake_run_case(case, potential, tiers, cell_atoms, host_fc):
        calls.append((case, cell_atoms, tuple(tiers)) + (("direct",) if host_fc == "direct" else ()))
        row = {"key": module.case_key(case, cell_atoms, tiers, host_fc), "host_fc": host_fc, "case": case, "cell_atoms": cell_atoms or 64,
               "separation_ang": 2.35, "tiers": list(tiers)}
        for k, t in enumerate(tiers):
            row[t] = {"lowest_mev": [-0.01, 0.0, 0.01, 5.0 + k], "n_imaginary": 0, "seconds": 10.0 * (k + 1),
                      "force_calls": 7 * k, **({} if t == "full" else {"S": 0.5 + 0.1 * k})}
        return row

    out = tmp_path / "pair.json"
    old = {"case": "Si:B,B:0", "cell_atoms": 64, "separation_ang": 2.35,  # a row from before --tiers
           "patch": {"lowest_mev": [0.0, 0.0, 0.0, 6.0], "n_imaginary": 0, "seconds": 1.0, "force_calls": 1},
           "full": {"lowest_mev": [0.0, 0.0, 0.0, -7.0], "n_imaginary": 1, "seconds": 2.0, "force_calls": 2}}
    out.write_text(json.dumps({"cases": [old], "provenance": {"commit": "abc1234", "command": "by hand"}}))
    printed = run("pair_coupling", ["--case", "Si:B,B:0", "--case", "Si:C,C:0", "--out", out], monkeypatch, capsys,
                  run_case=fake_run_case)
    assert calls == [("Si:C,C:0", None, ("patch", "full"))]
    assert "| Si:B,B:0 | 2.35 Å | 6.00 | -7.00 | physical instability the patch tier misses |" in printed
    argv = ["--case", "Si:B,B:0", "--cell-atoms", 216, "--tiers", "patch,cluster,full", "--out", out]
    run("pair_coupling", argv, monkeypatch, capsys, run_case=fake_run_case)
    run("pair_coupling", argv, monkeypatch, capsys, run_case=fake_run_case)  # finished: skipped
    assert calls[1:] == [("Si:B,B:0", 216, ("patch", "cluster", "full"))]
    run("pair_coupling", argv + ["--host-fc", "direct"], monkeypatch, capsys, run_case=fake_run_case)  # another case
    assert calls[2:] == [("Si:B,B:0", 216, ("patch", "cluster", "full"), "direct")]
    res = read_json(out)
    assert [(r["case"], r["cell_atoms"]) for r in res["cases"]] == [("Si:B,B:0", 64), ("Si:C,C:0", 64), ("Si:B,B:0", 216),
                                                                   ("Si:B,B:0", 216)]
    check_provenance(res["provenance"], "pair_coupling")
    rows = table_lines(out.with_suffix(".md").read_text())
    assert rows[0].split(" | ")[3:5] == ["S patch", "S cluster"] and len(rows) == 5
    assert rows[3] == ("| Si:B,B:0 | 216 | 2.35 | 0.500 | 0.600 | 5.00 | 6.00 | 7.00 | 10 / 0 | 20 / 7 | 30 / 14 |")
    assert rows[4].startswith("| Si:B,B:0 | 216 (host fc direct) | 2.35 | 0.500 |")


def test_pair_coupling_with_emt(monkeypatch):
    """A nearest-neighbour Ni pair in Cu (EMT; cutoff 2.6 Å, the first shell) in a 32-atom cell: the
    cluster tier patches it together, the patch tier does not, and both are scored against full."""
    from ase.build import bulk

    from defectnet.phonons.host import HostSettings, compute_pristine

    module = load(BENCHMARKS / "pair_coupling.py", monkeypatch)
    monkeypatch.setattr(module, "CUTOFF_ANG", 2.6)
    host = compute_pristine(bulk("Cu", "fcc", a=3.6), HostSettings(potential="emt", fc_min_width_ang=6.5,
                                                                      mesh_length_ang=15.0))
    r = module.run_case("Cu:Ni,Ni:0", "emt", ("patch", "cluster", "full"), 32, host=host)
    assert r["key"] == "Cu:Ni,Ni:0|32|patch,cluster,full" and r["cell_atoms"] == 32
    assert r["separation_ang"] == pytest.approx(2.55, abs=0.03)
    assert r["cluster"]["n_clusters"] == 1 and not r["cluster"]["fallbacks"] and r["cluster"]["force_calls"] > 0
    assert "S" not in r["full"] and all(-1 < r[t]["S"] < 1 for t in ("patch", "cluster"))
    assert r["cluster"]["S"] != r["patch"]["S"] and len(r["full"]["lowest_mev"]) == 8
    direct = module.run_case("Cu:Ni,Ni:0", "emt", ("patch", "full"), 32, host=host, host_fc="direct")
    assert direct["key"].endswith("|direct") and direct["host_fc_force_calls"] > 0
    assert direct["full"]["lowest_mev"] == r["full"]["lowest_mev"]  # full does not use the pristine fc
