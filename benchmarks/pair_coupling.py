"""Two dopants close together: is the patch tier's instability the superposition or the physics?

Two dopants are placed on one sublattice at a chosen neighbour shell — in the host's
force-constant cell (64 atoms for rocksalt/zincblende), or with ``--cell-atoms N`` in an
N-atom supercell of the host (force constants interpolated from the host's) — and the Γ
frequencies of the patch tier (two single-dopant patches superposed) are compared with the
`full` tier (the doped cell relaxed, every atom displaced). An imaginary mode in both is
physical: the symmetric substituted structure is unstable. In the patch tier only, it is a
superposition artefact.

``--tiers`` runs others too (``cluster``: the pair patched together in a cell wide enough for
it). Each tier is scored against `full` by the fidelity S of its Γ spectrum, as in
``benchmarks/tiers.py``: S = 1 − ‖g_tier − g_full‖₁ / ‖g_full − g_pristine‖₁.

    python benchmarks/pair_coupling.py                       # SrO: Mg-Mg (1st shell), Ca-Ca (2nd, Ca-O-Ca)
    python benchmarks/pair_coupling.py --case GaAs:Zn,Zn:0
    python benchmarks/pair_coupling.py --case GaAs:Si,Si:0@Ga --cell-atoms 216 --tiers patch,cluster,full \\
        --out benchmarks/results/pair_coupling/pair-216.json

A case is HOST:El1,El2:SHELL[@SITE]: shell 0 is the nearest neighbour on the sublattice of
SITE's element (default: the cell's first atom's). Writes ``--out`` (default
``benchmarks/results/pair_coupling/pair_coupling.json``: the cases and the provenance of the run
that last added one) and a table next to it (``.md``). Resumable: each case is saved as soon as
it finishes, and a rerun skips the cases already there (same case, cell and tiers).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from defectnet.doping import choose_supercell
from defectnet.elements import mass_amu
from defectnet.errors import DefectnetError
from defectnet.grid import DEFAULT_GRID
from defectnet.hosts import load_host
from defectnet.phonons.dos import gamma_modes, gamma_spectrum
from defectnet.phonons.forceconstants import DopedSystem, TierSettings, pristine_supercell
from defectnet.phonons.host import HostSettings, compute_pristine, to_ase_atoms
from defectnet.phonons.potentials import get_calculator
from defectnet.phonons.tiers import TIERS, get_tier
from defectnet.provenance import provenance

CASES = ("SrO:Mg,Mg:0", "SrO:Ca,Ca:1")
DEFAULT_TIERS = ("patch", "full")
FWHM_MEV = 1.0  # as benchmarks/tiers.py
CUTOFF_ANG = 4.6


def lowest_mode_mev(freqs) -> float:
    """The lowest mode once the three acoustic ones (the three closest to 0) are set aside, meV."""
    f = np.asarray(freqs, float)
    return float(np.delete(f, np.argsort(np.abs(f))[:3]).min())


def parse_case(case: str) -> tuple[str, list[str], int, str | None]:
    """``HOST:El1,El2:SHELL[@SITE]`` -> (host, [El1, El2], shell, site element or None)."""
    try:
        name, pair, shell = case.split(":")
        shell, _, site = shell.partition("@")
        pair = pair.split(",")
        if len(pair) != 2:
            raise ValueError
        return name, pair, int(shell), site or None
    except ValueError:
        raise SystemExit(f"bad case {case!r}: expected HOST:El1,El2:SHELL[@SITE], e.g. GaAs:Si,Si:0@Ga") from None


def case_key(case: str, cell_atoms: int | None, tiers, host_fc: str = "interpolated") -> str:
    """The key a finished case is saved under: the case, the cell (``fc``: the host's force-constant cell), the
    tiers, and ``|direct`` when the cell's pristine force constants were computed in it."""
    return f"{case}|{cell_atoms or 'fc'}|{','.join(tiers)}" + ("|direct" if host_fc == "direct" else "")


def row_key(row: dict) -> str:
    """The key of a saved case (rows from before ``--cell-atoms`` and ``--tiers``: fc cell, patch and full)."""
    return row.get("key") or case_key(row["case"], None, DEFAULT_TIERS)


def place_pair(cell, pair, shell: int, site: str | None = None):
    """``cell`` with ``pair`` on two sites of one sublattice at neighbour shell ``shell``.

    The sublattice is ``site``'s element (default: the first atom's). Returns (doped atoms
    with the dopants' masses, sorted dopant indices, their separation in Å).
    """
    symbols = np.array(cell.get_chemical_symbols())
    site = site or symbols[0]
    sites = np.flatnonzero(symbols == site)
    if not len(sites):
        raise SystemExit(f"no {site} in the cell ({', '.join(sorted(set(symbols)))})")
    dist = cell.get_distances(sites[0], sites, mic=True)
    shells = np.unique(np.round(dist[dist > 0.1], 2))
    if shell >= len(shells):
        raise SystemExit(f"shell {shell}: the cell has {len(shells)} shells on the {site} sublattice")
    partner = sites[np.flatnonzero(np.isclose(np.round(dist, 2), shells[shell]))[0]]
    doped = cell.copy()
    new = list(symbols)
    new[sites[0]], new[partner] = pair
    doped.set_chemical_symbols(new)
    doped.set_masses([mass_amu(s) for s in new])
    return doped, np.array(sorted([sites[0], partner])), float(shells[shell])


def pair_cell(host, cell_atoms: int | None, calc=None, host_fc: str = "interpolated"):
    """The pristine cell, its force constants and the force calls they took.

    The host's force-constant cell, or an N-atom supercell whose force constants are
    interpolated from the host's (``host_fc="interpolated"``) or computed in it by finite
    displacements, as `full` computes the doped cell's (``"direct"``: then `full` and the
    pristine reference share their long-range host part, which interpolation misses).
    """
    if not cell_atoms:
        return to_ase_atoms(host.phonon.supercell), np.array(host.phonon.force_constants), 0
    cell, fc0 = pristine_supercell(host, choose_supercell(host.atoms, (cell_atoms, cell_atoms)))
    if host_fc != "direct":
        return cell, fc0, 0
    r = get_tier("full")(DopedSystem(cell.copy(), np.array([0]), fc0, host, calc), TierSettings(cutoff_ang=CUTOFF_ANG))
    return r.atoms, r.fc, r.info["force_calls"]


def fidelities(spectra: dict, pristine) -> dict:
    """S of every tier's spectrum against ``spectra["full"]`` (as benchmarks/tiers.py); {} without full."""
    if "full" not in spectra:
        return {}
    return {t: spectra[t].signature_fidelity(spectra["full"], pristine) for t in spectra if t != "full"}


def run_case(case: str, potential: str, tiers=DEFAULT_TIERS, cell_atoms: int | None = None, host=None,
             host_fc: str = "interpolated") -> dict:
    """Every tier of ``tiers`` on the pair of ``case``; ``host`` (a PristineHost) is computed when not given."""
    name, pair, shell, site = parse_case(case)
    calc = get_calculator(potential)
    if host is None:
        host = compute_pristine(load_host(name).to_atoms(), HostSettings(potential=potential))
    cell, fc0, calls = pair_cell(host, cell_atoms, calc, host_fc)
    doped, idx, separation = place_pair(cell, pair, shell, site)
    out = {"key": case_key(case, cell_atoms, tiers, host_fc), "case": case, "cell_atoms": len(cell),
           "separation_ang": separation, "tiers": list(tiers), "potential": potential}
    if cell_atoms:
        out.update(host_fc=host_fc, host_fc_force_calls=calls)
    spectra = {}
    for tier in tiers:
        t0 = time.perf_counter()
        system = DopedSystem(doped, idx, fc0, host, calc, False)
        try:
            r = get_tier(tier)(system, TierSettings(cutoff_ang=CUTOFF_ANG))
        except DefectnetError as exc:  # e.g. a patch with no stable position: a result, not a crash
            out[tier] = {"failed": str(exc), "seconds": round(time.perf_counter() - t0, 1)}
            continue
        f = np.sort(gamma_modes(r.fc, r.atoms.get_masses())[0])
        spectra[tier], _ = gamma_spectrum(r.fc, r.atoms, DEFAULT_GRID, fwhm_mev=FWHM_MEV)
        out[tier] = {"lowest_mev": [round(float(x), 2) for x in f[:8]], "n_imaginary": int((f < -1).sum()),
                     "seconds": round(time.perf_counter() - t0, 1), "force_calls": r.info.get("force_calls")}
        out[tier].update({k: r.info[k] for k in ("n_clusters", "fallbacks") if k in r.info})
    g0, _ = gamma_spectrum(fc0, cell, DEFAULT_GRID, fwhm_mev=FWHM_MEV)
    for tier, s in fidelities(spectra, g0).items():
        out[tier]["S"] = round(s, 4)
    return out


def _mode(r, tier) -> str:
    t = r.get(tier)
    return "–" if t is None else "failed" if "failed" in t else f"{lowest_mode_mev(t['lowest_mev']):.2f}"


def markdown(rows, prov) -> str:
    """Case, cell, separation, S per tier, lowest non-acoustic mode per tier (meV), cost (s / force calls)."""
    tiers = list(dict.fromkeys(t for r in rows for t in r.get("tiers", DEFAULT_TIERS)))
    tiers = [t for t in tiers if t != "full"] + ["full"] * ("full" in tiers)  # full last
    scored = [t for t in tiers if t != "full"]
    lines = [f"Made by `{prov['command']}` at commit {prov['commit']} ({prov.get('date', 'date not recorded')}; rows may come from earlier "
             f"runs of the same file). Γ point, {FWHM_MEV} meV FWHM, cutoff {CUTOFF_ANG} Å; S = 1 − ‖g − g_full‖₁ / "
             "‖g_full − g_pristine‖₁; cost = seconds / force calls (0 calls: patches from the cache).", "",
             "| case | cell atoms | separation (Å) | " + " | ".join(f"S {t}" for t in scored) + " | "
             + " | ".join(f"lowest mode {t} (meV)" for t in tiers) + " | " + " | ".join(f"cost {t}" for t in tiers) + " |",
             "|" + "---|" * (3 + len(scored) + 2 * len(tiers))]
    for r in rows:
        s = [f"{r[t]['S']:.3f}" if "S" in r.get(t, {}) else "–" for t in scored]
        cost = [f"{r[t]['seconds']:.0f} / {r[t].get('force_calls', '–')}" if t in r else "–" for t in tiers]
        direct = " (host fc direct)" if r.get("host_fc") == "direct" else ""
        lines.append(f"| {r['case']} | {r['cell_atoms']}{direct} | {r['separation_ang']:.2f} | " + " | ".join(s) + " | "
                     + " | ".join(_mode(r, t) for t in tiers) + " | " + " | ".join(cost) + " |")
    return "\n".join(lines) + "\n"


def verdict_table(rows) -> str:
    """The patch-against-full verdicts of the rows that have both (the script's original table)."""
    lines = ["| case | separation | lowest non-acoustic mode, patch (meV) | full (meV) | verdict |", "|---|---|---|---|---|"]
    for r in rows:
        if "lowest_mev" not in r.get("patch", {}) or "lowest_mev" not in r.get("full", {}):
            continue
        p, f = lowest_mode_mev(r["patch"]["lowest_mev"]), lowest_mode_mev(r["full"]["lowest_mev"])
        verdict = ("physical instability" if f < -1 else "superposition artefact" if p < -1 else "stable")
        if f < -1 and p >= -1:
            verdict += " the patch tier misses"
        lines.append(f"| {r['case']} | {r['separation_ang']:.2f} Å | {p:.2f} | {f:.2f} | {verdict} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", action="append", help="HOST:El1,El2:SHELL[@SITE] (shell 0 = nearest on the sublattice "
                                                    "of SITE's element, default the cell's first atom's)")
    ap.add_argument("--potential", default="sevennet")
    ap.add_argument("--cell-atoms", type=int, default=None,
                    help="place the pair in an N-atom supercell of the host (default: the host's force-constant cell)")
    ap.add_argument("--host-fc", choices=("interpolated", "direct"), default="interpolated",
                    help="with --cell-atoms: the cell's pristine force constants interpolated from the host's "
                         "force-constant cell, or computed in the cell (a few force calls with symmetry)")
    ap.add_argument("--tiers", default=",".join(DEFAULT_TIERS), help=f"tiers to run, of {', '.join(TIERS)}; "
                                                                       "S is computed against full when it is among them")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "pair_coupling" / "pair_coupling.json")
    ap.add_argument("--report", action="store_true", help="print the table of an existing --out JSON")
    args = ap.parse_args(argv)
    tiers = [t for t in args.tiers.split(",") if t]
    if bad := [t for t in tiers if t not in TIERS]:
        raise SystemExit(f"unknown tier {bad[0]}; expected some of {', '.join(TIERS)}")
    saved = json.loads(args.out.read_text()) if args.out.exists() else {"cases": []}
    if not args.report:
        prov = provenance()  # of the run that last added cases (runs resume)
        done = {row_key(r) for r in saved["cases"]}
        for case in args.case or CASES:
            if case_key(case, args.cell_atoms, tiers, args.host_fc) in done:
                print(f"{case}: already in {args.out}, skipped", flush=True)
                continue
            saved["cases"].append(run_case(case, args.potential, tiers, args.cell_atoms, host_fc=args.host_fc))
            saved["provenance"] = prov
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(saved, indent=1))
            args.out.with_suffix(".md").write_text(markdown(saved["cases"], prov))
            print(f"{case}: saved to {args.out}", flush=True)
    if any("lowest_mev" in r.get("patch", {}) and "lowest_mev" in r.get("full", {}) for r in saved["cases"]):
        print(verdict_table(saved["cases"]))
    if saved["cases"] and "provenance" in saved:
        print("\n" + markdown(saved["cases"], saved["provenance"]))


if __name__ == "__main__":
    main()
