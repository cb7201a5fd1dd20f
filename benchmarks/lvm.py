"""Local vibrational modes (LVMs) of substitutional dopants against infrared absorption, per potential.

A light dopant vibrates above the host's bands in a mode localised on itself: its
frequency is the sharpest test of the dopant's force constants an MLIP gives, and it is
where the defect signature sits. For each potential and each dopant with a published IR
frequency, one dopant (isotope mass as measured) is placed in the host and its LVM is the
Γ mode with the largest weight on the dopant atom:

- ``mass``  : pristine force constants, dopant mass only (no chemistry: the floor);
- ``patch`` : the data's tier: the dopant's force-constant patch (computed in the host's
  force-constant cell, 64 atoms for Si/GaAs) transplanted into the data's 433–500-atom cell;
- ``full``  : the doped force-constant cell relaxed and every symmetry-distinct atom displaced
  (exact for the MLIP in that cell; 64 atoms for Si/GaAs, dopant–image distance ≥ 10.9 Å).

The host's own bands are compared with Raman (Γ) and inelastic-neutron (X) frequencies.
MLIPs have no Born charges, so polar hosts have no LO–TO splitting here: Γ-TO and the
non-polar E2 modes are compared, not LO.

Resumable: each (potential, case) is saved as soon as it finishes; a rerun skips it.

    python benchmarks/lvm.py                                     # the reference run (3 potentials)
    python benchmarks/lvm.py --potentials sevennet --hosts Si    # quick look
    python benchmarks/lvm.py --tiers mass,patch                  # without the full tier (patch = full within 0.2 %)

Writes ``benchmarks/results/lvm/lvm.json`` (rows + provenance) and ``lvm.md`` (the tables).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ase.build import bulk

from defectnet.doping import DopantSpec, choose_supercell, substitute
from defectnet.errors import DefectnetError
from defectnet.phonons.dos import gamma_modes
from defectnet.phonons.forceconstants import DopedSystem, TierSettings, pristine_supercell
from defectnet.phonons.host import HostSettings, compute_pristine, mesh_modes
from defectnet.phonons.potentials import get_calculator, potential_info
from defectnet.phonons.tiers import TIERS
from defectnet.provenance import provenance
from defectnet.units import UNITS

OUT = Path(__file__).parent / "results" / "lvm"
POTENTIALS = ("sevennet", "sevennet-l3i5", "chgnet")
TIER_NAMES = ("mass", "patch", "full")
DATA_CELL_ATOMS = (433, 500)  # the reference data's supercells

HOSTS = {  # experimental lattice constants (Å); relaxed with each potential before use
    "Si": lambda: bulk("Si", "diamond", a=5.431),
    "Ge": lambda: bulk("Ge", "diamond", a=5.658),
    "GaAs": lambda: bulk("GaAs", "zincblende", a=5.653),
    "GaN": lambda: bulk("GaN", "wurtzite", a=3.189, c=5.185),
    "ZnO": lambda: bulk("ZnO", "wurtzite", a=3.250, c=5.207),
}

MCCLUSKEY = "McCluskey, J. Appl. Phys. 87, 3593 (2000), Table I"


@dataclass(frozen=True)
class LVMCase:
    """One measured local mode: dopant ``isotope`` on ``site`` of ``host`` at ``measured_cm1``."""

    host: str
    dopant: str
    site: str
    isotope: str  # label, e.g. "11B"
    mass_amu: float  # isotope mass as measured
    measured_cm1: float  # IR absorption, low temperature
    source: str

    @property
    def key(self) -> str:
        return f"{self.isotope}_{self.site} in {self.host}"


CASES = (
    LVMCase("Si", "C", "Si", "12C", 12.000, 607.0, "Newman & Willis, J. Phys. Chem. Solids 26, 373 (1965); " + MCCLUSKEY),
    LVMCase("Si", "B", "Si", "11B", 11.009, 620.0, "Angress, Goodwin & Smith, Proc. R. Soc. A 287, 64 (1965); " + MCCLUSKEY),
    LVMCase("Si", "B", "Si", "10B", 10.013, 644.0, "Angress, Goodwin & Smith (1965); " + MCCLUSKEY),
    LVMCase("GaAs", "Si", "Ga", "28Si", 27.977, 384.0, "Spitzer & Allred (1968); " + MCCLUSKEY),
    LVMCase("GaAs", "Si", "As", "28Si", 27.977, 399.0, MCCLUSKEY),
    LVMCase("GaAs", "C", "As", "12C", 12.000, 582.0, "Newman et al., J. Phys. C 5, 1471 (1972); " + MCCLUSKEY),
    LVMCase("GaAs", "Al", "Ga", "27Al", 26.982, 362.0, MCCLUSKEY),
    LVMCase("GaAs", "B", "Ga", "11B", 11.009, 517.0, MCCLUSKEY),
    LVMCase("GaAs", "Be", "Ga", "9Be", 9.012, 482.0, MCCLUSKEY),
    LVMCase("Ge", "C", "Ge", "12C", 12.000, 531.0, "Hoffmann et al., Phys. Rev. B 55, 11167 (1997)"),
)


@dataclass(frozen=True)
class BandPoint:
    """A measured host phonon: ``which`` selects the computed mode (see :func:`host_bands`)."""

    host: str
    label: str
    which: str  # "gamma_top" | "x_ta" | "e2_low" | "e2_high"
    measured_mev: float
    source: str


_CM = 1.0 / UNITS.cm1_per_mev  # meV per cm⁻¹
_THZ = UNITS.mev_per_thz
BANDS = (
    BandPoint("Si", "TO(Γ)", "gamma_top", 520.7 * _CM, "Raman, Parker et al., Phys. Rev. 155, 712 (1967)"),
    BandPoint("Si", "TA(X)", "x_ta", 4.49 * _THZ, "INS, Nilsson & Nelin, Phys. Rev. B 6, 3777 (1972)"),
    BandPoint("Ge", "TO(Γ)", "gamma_top", 300.7 * _CM, "Raman, Parker et al. (1967)"),
    BandPoint("Ge", "TA(X)", "x_ta", 2.38 * _THZ, "INS, Nilsson & Nelin, Phys. Rev. B 3, 364 (1971)"),
    BandPoint("GaAs", "TO(Γ)", "gamma_top", 268.0 * _CM, "Raman, Mooradian & Wright, Solid State Commun. 4, 431 (1966)"),
    BandPoint("GaAs", "TA(X)", "x_ta", 2.36 * _THZ, "INS, Strauch & Dorner, J. Phys. Condens. Matter 2, 1457 (1990)"),
    BandPoint("GaN", "E2(low)", "e2_low", 144.0 * _CM, "Raman, Davydov et al., Phys. Rev. B 58, 12899 (1998)"),
    BandPoint("GaN", "E2(high)", "e2_high", 567.6 * _CM, "Raman, Davydov et al. (1998)"),
    BandPoint("ZnO", "E2(low)", "e2_low", 99.0 * _CM, "Raman, Cuscó et al., Phys. Rev. B 75, 165202 (2007)"),
    BandPoint("ZnO", "E2(high)", "e2_high", 437.0 * _CM, "Raman, Cuscó et al. (2007)"),
)


def local_mode(fc, atoms, dopant: int, mass_amu: float) -> tuple[float, float]:
    """(energy in meV, weight on the dopant) of the Γ mode most localised on atom ``dopant``.

    ``fc`` (N, N, 3, 3) eV/Å²; the dopant's mass is set to ``mass_amu`` (its isotope). For a
    site of cubic symmetry the mode is a degenerate triplet: any member gives its energy.
    """
    masses = atoms.get_masses().copy()
    masses[dopant] = mass_amu
    symbols = ["X"] * len(atoms)
    symbols[dopant] = "D"
    freqs, weights = gamma_modes(fc, masses, symbols)
    k = int(np.argmax(weights["D"]))
    return float(freqs[k]), float(weights["D"][k])


def host_bands(host) -> dict[str, float]:
    """Computed energies (meV) of the modes :data:`BANDS` names, for a relaxed ``PristineHost``.

    ``gamma_top`` is the highest Γ mode; ``x_ta`` the lowest at X of a cubic cell; ``e2_low``
    and ``e2_high`` the lowest and highest Γ modes of wurtzite in which every element's atoms
    move in-plane with zero net displacement (the E2 pattern; B1 moves along c, E1 and A1 move
    each sublattice rigidly).
    """
    ph = host.phonon
    cell = host.atoms.cell.array
    a_conv = (4 * abs(np.linalg.det(cell))) ** (1 / 3)  # fcc primitive: V = a³/4
    qpts = [[0.0, 0.0, 0.0], list(cell @ np.array([0.0, 0.0, 1.0 / a_conv]))]  # Γ and X (fractional)
    ph.run_qpoints(qpts, with_eigenvectors=True)
    d = ph.get_qpoints_dict()
    f_g, f_x = (np.asarray(f) * _THZ for f in d["frequencies"])
    out = {"gamma_top": float(f_g.max()), "x_ta": float(f_x.min())}
    symbols = np.array(host.atoms.get_chemical_symbols())
    vec = np.asarray(d["eigenvectors"][0]).reshape(len(symbols), 3, -1)  # (atom, xyz, mode)
    e2 = []
    for k in range(vec.shape[2]):
        v = vec[:, :, k]
        net = max(np.abs(v[symbols == el].sum(axis=0)).max() for el in set(symbols))
        if f_g[k] > 1.0 and net < 1e-3 and np.abs(v[:, 2]).max() < 1e-3:
            e2.append(f_g[k])
    if e2:
        out.update(e2_low=float(min(e2)), e2_high=float(max(e2)))
    return out


def run_case(case: LVMCase, host, calc, settings: TierSettings, tiers=TIER_NAMES) -> dict:
    """LVM of ``case`` in each of ``tiers`` (:data:`TIER_NAMES`), with cost; a failed tier keeps its reason."""
    row = {"case": asdict(case), "tiers": {}, "failed": {}}
    cells = {"full": np.array(host.fc_supercell_matrix), "mass": None, "patch": None}
    cells["mass"] = cells["patch"] = choose_supercell(host.atoms, DATA_CELL_ATOMS)
    host.patch_cache.clear()  # cost of the patch from scratch
    for tier in tiers:
        atoms0, fc0 = pristine_supercell(host, cells[tier])
        # site of the dopant: the first atom of the site element (all are equivalent in these hosts)
        doped, sub = substitute(atoms0, [DopantSpec(case.dopant, case.site, 1 / len(atoms0))],
                                np.random.default_rng(0))
        idx = sub.dopant_indices
        t0 = time.perf_counter()
        try:
            res = TIERS[tier](DopedSystem(doped, idx, fc0, host, calc), settings)
        except DefectnetError as exc:
            row["failed"][tier] = str(exc)
            continue
        seconds = time.perf_counter() - t0
        mev, weight = local_mode(res.fc, res.atoms, int(idx[0]), case.mass_amu)
        row["tiers"][tier] = {
            "lvm_mev": mev, "lvm_cm1": mev * UNITS.cm1_per_mev, "dopant_weight": weight,
            "error_pct": 100 * (mev * UNITS.cm1_per_mev / case.measured_cm1 - 1), "n_atoms": len(atoms0),
            "force_calls": int(res.info.get("force_calls", 0)), "seconds": seconds,
        }
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--potentials", default=",".join(POTENTIALS))
    ap.add_argument("--hosts", default=",".join(HOSTS))
    ap.add_argument("--tiers", default=",".join(TIER_NAMES),
                    help="tiers to run (full costs 2x patch where the relaxed cell keeps its symmetry, Si; over 30 min "
                         "a mode where it loses it, Ge and GaAs)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "lvm.json"
    results = json.loads(path.read_text()) if path.exists() else {"rows": {}, "bands": {}, "potentials": {}}

    def save():
        results["provenance"] = provenance()
        path.write_text(json.dumps(results, indent=1))
        (args.out / "lvm.md").write_text(tables(results))

    hosts = args.hosts.split(",")
    settings = TierSettings()
    for pot in args.potentials.split(","):
        calc = get_calculator(pot)
        results["potentials"][pot] = potential_info(pot).to_dict()
        for name in hosts:
            cases = [c for c in CASES if c.host == name]
            todo = [c for c in cases if f"{pot}|{c.key}" not in results["rows"]]
            if not todo and f"{pot}|{name}" in results["bands"]:
                continue
            t0 = time.perf_counter()
            host = compute_pristine(HOSTS[name](), HostSettings(potential=pot))
            band_top = float(mesh_modes(host, 20.0)[0].max())
            results["bands"][f"{pot}|{name}"] = {**host_bands(host), "band_top_mev": band_top,
                                                  "host_seconds": time.perf_counter() - t0}
            save()
            for case in todo:
                row = run_case(case, host, calc, settings, tuple(args.tiers.split(",")))
                row["band_top_mev"] = band_top
                results["rows"][f"{pot}|{case.key}"] = row
                save()
                print(f"{pot:14s} {case.key:18s} " + "  ".join(
                    f"{t} {v['lvm_cm1']:.0f} ({v['error_pct']:+.1f} %)" for t, v in row["tiers"].items())
                    + (f"  failed: {row['failed']}" if row["failed"] else ""), flush=True)
    save()
    print(tables(results))


def tables(results: dict) -> str:
    """Markdown: LVM error per case and potential, host bands, summary per potential."""
    pots = list(results["potentials"])
    lines = ["# Local vibrational modes against IR absorption", "",
             "LVM in cm⁻¹ (error against IR in %) per potential; tier `patch` in the data's 433–500-atom cell,",
             "`full` in the host's force-constant cell (64 atoms for Si, Ge and GaAs). `mass`: mass defect only.", "",
             "| mode | IR | " + " | ".join(f"{p} {t}" for p in pots for t in ("patch", "full")) + " |",
             "|---|---|" + "---|" * (2 * len(pots))]
    for case in CASES:
        cells = []
        for p in pots:
            row = results["rows"].get(f"{p}|{case.key}", {"tiers": {}})
            for t in ("patch", "full"):
                v = row["tiers"].get(t)
                cells.append(f"{v['lvm_cm1']:.0f} ({v['error_pct']:+.1f} %)" if v else "–")
        lines.append(f"| {case.key} | {case.measured_cm1:.0f} | " + " | ".join(cells) + " |")
    lines += ["", "## Summary per potential", "",
              "| potential | tier | modes | mean abs. error % | max abs. error % | within 10 % | patch force calls (mean) | patch s (mean) |",
              "|---|---|---|---|---|---|---|---|"]
    for p in pots:
        for t in TIER_NAMES:
            vals = [r["tiers"][t] for k, r in results["rows"].items() if k.startswith(p + "|") and t in r["tiers"]]
            if not vals:
                continue
            err = np.abs([v["error_pct"] for v in vals])
            lines.append(f"| {p} | {t} | {len(vals)} | {err.mean():.1f} | {err.max():.1f} | {(err <= 10).sum()}/{len(vals)} | "
                         f"{np.mean([v['force_calls'] for v in vals]):.0f} | {np.mean([v['seconds'] for v in vals]):.1f} |")
    lines += ["", "## Host bands (meV; Γ-TO and E2 from Raman, X from INS)", "",
              "| host | mode | measured | " + " | ".join(pots) + " |", "|---|---|---|" + "---|" * len(pots)]
    for b in BANDS:
        cells = []
        for p in pots:
            v = results["bands"].get(f"{p}|{b.host}", {}).get(b.which)
            cells.append(f"{v:.1f} ({100 * (v / b.measured_mev - 1):+.1f} %)" if v is not None else "–")
        lines.append(f"| {b.host} | {b.label} | {b.measured_mev:.1f} | " + " | ".join(cells) + " |")
    lines += ["", "Sources:", ""] + [f"- {c.key}: {c.source}" for c in CASES] + [f"- {b.host} {b.label}: {b.source}" for b in BANDS]
    prov = results.get("provenance", {})
    lines += ["", f"Commit {prov.get('commit')}, `{prov.get('command')}`, {prov.get('date')}; "
              f"potentials: " + ", ".join(f"{v['model']} ({v['package']} {v['version']})" for v in results["potentials"].values())]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
