"""Build a small *real* development dataset with the spectra engine (until the pipeline exists).

Hosts are built with ``ase.build.bulk`` from experimental lattice constants; each is relaxed
and its force constants computed once (``compute_pristine``); its 433–500-atom supercell,
pristine force constants and pristine spectra are computed once too. Each sample is a
co-doping scenario from the recommender + sampler (``sample_scenario``: 1–6 dopants,
0.2–25 at.%, 1–4 distractors), realised with the chosen tier exactly as
``defectnet.simulate.simulate_spectra`` does, but reusing the pristine pieces.

The result is a training file in the contract of :mod:`defectnet.model.dataset`. Finished
hosts are cached (``<out>.parts/<host>.npz``), so an interrupted build resumes.

``mass``-tier data is physically weak (mass change only): use it for development, not for
claims. Run (about 1 h for the default hosts on one core of a busy machine)::

    OMP_NUM_THREADS=1 python benchmarks/dev_dataset.py --tier mass --per-host 40 --out /work/devdata/dev_mass.h5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

#: name -> (ase.build.bulk arguments). Lattice constants in Å (experimental, room temperature).
HOSTS = {
    "Si": dict(name="Si", crystalstructure="diamond", a=5.431),
    "Ge": dict(name="Ge", crystalstructure="diamond", a=5.658),
    "C": dict(name="C", crystalstructure="diamond", a=3.567),
    "SiC": dict(name="SiC", crystalstructure="zincblende", a=4.360),
    "GaAs": dict(name="GaAs", crystalstructure="zincblende", a=5.653),
    "AlAs": dict(name="AlAs", crystalstructure="zincblende", a=5.661),
    "GaP": dict(name="GaP", crystalstructure="zincblende", a=5.451),
    "InP": dict(name="InP", crystalstructure="zincblende", a=5.869),
    "InAs": dict(name="InAs", crystalstructure="zincblende", a=6.058),
    "GaSb": dict(name="GaSb", crystalstructure="zincblende", a=6.096),
    "ZnS": dict(name="ZnS", crystalstructure="zincblende", a=5.410),
    "ZnSe": dict(name="ZnSe", crystalstructure="zincblende", a=5.668),
    "CdTe": dict(name="CdTe", crystalstructure="zincblende", a=6.481),
    "MgO": dict(name="MgO", crystalstructure="rocksalt", a=4.212),
    "NaCl": dict(name="NaCl", crystalstructure="rocksalt", a=5.640),
    "LiF": dict(name="LiF", crystalstructure="rocksalt", a=4.026),
    "KCl": dict(name="KCl", crystalstructure="rocksalt", a=6.290),
    "CaF2": dict(name="CaF2", crystalstructure="fluorite", a=5.463),
    "GaN": dict(name="GaN", crystalstructure="wurtzite", a=3.189, c=5.185),
    "ZnO": dict(name="ZnO", crystalstructure="wurtzite", a=3.250, c=5.207),
    "AlN": dict(name="AlN", crystalstructure="wurtzite", a=3.112, c=4.982),
}


def build_host(name: str, config, n_per_host: int, seed: int, n_recommend: int, progress: bool) -> dict:
    """Simulate ``n_per_host`` doped samples of one host; returns the contract's per-sample arrays."""
    from ase.build import bulk

    from defectnet.doping import DopantSpec, choose_supercell, substitute
    from defectnet.elements import DOPANTS
    from defectnet.model.dataset import HOST_ELEMENTS
    from defectnet.phonons.dos import gamma_spectrum
    from defectnet.phonons.forceconstants import DopedSystem, pristine_supercell
    from defectnet.phonons.tiers import get_tier
    from defectnet.phonons.host import compute_pristine
    from defectnet.phonons.potentials import get_calculator
    from defectnet.recommend import DopantRecommender
    from defectnet.sampling import SamplerConfig, sample_scenario

    atoms = bulk(**HOSTS[name])
    t0 = time.perf_counter()
    host = compute_pristine(atoms, config.host, grid=config.grid, progress=False, **config.broadening())
    P = choose_supercell(host.atoms, config.supercell_atoms)
    sc_atoms, fc0 = pristine_supercell(host, P)
    n_atoms = len(sc_atoms)
    pristine, _ = gamma_spectrum(fc0, sc_atoms, config.grid, **config.broadening())
    symbols = sc_atoms.get_chemical_symbols()
    els, counts = np.unique(symbols, return_counts=True)
    fractions = {str(e): c / n_atoms for e, c in zip(els, counts)}
    p_gpdos = pristine.neutron_weighted(fractions)
    comp = np.zeros(len(HOST_ELEMENTS), np.float32)
    for e, f in fractions.items():
        comp[HOST_ELEMENTS.index(e)] = f
    prim_counts = dict(zip(*np.unique(host.atoms.get_chemical_symbols(), return_counts=True)))
    prim_counts = {str(k): int(v) for k, v in prim_counts.items()}
    records = DopantRecommender(n_max=n_recommend).fit().recommend(host.atoms)
    sampler = SamplerConfig(supercell_atoms=(n_atoms, n_atoms))
    calc = None if config.tier == "mass" else get_calculator(config.potential)
    tier = get_tier(config.tier)
    print(f"[{name}] host ready in {time.perf_counter() - t0:.0f} s: {n_atoms} atoms, "
          f"{host.n_imaginary} imaginary q-mesh modes, {len(records)} records", flush=True)

    out = {k: [] for k in ("doped", "doped_gpdos", "targets", "candidates", "n_dopants", "scenario")}
    rng = np.random.default_rng([seed, sorted(HOSTS).index(name)])
    vocab = {el: i for i, el in enumerate(DOPANTS)}
    t1 = time.perf_counter()
    for k in range(n_per_host):
        scen = sample_scenario(records, prim_counts, sampler, rng)
        specs = [DopantSpec(d, s, c) for d, s, c in scen.dopants]
        doped_atoms, sub = substitute(sc_atoms, specs, np.random.default_rng(scen.seed))
        idx = np.array(sorted(i for v in sub.indices.values() for i in v), dtype=int)
        res = tier(DopedSystem(doped_atoms, idx, fc0, host, calc, False), config.tier_settings)
        doped, _ = gamma_spectrum(res.fc, res.atoms, config.grid, **config.broadening())
        d_symbols = doped_atoms.get_chemical_symbols()
        d_els, d_counts = np.unique(d_symbols, return_counts=True)
        d_gpdos = doped.neutron_weighted({str(e): c / n_atoms for e, c in zip(d_els, d_counts)})
        t = np.zeros(len(DOPANTS), np.float32)
        for el, c in sub.concentrations.items():
            t[vocab[el]] = c
        cand = np.zeros(len(DOPANTS), bool)
        cand[[vocab[el] for el in scen.candidates]] = True
        for key, val in (("doped", doped.values), ("doped_gpdos", d_gpdos.values), ("targets", t),
                         ("candidates", cand), ("n_dopants", len(sub.concentrations)),
                         ("scenario", json.dumps(scen.to_dict()))):
            out[key].append(val)
        if progress and (k + 1) % 10 == 0:
            print(f"[{name}] {k + 1}/{n_per_host} samples, {(time.perf_counter() - t1) / (k + 1):.1f} s each", flush=True)
    n = n_per_host
    return {
        "pristine": np.repeat(pristine.values[None].astype(np.float32), n, 0),
        "pristine_gpdos": np.repeat(p_gpdos.values[None].astype(np.float32), n, 0),
        "doped": np.stack(out["doped"]).astype(np.float32),
        "doped_gpdos": np.stack(out["doped_gpdos"]).astype(np.float32),
        "targets": np.stack(out["targets"]),
        "candidates": np.stack(out["candidates"]),
        "composition": np.repeat(comp[None], n, 0),
        "n_dopants": np.array(out["n_dopants"], np.int8),
        "supercell_atoms": np.full(n, n_atoms, np.int16),
        "scenario": np.array(out["scenario"]),
        "imaginary": np.array([host.n_imaginary]),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tier", default="mass", choices=["mass", "patch", "local", "full"])
    ap.add_argument("--potential", default="chgnet")
    ap.add_argument("--hosts", default=",".join(HOSTS), help="comma-separated names from HOSTS")
    ap.add_argument("--per-host", type=int, default=40)
    ap.add_argument("--n-recommend", type=int, default=20, help="recommender records per host (dopant pool)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="training file to write (.h5 or .npz)")
    ap.add_argument("--parts", default=None, help="per-host cache directory (default: OUT with suffix .parts)")
    ap.add_argument("--merge-only", action="store_true", help="only merge the hosts already in the cache")
    args = ap.parse_args(argv)

    from defectnet.model.dataset import TrainingData, write_training_file
    from defectnet.phonons.potentials import potential_info
    from defectnet.simulate import SimulationConfig

    config = SimulationConfig(tier=args.tier, potential=args.potential, supercell_atoms=(433, 500), seed=args.seed)
    out = Path(args.out)
    parts = Path(args.parts) if args.parts else out.with_suffix(".parts")
    parts.mkdir(parents=True, exist_ok=True)
    names = [h.strip() for h in args.hosts.split(",") if h.strip()]
    if args.merge_only:
        names = [h for h in names if (parts / f"{h}.npz").exists()]
    for name in names:
        f = parts / f"{name}.npz"
        if f.exists():
            print(f"[{name}] cached", flush=True)
            continue
        arrays = build_host(name, config, args.per_host, args.seed, args.n_recommend, progress=True)
        np.savez_compressed(f.with_suffix(".tmp.npz"), **arrays)
        os.replace(f.with_suffix(".tmp.npz"), f)

    rows = {}
    for h, name in enumerate(names):
        with np.load(parts / f"{name}.npz") as z:
            n = len(z["targets"])
            for k in z.files:
                if k != "imaginary":
                    rows.setdefault(k, []).append(z[k])
            rows.setdefault("host_id", []).append(np.full(n, h, np.int32))
    arrays = {k: np.concatenate(v) for k, v in rows.items()}
    scenarios = arrays.pop("scenario")
    arrays["sample_id"] = np.arange(len(arrays["targets"]), dtype=np.int64)
    attrs = {
        "potential": json.dumps(potential_info(config.potential).to_dict()),
        "tier": config.tier,
        "broadening": json.dumps(config.broadening()),
        "config": json.dumps({"builder": "benchmarks/dev_dataset.py", "simulation": config.to_dict(),
                              "per_host": args.per_host, "n_recommend": args.n_recommend,
                              "scenarios": scenarios.tolist()}, default=str),
    }
    data = TrainingData(**arrays, host_names=np.array(names, dtype=object), grid=config.grid, attrs=attrs)
    write_training_file(data, out)
    print(f"wrote {out}: {len(data)} samples, {len(names)} hosts", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
