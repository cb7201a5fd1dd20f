"""How many dopants sit in clusters, and how often the cluster tier's patch cache is hit (no MLIP).

For Si and GaAs from the host library, in the data's supercells (433–500 atoms, as
``defectnet.doping.choose_supercell`` builds them), dopants are placed at random (seeded)
at 1, 5, 10 and 25 % of all atoms, and grouped as the ``cluster`` tier groups them: two
dopants are linked within the patch cutoff (``TierSettings().cutoff_ang``, 4.6 Å). Reported:
the share of dopants that have another within the cutoff, the share in clusters small enough
to be patched together (≤ ``ClusterSettings().max_dopants``), and the cache hit rate over the
samples (1 − distinct canonical keys / clusters met; keys up to the host's space group).

    python benchmarks/cluster_stats.py                 # 10 placements per cell
    python benchmarks/cluster_stats.py --samples 40

Writes ``benchmarks/results/cluster/cluster_stats.{json,md}`` with provenance.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from ase.build import make_supercell

from defectnet.doping import DEFAULT_SUPERCELL_ATOMS, choose_supercell
from defectnet.hosts import load_host
from defectnet.phonons.clusters import ClusterSettings, cluster_statistics
from defectnet.phonons.forceconstants import TierSettings
from defectnet.phonons.host import standardize_primitive
from defectnet.provenance import provenance

#: host -> dopants as (element, site element, share of the total fraction)
CASES = {
    "Si": [("B", "Si", 1.0)],
    "GaAs": [("Zn", "Ga", 1.0)],
    "GaAs (both sublattices)": [("Zn", "Ga", 0.5), ("Se", "As", 0.5)],
}
FRACTIONS = (0.01, 0.05, 0.10, 0.25)
OUT = Path(__file__).parent / "results" / "cluster"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    cutoff, max_dopants = TierSettings().cutoff_ang, ClusterSettings().max_dopants
    rows = []
    for case, dopants in CASES.items():
        name = case.split()[0]
        primitive, _ = standardize_primitive(load_host(name).to_atoms())
        P = choose_supercell(primitive, DEFAULT_SUPERCELL_ATOMS)
        sc = make_supercell(primitive, P)
        for r in cluster_statistics(primitive, sc, dopants, FRACTIONS, cutoff, samples=args.samples, seed=args.seed,
                                    max_dopants=max_dopants):
            rows.append({"host": case, "atoms": len(sc), "supercell_matrix": np.asarray(P).tolist(),
                         "dopants": [list(d) for d in dopants], **r})
            hit = "-" if r["hit_rate"] is None else f"{100 * r['hit_rate']:.1f} %"
            print(f"{case:24s} {len(sc):4d} {100 * r['fraction']:4.0f} %  in clusters {100 * r['in_clusters']:5.1f} %  "
                  f"patched together {100 * r['in_patched_clusters']:5.1f} %  largest {r['largest_cluster']:4d}  "
                  f"hit rate {hit} "
                  f"({r['distinct_keys']} keys / {r['lookups']} clusters)", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"cutoff_ang": cutoff, "max_dopants": max_dopants, "samples": args.samples, "seed": args.seed,
            "provenance": provenance()}
    (args.out / "cluster_stats.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = [
        "# Dopants in clusters, and the cluster tier's cache hit rate",
        "",
        f"Random placement ({args.samples} seeded placements per row), linked within {cutoff:g} Å "
        f"(`TierSettings().cutoff_ang`); clusters of 2–{max_dopants} dopants are patched together, larger "
        "ones fall back to single patches. Hit rate = 1 − distinct canonical keys / clusters met over the "
        "row's placements (cache empty at the start of the row). No force call.",
        "",
        "| host | atoms | dopants | fraction | in clusters | patched together | largest cluster | keys / clusters | hit rate |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        dop = ", ".join(f"{el}@{site}" for el, site, _ in r["dopants"])
        hit = "–" if r["hit_rate"] is None else f"{100 * r['hit_rate']:.1f} %"
        lines.append(f"| {r['host']} | {r['atoms']} | {dop} | {100 * r['fraction']:.0f} % | {100 * r['in_clusters']:.1f} % "
                     f"| {100 * r['in_patched_clusters']:.1f} % | {r['largest_cluster']} | {r['distinct_keys']} / "
                     f"{r['lookups']} | {hit} |")
    p = meta["provenance"]
    lines += ["", f"Made by `{p['command']}` at commit {p['commit']} on {p['date']} (defectnet {p['defectnet']})."]
    (args.out / "cluster_stats.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
