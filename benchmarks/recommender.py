"""Known-dopant check of the dopant recommender.

For a dozen well-studied hosts, built from experimental lattice constants, report which
of the dopants used in practice rank in the recommender's top 10, and at what rank.
Prints a table and writes ``benchmarks/results/recommender/recommender.json``.

Run: ``python benchmarks/recommender.py``
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import pymatgen.core
from ase.build import bulk
from ase.spacegroup import crystal

import defectnet
from defectnet.provenance import provenance
from defectnet.recommend import DopantRecommender, coverage

TOP = 10
RESULTS = Path(__file__).resolve().parent / "results" / "recommender" / "recommender.json"

#: Dopants used in practice: (primary, also used). Sources: standard semiconductor
#: references (Sze & Ng, *Physics of Semiconductor Devices*; Madelung, *Semiconductors:
#: Data Handbook*) and the review literature of each material.
KNOWN_DOPANTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Si": (("B", "P", "As", "Ge", "C", "Sn", "Al", "Ga"), ()),
    "GaAs": (("Si", "Zn", "Be", "C", "Al", "In"), ("Mg", "Se", "Te")),
    "GaN": (("Mg", "Si", "O"), ("In", "Al", "Zn", "C")),
    "ZnO": (("Al", "Ga"), ("In", "Mg", "N", "Li")),
    "AlN": (("Si", "Mg", "O", "C"), ()),
    "SiC": (("N", "B", "Al", "P"), ()),
    "CdTe": (("Zn", "Cl", "Cu", "As"), ()),
    "ZnS": (("Cu", "Mn", "Al"), ()),
    "AgGaS2": (("Si", "Ge", "Sn"), ()),
    "CuInSe2": (("Ga", "Ag", "Na"), ()),
    "MgB2": (("Al", "C"), ()),
    "Ge": (("Si", "Sn", "B", "P"), ()),
}


def _chalcopyrite(elements, a, c, x):
    # I-42d (No. 122): A 4a (0,0,0), B 4b (0,0,1/2), anion 8d (x,1/4,1/8).
    return crystal(elements, basis=[(0, 0, 0), (0, 0, 0.5), (x, 0.25, 0.125)],
                   spacegroup=122, cellpar=[a, a, c, 90, 90, 90])


def reference_hosts() -> dict:
    """The benchmark hosts as ase.Atoms, experimental lattice constants in Å."""
    return {
        "Si": bulk("Si", "diamond", a=5.431),
        "GaAs": bulk("GaAs", "zincblende", a=5.653),
        "GaN": bulk("GaN", "wurtzite", a=3.189, c=5.185),
        "ZnO": bulk("ZnO", "wurtzite", a=3.25, c=5.207),
        "AlN": bulk("AlN", "wurtzite", a=3.112, c=4.982),
        "SiC": bulk("SiC", "zincblende", a=4.36),
        "CdTe": bulk("CdTe", "zincblende", a=6.48),
        "ZnS": bulk("ZnS", "zincblende", a=5.41),
        "AgGaS2": _chalcopyrite(["Ag", "Ga", "S"], 5.757, 10.311, 0.279),
        "CuInSe2": _chalcopyrite(["Cu", "In", "Se"], 5.78, 11.62, 0.224),
        # P6/mmm (No. 191): Mg 1a (0,0,0), B 2d (1/3,2/3,1/2).
        "MgB2": crystal(["Mg", "B"], basis=[(0, 0, 0), (1 / 3, 2 / 3, 0.5)], spacegroup=191,
                        cellpar=[3.086, 3.086, 3.524, 90, 90, 120]),
        "Ge": bulk("Ge", "diamond", a=5.658),
    }


def dopant_ranks(records) -> dict[str, tuple[int, str]]:
    """1-based rank and site of each dopant element's best record."""
    ranks: dict[str, tuple[int, str]] = {}
    for i, r in enumerate(records, start=1):
        ranks.setdefault(r.dopant, (i, r.site))
    return ranks


def main(argv=None) -> dict:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)  # no options: --help only
    recommender = DopantRecommender(n_max=TOP)
    t0 = time.perf_counter()
    recommender.fit()
    fit_s = time.perf_counter() - t0
    hosts = reference_hosts()

    rows = []
    for name, atoms in hosts.items():
        recommender.recommend(atoms)  # warm the per-species caches: time the steady state
        t0 = time.perf_counter()
        top = recommender.recommend(atoms)
        seconds = time.perf_counter() - t0
        ranks = dopant_ranks(recommender.recommend(atoms, n=1000))
        primary, secondary = KNOWN_DOPANTS[name]
        known = {}
        for el in primary + secondary:
            rank, site = ranks.get(el, (None, None))
            known[el] = {"rank": rank, "site": site, "primary": el in primary}
        rows.append({
            "host": name,
            "formula": atoms.get_chemical_formula(mode="metal", empirical=True),
            "top": [r.to_dict() for r in top],
            "known": known,
            "found_primary": sum(1 for el in primary if (known[el]["rank"] or 10**9) <= TOP),
            "n_primary": len(primary),
            "found_all": sum(1 for v in known.values() if (v["rank"] or 10**9) <= TOP),
            "n_all": len(known),
            "recommend_seconds": seconds,
        })

    cov = coverage(hosts, min_candidates=5, recommender=recommender)
    result = {
        "description": f"known dopants in the recommender's top {TOP} (rank = position of "
                       "the element's best (dopant, site) record; None = not proposed)",
        "recommender": {k: (list(v) if isinstance(v, tuple) else v)
                        for k, v in recommender.get_params().items() if k != "vocabulary"},
        "vocabulary": "defectnet.elements.DOPANTS",
        "fit_seconds": fit_s,
        "coverage_min5": cov,
        "hosts": rows,
        "versions": {"defectnet": defectnet.__version__, "pymatgen": pymatgen.core.__version__,
                     "python": platform.python_version()},
        "provenance": provenance(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")

    print(f"{'host':8s} {'primary':>8s} {'all':>6s}  "
          f"ranks (*also used; (n) = beyond top {TOP})              top {TOP}")
    for row in rows:
        def fmt(el, v):
            star = "" if v["primary"] else "*"
            if v["rank"] is None:
                return f"{star}{el}:none"
            return f"{star}{el}:{v['rank']}" if v["rank"] <= TOP else f"{star}{el}:({v['rank']})"
        ranks = " ".join(fmt(el, v) for el, v in row["known"].items())
        top = " ".join(f"{r['dopant']}@{r['site']}" for r in row["top"])
        print(f"{row['host']:8s} {row['found_primary']:>3d}/{row['n_primary']:<4d} "
              f"{row['found_all']:>2d}/{row['n_all']:<3d} {ranks:56s} {top}")
    n_p = sum(r["found_primary"] for r in rows)
    t_p = sum(r["n_primary"] for r in rows)
    n_a = sum(r["found_all"] for r in rows)
    t_a = sum(r["n_all"] for r in rows)
    slowest = max(r["recommend_seconds"] for r in rows)
    print(f"total: primary {n_p}/{t_p}, all {n_a}/{t_a}; coverage (>= 5 distinct dopants) "
          f"{cov:.2f}; fit {fit_s:.1f} s; slowest recommend {slowest * 1e3:.0f} ms")
    print(f"wrote {RESULTS}")
    return result


if __name__ == "__main__":
    main()
