"""How far does a dopant's force-constant change reach? Fidelity S against cutoff, in a 216-atom cell.

The tier benchmark measures fidelity in the host's 64-atom force-constant cell, where no
cutoff can exceed half the cell (5.7 Å in GaAs). Here one dopant sits in a 3×3×3
conventional cell (216 atoms, half-width ≈ 8.6 Å). The reference is that cell's own
force constants (relaxed with the site symmetry kept, phonopy's symmetric displacements:
within S = 0.997 of relaxing and displacing without symmetry, benchmarks/results/tier-gap).
Against it:

* ``local R``: the reference's columns of every atom within R Å of the dopant put into
  the pristine 216-atom force constants (the `local` tier, and what a patch computed in a
  cell this large would give), for R from the first shell to 8 Å;
* ``patch``: the default patch tier (computed once in the 64-atom cell, 4.6 Å);
* ``patch_wide``: patches computed once in a ≥ 16 Å cell with an 8 Å cluster
  (``TierSettings(cutoff_ang=8, patch_cell_width_ang=16)``); with ``--cube 4`` the reference
  is a 512-atom cell, so the patch is tested outside the cell it was computed in;
* ``mass``.

S = 1 − ‖Δ_tier − Δ_ref‖₁ / ‖Δ_ref‖₁ with Δ = g_doped − g_pristine (Γ, 1 meV FWHM).

    python benchmarks/patch_range.py                     # Si:B, GaAs:C, GaAs:Zn
    python benchmarks/patch_range.py --cases GaAs:Si@Ga
    python benchmarks/patch_range.py --cube 4 --cases GaAs:Zn --out benchmarks/results/patch_range/patch_range-512.json

Writes ``benchmarks/results/patch_range/patch_range.json`` (resumable per case) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from ase.build import bulk

from defectnet.doping import DopantSpec, min_width_ang, substitute
from defectnet.grid import DEFAULT_GRID
from defectnet.phonons.dos import gamma_spectrum
from defectnet.phonons.forceconstants import (
    DopedSystem,
    TierSettings,
    insert_columns,
    neighbours_within,
    restore_sum_rules,
)
from defectnet.phonons.host import HostSettings, compute_pristine
from defectnet.phonons.potentials import get_calculator
from defectnet.phonons.relax import relax
from defectnet.phonons.tiers import TIERS

HOSTS = {"Si": lambda: bulk("Si", "diamond", a=5.431), "GaAs": lambda: bulk("GaAs", "zincblende", a=5.653),
         "ZnS": lambda: bulk("ZnS", "zincblende", a=5.409)}
CUTOFFS = (2.6, 4.0, 4.6, 5.0, 6.0, 7.0, 8.0)
FWHM_MEV = 1.0
#: primitive fcc -> 3×3×3 conventional cubic cell (216 atoms for a two-atom basis)
CUBE = np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]])
#: the wide patch: computed once in a 216-atom-class cell (≥ 16 Å wide), 8 Å cluster
WIDE = TierSettings(cutoff_ang=8.0, patch_cell_width_ang=16.0)


def symmetric_fc(atoms, calc):
    """Force constants (N, N, 3, 3) of a whole cell from phonopy's symmetry-reduced ± displacements."""
    from defectnet.phonons.patches import cheapest_columns

    cols, calls = cheapest_columns(atoms, np.arange(len(atoms)), calc, TierSettings(), progress=False)
    return cols.transpose(1, 0, 2, 3), calls  # every atom displaced: phonopy's route is the cheaper one


def run_case(case: str, calc, potential: str, cube: int = 3) -> dict:
    host_name, spec = case.split(":")
    element, site = spec.split("@") if "@" in spec else (spec, None)
    t0 = time.perf_counter()
    host = compute_pristine(HOSTS[host_name](), HostSettings(potential=potential), fwhm_mev=FWHM_MEV)
    site = site or host.atoms.get_chemical_symbols()[0]
    from ase.build import make_supercell

    cube = make_supercell(host.atoms, cube * CUBE)
    fc0, n0 = symmetric_fc(cube, calc)  # the pristine cube computed directly, not interpolated
    restore_sum_rules(fc0)
    doped, sub = substitute(cube, [DopantSpec(element, site, 1 / len(cube))], np.random.default_rng(0))
    d = int(sub.indices[f"{element}@{site}"][0])
    relaxed = relax(doped, calc, fmax=0.01, steps=200, cell=False, symmetry=True).atoms
    fc_ref, n_ref = symmetric_fc(relaxed, calc)
    restore_sum_rules(fc_ref)
    g0, _ = gamma_spectrum(fc0, cube, DEFAULT_GRID, fwhm_mev=FWHM_MEV)
    g_ref, _ = gamma_spectrum(fc_ref, relaxed, DEFAULT_GRID, fwhm_mev=FWHM_MEV)

    def score(fc, atoms):
        g, _ = gamma_spectrum(fc, atoms, DEFAULT_GRID, fwhm_mev=FWHM_MEV)
        return g.signature_fidelity(g_ref, g0), float(g.wasserstein1_mev(g_ref))

    row = {"host": host_name, "dopant": element, "site": site, "n_atoms": len(cube),
           "half_width_ang": 0.5 * min_width_ang(cube.cell.array),
           "w1_ref_vs_pristine_mev": float(g_ref.wasserstein1_mev(g0)), "force_calls_ref": n_ref, "local": {}}
    for r in CUTOFFS:
        idx = neighbours_within(relaxed, [d], r)
        fc = fc0.copy()
        insert_columns(fc, idx, fc_ref[:, idx].transpose(1, 0, 2, 3))
        restore_sum_rules(fc)
        s, w1 = score(fc, relaxed)
        row["local"][f"{r:g}"] = {"S": s, "w1_mev": w1, "n_atoms": int(len(idx))}
    system = DopedSystem(doped, np.array([d]), fc0, host, calc)
    for name, tier, settings in (("patch", "patch", TierSettings()), ("patch_wide", "patch", WIDE),
                                 ("mass", "mass", TierSettings())):
        t1 = time.perf_counter()
        res = TIERS[tier](system, settings)
        s, w1 = score(res.fc, res.atoms)
        row[name] = {"S": s, "w1_mev": w1, "force_calls": res.info.get("force_calls", 0),
                     "seconds": time.perf_counter() - t1}
    row["seconds"] = time.perf_counter() - t0
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="Si:B,GaAs:C,GaAs:Zn", help="host:element[@site], comma-separated")
    ap.add_argument("--potential", default="sevennet")
    ap.add_argument("--out", default="benchmarks/results/patch_range/patch_range.json")
    ap.add_argument("--cube", type=int, default=3,
                    help="reference cell: N×N×N conventional cells (3: 216 atoms; 4: 512, where the wide "
                         "patch, computed at 216, is tested outside its own cell)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(out.read_text()) if out.exists() else {"potential": args.potential, "cases": {}}
    if results["potential"] != args.potential:
        raise SystemExit(f"{out} holds results of {results['potential']}; use another --out")
    calc = get_calculator(args.potential)
    for case in args.cases.split(","):
        if case not in results["cases"]:
            results["cases"][case] = run_case(case, calc, args.potential, args.cube)
            out.write_text(json.dumps(results, indent=1))
        r = results["cases"][case]
        loc = "  ".join(f"{k} Å ({v['n_atoms']}): {v['S']:.2f}" for k, v in r["local"].items())
        wide = f"patch 8 Å/16 Å cell {r['patch_wide']['S']:.2f}  " if "patch_wide" in r else ""
        print(f"{case:10s} {r['n_atoms']} atoms  W1(ref,pristine) {r['w1_ref_vs_pristine_mev']:.2f} meV  "
              f"patch {r['patch']['S']:.2f}  {wide}"
              f"mass {r['mass']['S']:.2f}  local {loc}", flush=True)


if __name__ == "__main__":
    main()
