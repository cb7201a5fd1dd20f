"""Two dopants close together: is the patch tier's instability the superposition or the physics?

In the host's force-constant cell (64 atoms for rocksalt/zincblende) two dopants are placed
on one sublattice at a chosen neighbour shell, and the Γ frequencies of the patch tier (two
single-dopant patches superposed) are compared with the `full` tier (the doped cell relaxed,
every atom displaced). An imaginary mode in both is physical: the symmetric substituted
structure is unstable. In the patch tier only, it is a superposition artefact.

    python benchmarks/pair_coupling.py                       # SrO: Mg-Mg (1st shell), Ca-Ca (2nd, Ca-O-Ca)
    python benchmarks/pair_coupling.py --case GaAs:Zn,Zn:0

Writes ``benchmarks/results/pair_coupling/pair_coupling.json`` (the cases and their provenance).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from defectnet.elements import mass_amu
from defectnet.hosts import load_host
from defectnet.phonons.dos import gamma_modes
from defectnet.phonons.forceconstants import DopedSystem, TierSettings
from defectnet.phonons.host import HostSettings, compute_pristine, to_ase_atoms
from defectnet.phonons.potentials import get_calculator
from defectnet.phonons.tiers import get_tier
from defectnet.provenance import provenance

CASES = ("SrO:Mg,Mg:0", "SrO:Ca,Ca:1")


def lowest_mode_mev(freqs) -> float:
    """The lowest mode once the three acoustic ones (the three closest to 0) are set aside, meV."""
    f = np.asarray(freqs, float)
    return float(np.delete(f, np.argsort(np.abs(f))[:3]).min())


def run_case(case: str, potential: str) -> dict:
    name, pair, shell = case.split(":")
    pair, shell = pair.split(","), int(shell)
    calc = get_calculator(potential)
    host = compute_pristine(load_host(name).to_atoms(), HostSettings(potential=potential))
    cell, fc0 = to_ase_atoms(host.phonon.supercell), np.array(host.phonon.force_constants)
    symbols = np.array(cell.get_chemical_symbols())
    site = np.flatnonzero(symbols == symbols[0])
    dist = cell.get_distances(site[0], site, mic=True)
    shells = np.unique(np.round(dist[dist > 0.1], 2))
    partner = site[np.flatnonzero(np.isclose(np.round(dist, 2), shells[shell]))[0]]
    doped = cell.copy()
    new = list(symbols)
    new[site[0]], new[partner] = pair
    doped.set_chemical_symbols(new)
    doped.set_masses([mass_amu(s) for s in new])
    out = {"case": case, "cell_atoms": len(cell), "separation_ang": float(shells[shell])}
    for tier in ("patch", "full"):
        t0 = time.perf_counter()
        system = DopedSystem(doped, np.array(sorted([site[0], partner])), fc0, host, calc, False)
        r = get_tier(tier)(system, TierSettings(cutoff_ang=4.6))
        f = np.sort(gamma_modes(r.fc, r.atoms.get_masses())[0])
        out[tier] = {"lowest_mev": [round(float(x), 2) for x in f[:8]], "n_imaginary": int((f < -1).sum()),
                     "seconds": round(time.perf_counter() - t0, 1), "force_calls": r.info.get("force_calls")}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", action="append", help="HOST:El1,El2:SHELL (shell 0 = nearest on the sublattice)")
    ap.add_argument("--potential", default="sevennet")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "pair_coupling" / "pair_coupling.json")
    ap.add_argument("--report", action="store_true", help="print the table of an existing --out JSON")
    args = ap.parse_args(argv)
    results = (json.loads(args.out.read_text())["cases"] if args.report
               else [run_case(c, args.potential) for c in (args.case or CASES)])
    print("| case | separation | lowest non-acoustic mode, patch (meV) | full (meV) | verdict |\n|---|---|---|---|---|")
    for r in results:
        p, f = lowest_mode_mev(r["patch"]["lowest_mev"]), lowest_mode_mev(r["full"]["lowest_mev"])
        verdict = ("physical instability" if f < -1 else "superposition artefact" if p < -1 else "stable")
        if f < -1 and p >= -1:
            verdict += " the patch tier misses"
        print(f"| {r['case']} | {r['separation_ang']:.2f} Å | {p:.2f} | {f:.2f} | {verdict} |")
    if not args.report:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"cases": results, "provenance": provenance()}, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
