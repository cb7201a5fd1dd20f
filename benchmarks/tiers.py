"""Fidelity and cost of the doped-force-constant tiers (full, local, patch, mass).

For each host and dopant, doped cells are built in the host's force-constant supercell
(~64–100 atoms, where `full` is affordable) at three concentrations — one dopant (the
isolated limit, ~1–2 %), ~5 % and 25 % — and every tier is compared with `full` on the
same relaxed structure by the share of the defect signature it reproduces,

    S = 1 − ‖Δ_tier − Δ_full‖₁ / ‖Δ_full‖₁,   Δ = g_doped − g_pristine,

and by the Wasserstein-1 distance to `full` (meV). Wall times per doped spectrum are then
measured at 433–500 atoms (a 1 % cell) for mass and patch; `local` and `full` at that
size are estimated as the relaxation (run) + their force calls (counted) × the measured
time of one force call there.

Resumable: every finished case is saved in the JSON at once, and a rerun skips it.

    python benchmarks/tiers.py --potential sevennet            # the reference run
    python benchmarks/tiers.py --potential chgnet --hosts Si   # quick look
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from ase.build import bulk

from defectnet.doping import DopantSpec, choose_supercell, substitute
from defectnet.errors import DefectnetError
from defectnet.grid import DEFAULT_GRID
from defectnet.phonons.dos import gamma_spectrum
from defectnet.phonons.forceconstants import DopedSystem, TierSettings, pristine_supercell
from defectnet.phonons.host import HostSettings, compute_pristine, to_ase_atoms
from defectnet.phonons.potentials import get_calculator
from defectnet.phonons.tiers import TIERS

HOSTS = {  # experimental lattice constants (Å)
    "Si": (lambda: bulk("Si", "diamond", a=5.431), "Si", ["B", "C", "Ge", "Sn"]),
    "GaAs": (lambda: bulk("GaAs", "zincblende", a=5.653), "Ga", ["Be", "C", "Si", "Zn"]),
    "AlN": (lambda: bulk("AlN", "wurtzite", a=3.112, c=4.982), "Al", ["B", "Mg", "Si", "Ga"]),
    "ZnO": (lambda: bulk("ZnO", "wurtzite", a=3.25, c=5.207), "Zn", ["Li", "Mg", "Al", "Cd"]),
    "ZnS": (lambda: bulk("ZnS", "zincblende", a=5.409), "Zn", ["Mg", "Mn", "Cu", "Cd"]),
    "CdTe": (lambda: bulk("CdTe", "zincblende", a=6.481), "Cd", ["Zn", "Mn", "Mg", "Hg"]),
}
# in the 64-atom cells of Si, GaAs and CdTe one atom is 1.6 %: "1%" places two (3.1 %, a pair at most)
FRACTIONS = {"single": None, "1%": 0.01, "5%": 0.05, "10%": 0.10, "25%": 0.25}
FWHM_MEV = 1.0
SHOWN = ("mass", "patch", "cluster", "local")


def fidelity_cases(name, host, site, dopants, labels, settings, calc, results, save, shown=SHOWN):
    atoms0 = to_ase_atoms(host.phonon.supercell)
    fc0 = np.array(host.phonon.force_constants)
    g0, _ = gamma_spectrum(fc0, atoms0, DEFAULT_GRID, fwhm_mev=FWHM_MEV)
    n = len(atoms0)
    n_site = atoms0.get_chemical_symbols().count(site)
    for label in labels:
        frac = FRACTIONS[label]
        for el in dopants:
            key = f"{name}|{el}|{label}"
            if key in results["fidelity"]:
                continue
            count = 1 if frac is None else min(max(2, round(frac * n)), n_site)
            doped, sub = substitute(atoms0, [DopantSpec(el, site, count / n)], np.random.default_rng(0))
            idx = np.array(sub.indices[f"{el}@{site}"])
            system = DopedSystem(doped, idx, fc0, host, calc)
            row = {"host": name, "dopant": el, "label": label, "n_atoms": n, "n_dopants": int(len(idx)),
                   "concentration": len(idx) / n, "tiers": {}}
            spectra = {}
            for tier in ("full",) + tuple(shown):
                t0 = time.perf_counter()
                try:
                    res = TIERS[tier](system, settings)
                except DefectnetError as exc:  # e.g. a patch with no stable position: a result, not a crash
                    row.setdefault("failed", {})[tier] = str(exc)
                    if tier == "full":
                        break
                    continue
                seconds = time.perf_counter() - t0
                spectra[tier], _ = gamma_spectrum(res.fc, res.atoms, DEFAULT_GRID, fwhm_mev=FWHM_MEV)
                row["tiers"][tier] = {"seconds": seconds, "force_calls": res.info.get("force_calls", 0)}
            if "full" not in spectra:
                results["fidelity"][key] = row
                save()
                print(f"{name}:{el} {label}: full failed ({row['failed']['full']})", flush=True)
                continue
            row["w1_full_vs_pristine_mev"] = spectra["full"].wasserstein1_mev(g0)
            for tier in (t for t in shown if t in spectra):
                row["tiers"][tier]["S"] = spectra[tier].signature_fidelity(spectra["full"], g0)
                row["tiers"][tier]["w1_mev"] = spectra[tier].wasserstein1_mev(spectra["full"])
            results["fidelity"][key] = row
            save()
            print(_fid_line(row), flush=True)


def timing_case(name, host, site, dopant, settings, calc, results, save):
    """Wall time per doped spectrum in a 433–500-atom cell at ~1 %.

    ``mass`` and ``patch`` (from scratch, then with the patch cached as in dataset
    generation) are run. ``local`` and ``full`` there would take an hour or more per case
    on 2 cores, so their cost is estimated from what they would do: the relaxation is run
    and timed, the force calls are counted exactly (dopants and neighbours within the
    cutoff × 6 for ``local``, 6N for ``full`` without symmetry), and each call costs the
    measured time of one force call in the same cell.
    """
    from defectnet.phonons.forceconstants import neighbours_within
    from defectnet.phonons.tiers import relax_positions

    key = f"{name}|{dopant}|1%"
    if key in results["timing"]:
        return
    P = choose_supercell(host.atoms, (433, 500))
    atoms, fc0 = pristine_supercell(host, P)
    n = len(atoms)
    doped, sub = substitute(atoms, [DopantSpec(dopant, site, 0.01)], np.random.default_rng(1))
    idx = np.array(sub.indices[f"{dopant}@{site}"])
    system = DopedSystem(doped, idx, fc0, host, calc)
    row = {"host": name, "dopant": dopant, "n_atoms": n, "n_dopants": int(len(idx)), "tiers": {}}
    host.patch_cache.clear()  # time the patch from scratch, then reuse
    for tier in ("mass", "patch", "patch (cached)"):
        t0 = time.perf_counter()
        res = TIERS[tier.split()[0]](system, settings)
        gamma_spectrum(res.fc, res.atoms, DEFAULT_GRID, fwhm_mev=FWHM_MEV)
        row["tiers"][tier] = {"seconds": time.perf_counter() - t0, "force_calls": res.info.get("force_calls", 0)}
    t0 = time.perf_counter()
    relaxed, _ = relax_positions(doped, calc, settings)
    relax_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    gamma_spectrum(fc0, relaxed, DEFAULT_GRID, fwhm_mev=FWHM_MEV)
    spectrum_s = time.perf_counter() - t0
    work = relaxed.copy()
    work.calc = calc
    work.get_forces()
    t0 = time.perf_counter()
    for _ in range(3):
        work.positions[0, 0] += 1e-3
        work.get_forces()
    t_call = (time.perf_counter() - t0) / 3
    per_atom = 6 if settings.plusminus else 3
    n_local = len(neighbours_within(relaxed, idx, settings.cutoff_ang)) * per_atom
    for tier, calls in (("local (estimated)", n_local), ("full (estimated)", per_atom * n)):
        row["tiers"][tier] = {"seconds": relax_s + calls * t_call + spectrum_s, "force_calls": calls}
    row.update(force_call_s=t_call, relax_s=relax_s)
    results["timing"][key] = row
    save()
    print(_time_line(row), flush=True)


def _fid_line(r):
    s = "  ".join(f"{t} S={r['tiers'][t]['S']:+.2f} ({r['tiers'][t]['seconds']:.0f}s)" for t in SHOWN if t in r["tiers"])
    return (f"{r['host']:5s} {r['dopant']:3s} {r['label']:6s} {100 * r['concentration']:5.1f}%  "
            f"full {r['tiers']['full']['seconds']:.0f}s/{r['tiers']['full']['force_calls']} calls  {s}")


def _time_line(r):
    full = r["tiers"]["full (estimated)"]["seconds"]
    s = "  ".join(f"{t} {v['seconds']:.1f}s (×{full / v['seconds']:.0f})" for t, v in r["tiers"].items() if "full" not in t)
    return f"{r['host']:5s} {r['dopant']:3s} {r['n_atoms']} atoms: full≈{full:.0f}s  {s}"


def _s_cell(r, tier, width=0) -> str:
    """S of a tier, "failed" where the tier could not be computed (e.g. no stable patch), – if not run."""
    if tier in r["tiers"] and "S" in r["tiers"][tier]:
        return f"{r['tiers'][tier]['S']:{width}.2f}"
    return f"{'failed' if tier in r.get('failed', {}) else '–':>{width}s}"


def _cost_cell(r, tier) -> str:
    t = r["tiers"].get(tier)
    return f"{t['seconds']:.0f} / {t['force_calls']}" if t else ("failed" if tier in r.get("failed", {}) else "–")


def report(results, out_png: Path):
    rows = [r for r in results["fidelity"].values() if "full" in r["tiers"]]
    print("\nFidelity S of the defect signature vs full (1 = exact), by concentration:")
    print(f"{'host':5s} {'dopant':6s} {'conc':>6s} " + " ".join(f"{t:>7s}" for t in SHOWN) + "   W1(full,pristine) meV")
    for r in rows:
        print(f"{r['host']:5s} {r['dopant']:6s} {100 * r['concentration']:5.1f}% "
              + " ".join(_s_cell(r, t, 7) for t in SHOWN)
              + f"   {r['w1_full_vs_pristine_mev']:.2f}")
    summary = {}
    for label in FRACTIONS:
        sel = [r for r in rows if r["label"] == label]
        if sel:
            summary[label] = {t: {"min_S": min(r["tiers"][t]["S"] for r in sel if t in r["tiers"]),
                                  "median_S": float(np.median([r["tiers"][t]["S"] for r in sel if t in r["tiers"]])),
                                  "n": sum(t in r["tiers"] for r in sel)}
                              for t in SHOWN if any(t in r["tiers"] for r in sel)}
    results["summary"] = summary
    for label, d in summary.items():
        print(f"{label:7s} " + "  ".join(f"{t}: min {v['min_S']:.2f} median {v['median_S']:.2f}" for t, v in d.items()))
    if results["timing"]:
        print("\nWall time per doped spectrum at 433–500 atoms (speed-up vs full in brackets):")
        for r in results["timing"].values():
            print(_time_line(r))
    _plot(rows, results["timing"], out_png)
    out_png.with_suffix(".md").write_text(markdown(results))


def markdown(results) -> str:
    """The README tables: fidelity per case, then wall time per spectrum at 433–500 atoms."""
    st = results["settings"]
    lines = [f"Potential {st['potential']}, cutoff {st['tier_settings']['cutoff_ang']} Å, Γ point, "
             f"{st['fwhm_mev']} meV FWHM; fidelity in the host's force-constant cell (`full` affordable there). "
             "Patches are cached per host: a case that reuses them spends no new force calls.", "",
             "| host | dopant | cell | dopants (at.%) | W1(full, pristine) meV | " + " | ".join(f"S {t}" for t in SHOWN)
             + " | full s / calls | patch s / new calls |", "|" + "---|" * (7 + len(SHOWN))]
    order = {lab: i for i, lab in enumerate(FRACTIONS)}
    for r in sorted(results["fidelity"].values(), key=lambda r: (order[r["label"]], r["host"], r["dopant"])):
        w1 = r.get("w1_full_vs_pristine_mev")
        lines.append(f"| {r['host']} | {r['dopant']} | {r['n_atoms']} | {r['n_dopants']} ({100 * r['concentration']:.1f}) | "
                     f"{'–' if w1 is None else f'{w1:.2f}'} | " + " | ".join(_s_cell(r, x) for x in SHOWN)
                     + f" | {_cost_cell(r, 'full')} | {_cost_cell(r, 'patch')} |")
    failed = {f"{r['host']}:{r['dopant']} {r['label']} ({tier})": msg for r in results["fidelity"].values()
              for tier, msg in r.get("failed", {}).items()}
    if failed:
        lines += ["", "Failed: " + "; ".join(f"{k}: {v}" for k, v in failed.items())]
    if results["timing"]:
        names = ["mass", "patch", "patch (cached)", "local (estimated)", "full (estimated)"]
        lines += ["", "Wall time per doped spectrum at 433–500 atoms, ~1 % (seconds; × = speed-up over full):", "",
                  "| host | dopant | atoms | force call s | " + " | ".join(names) + " |", "|" + "---|" * (4 + len(names))]
        for r in results["timing"].values():
            full = r["tiers"]["full (estimated)"]["seconds"]
            cells = [f"{r['tiers'][n]['seconds']:.1f} (×{full / r['tiers'][n]['seconds']:.0f})" if n in r["tiers"] else "–"
                     for n in names]
            lines.append(f"| {r['host']} | {r['dopant']} | {r['n_atoms']} | {r['force_call_s']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _plot(rows, timing, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    labels = [f"{r['host']}:{r['dopant']} {r['label']}" for r in rows]
    x = np.arange(len(rows))
    for k, t in enumerate(SHOWN):
        w = 0.8 / len(SHOWN)
        axes[0].bar(x + (k - (len(SHOWN) - 1) / 2) * w, [r["tiers"][t]["S"] if t in r["tiers"] else np.nan for r in rows],
                    w, label=t)
    axes[0].axhline(0.8, color="k", ls="--", lw=0.8)
    axes[0].set_xticks(x, labels, rotation=90, fontsize=6)
    axes[0].set_ylabel("S (share of defect signature)")
    axes[0].set_ylim(-0.5, 1.05)
    axes[0].legend()
    for r in timing.values():
        names = list(r["tiers"])
        axes[1].plot(names, [r["tiers"][t]["seconds"] for t in names], "o-", label=f"{r['host']}:{r['dopant']} ({r['n_atoms']} at.)")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("seconds per doped spectrum")
    axes[1].tick_params(axis="x", rotation=30)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--potential", default="sevennet")
    ap.add_argument("--hosts", default="Si,GaAs,AlN,ZnO,ZnS")
    ap.add_argument("--cutoff", type=float, default=TierSettings().cutoff_ang, help="local/patch cutoff, Å")
    ap.add_argument("--fractions", default="single,5%,25%", help=f"fidelity cases, in this order (of {', '.join(FRACTIONS)})".replace("%", "%%"))
    ap.add_argument("--tiers", default="mass,patch,local", help=f"tiers compared with full, of {', '.join(SHOWN)} "
                                                                "(local is the costliest)")
    ap.add_argument("--merge", nargs="*", default=[], help="results files of parallel runs (same settings) to merge in")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--no-fidelity", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = Path(args.out or f"benchmarks/results/tiers/tiers-{args.potential}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(out.read_text()) if out.exists() else {"fidelity": {}, "timing": {}}
    settings = TierSettings(cutoff_ang=args.cutoff)
    wanted = {"potential": args.potential, "tier_settings": settings.to_dict(), "fwhm_mev": FWHM_MEV,
              "grid_id": DEFAULT_GRID.grid_id}
    if results.get("settings", wanted) != wanted:  # resuming must not mix cases of different settings
        raise SystemExit(f"{out} holds results for other settings ({results['settings']}); use another --out")
    results["settings"] = wanted
    from defectnet.provenance import provenance

    results["provenance"] = provenance()  # of the run that last added cases (runs resume)
    for other in map(Path, args.merge):  # parallel runs on other hosts write their own files
        extra = json.loads(other.read_text())
        if extra.get("settings") != wanted:
            raise SystemExit(f"{other} holds results for other settings; not merged")
        for part in ("fidelity", "timing"):
            results[part].update({k: v for k, v in extra[part].items() if k not in results[part]})
    shown = [t for t in args.tiers.split(",") if t]
    if bad := [t for t in shown if t not in SHOWN]:
        raise SystemExit(f"unknown tier {bad[0]}; expected some of {', '.join(SHOWN)}")

    def save():
        out.write_text(json.dumps(results, indent=1))

    calc = get_calculator(args.potential)
    names = args.hosts.split(",")
    labels = args.fractions.split(",")
    if unknown := [x for x in names if x not in HOSTS] + [x for x in labels if x not in FRACTIONS]:
        raise SystemExit(f"unknown host or fraction: {', '.join(unknown)} (hosts {', '.join(HOSTS)}; "
                         f"fractions {', '.join(FRACTIONS)})")
    hosts = {}

    def host_of(name):
        if name not in hosts:
            t0 = time.perf_counter()
            hosts[name] = compute_pristine(HOSTS[name][0](), HostSettings(potential=args.potential), fwhm_mev=FWHM_MEV)
            print(f"{name}: host {time.perf_counter() - t0:.0f}s, fc cell {len(hosts[name].phonon.supercell)} atoms, "
                  f"imaginary {hosts[name].n_imaginary}", flush=True)
        return hosts[name]

    # concentration-major order: every host's isolated-dopant cases first, 25 % (the costliest) last
    for label in labels if not args.no_fidelity else ():
        for name in names:
            _, site, dopants = HOSTS[name]
            if any(f"{name}|{el}|{label}" not in results["fidelity"] for el in dopants):
                fidelity_cases(name, host_of(name), site, dopants, [label], settings, calc, results, save, shown)
    for name in names if not args.no_timing else ():
        _, site, dopants = HOSTS[name]
        if f"{name}|{dopants[2]}|1%" not in results["timing"]:
            try:
                timing_case(name, host_of(name), site, dopants[2], settings, calc, results, save)
            except DefectnetError as exc:
                print(f"{name}:{dopants[2]} timing skipped: {exc}", flush=True)
    save()
    report(results, out.with_suffix(".png"))
    save()


if __name__ == "__main__":
    main()
