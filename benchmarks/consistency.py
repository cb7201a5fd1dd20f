"""Where the host-consistency thresholds of ``predict`` come from (``defectnet.checks``, issue 34).

``predict`` refuses a measured pristine spectrum that is unlike the host's simulated one at its
best energy scale (``MAX_HOST_DISTANCE``), a doped spectrum unlike its pristine
(``MAX_IN_BAND_DISTANCE``, ``MAX_ROUGHNESS``), and a stated energy unit that puts a spectrum's band edge more than
``MAX_EDGE_FACTOR`` from the host's. This prints, on the committed data (every spectrum of
``datasets/reference`` and ``datasets/textbook``, GPDoS unless said), the distributions those
thresholds must separate:

* **doped vs pristine** — ``doped_consistency`` of every committed doped spectrum (0.2-30 at.%
  of dopants in all) against its pristine, by total concentration, the ratio of their band
  edges (``DOPED_EDGE_WINDOW``) and their roughness (``MAX_ROUGHNESS``); against it, the
  bundled GaAs pristine with a doped file of uniform random noise and with every other
  host's pristine as the doped file;
* **same host** — ``host_consistency`` of each host's pristine supercell at Γ (what a
  measurement of the crystal stands for; total PDoS) against its q-mesh PDoS (what ``predict``
  simulates);
* **other hosts** — the bundled GaAs pristine measured against every other host's pristine
  as the simulated one (``--host X`` given GaAs files), and every host's pristine against GaAs.

    python benchmarks/consistency.py            # ~2 min on one core

Prints tables only; the thresholds and their reasons are in ``src/defectnet/checks.py`` and
``docs/predict-checks.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "gaas-si-zn"
BINS = (0.0, 0.01, 0.03, 0.10, 0.20, 0.31)


def load(paths):
    """Per sample (host, total concentration, pristine GPDoS, doped GPDoS) and per host (pristine total,
    q-mesh total, pristine GPDoS) as Spectrum objects on the files' grid."""
    from defectnet.data.export import load_training_file
    from defectnet.grid import EnergyGrid
    from defectnet.spectrum import Spectrum

    samples, hosts = [], {}
    for path in paths:
        d = load_training_file(path)
        grid = EnergyGrid.from_dict(d["grid"])
        for i, hid in enumerate(d["host_id"]):
            name = d["host_names"][hid]
            if name not in hosts:
                hosts[name] = tuple(Spectrum.on_grid(grid, np.asarray(d[k][i], float)) for k in
                                    ("pristine", "host_pdos", "pristine_gpdos"))
            samples.append((name, float(d["targets"][i].sum()), Spectrum.on_grid(grid, np.asarray(d["pristine_gpdos"][i], float)),
                            Spectrum.on_grid(grid, np.asarray(d["doped_gpdos"][i], float))))
    return samples, hosts


def quantiles(values) -> str:
    v = np.asarray(values, float)
    q = np.quantile(v, [0.5, 0.9, 0.99]) if v.size else [np.nan] * 3
    return f"n {v.size:5d}  median {q[0]:.4f}  90 % {q[1]:.4f}  99 % {q[2]:.4f}  max {v.max() if v.size else np.nan:.4f}"


def doped_vs_pristine(samples, hosts):
    from defectnet.checks import MAX_IN_BAND_DISTANCE, MAX_ROUGHNESS, band_edge, doped_consistency
    from defectnet.io import read_spectrum
    from defectnet.spectrum import Spectrum

    print(f"\n## doped vs pristine, below the pristine's band edge: W1 / that edge (threshold {MAX_IN_BAND_DISTANCE})")
    rows = [(h, c, doped_consistency(p, d), band_edge(d) / band_edge(p)) for h, c, p, d in samples]
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        sel = [r for r in rows if lo <= r[1] < hi]
        print(f"total {100 * lo:4.0f}-{100 * hi:2.0f} at.%: {quantiles([r[2]['in_band'] for r in sel])}")
    worst = sorted(rows, key=lambda r: -r[2]["in_band"])[:5]
    print("largest:", ", ".join(f"{h} {100 * c:.1f} at.% {x['in_band']:.3f}" for h, c, x, _ in worst))
    print(f"band edge doped / pristine: {quantiles([r[3] for r in rows])}, min {min(r[3] for r in rows):.3f}")
    print(f"roughness of the doped spectra (threshold {MAX_ROUGHNESS}): "
          f"{quantiles([r[2]['roughness']['doped'] for r in rows])}")
    p = read_spectrum(EXAMPLE / "pristine.csv", column="gpdos")
    rng = np.random.default_rng(0)
    for what, v in (("uniform noise (the hostile test's)", rng.uniform(size=p.values.size)),
                    ("30 % counting noise on the doped", read_spectrum(EXAMPLE / "doped.csv", column="gpdos").values
                     * np.clip(1 + 0.3 * rng.standard_normal(p.values.size), 0, None))):
        c = doped_consistency(p, Spectrum(p.edges_mev, v))
        print(f"GaAs example, doped = {what}: in band {c['in_band']:.3f}, roughness {c['roughness']['doped']:.3f}")
    other = sorted((doped_consistency(p, g)["in_band"], h) for h, (_, _, g) in hosts.items() if h != "GaAs")
    print(f"GaAs example, doped = another host's pristine: {quantiles([x for x, _ in other])}; "
          f"{sum(x > MAX_IN_BAND_DISTANCE for x, _ in other)} of {len(other)} beyond the threshold")
    print("  nearest:", ", ".join(f"{h} {x:.3f}" for x, h in other[:8]))


def same_host(hosts):
    from defectnet.checks import MAX_HOST_DISTANCE, host_consistency

    print(f"\n## same host: supercell pristine (Γ) vs q-mesh PDoS, at the best scale (threshold {MAX_HOST_DISTANCE})")
    rows = sorted(((host_consistency(sc, q), h) for h, (sc, q, _) in hosts.items() if q.area() > 0),
                  key=lambda r: -r[0]["distance"])
    print(quantiles([r["distance"] for r, _ in rows]))
    print("largest:", ", ".join(f"{h} {r['distance']:.3f} (×{r['scale']:.2f})" for r, h in rows[:8]))


def other_hosts(hosts):
    from defectnet.checks import MAX_HOST_DISTANCE, host_consistency
    from defectnet.io import read_spectrum

    gaas = read_spectrum(EXAMPLE / "pristine.csv", column="gpdos")
    for title, pairs in (("GaAs files, --host X", [(gaas, g, h) for h, (_, _, g) in hosts.items()]),
                         ("X's files, --host GaAs", [(g, hosts["GaAs"][2], h) for h, (_, _, g) in hosts.items()])):
        rows = sorted(((host_consistency(m, s), h) for m, s, h in pairs), key=lambda r: r[0]["distance"])
        others = [(r, h) for r, h in rows if h != "GaAs"]
        print(f"\n## other hosts, {title}: at the best scale in [0.7, 1.4] (threshold {MAX_HOST_DISTANCE})")
        print("GaAs itself:", ", ".join(f"{r['distance']:.4f} (×{r['scale']:.3f})" for r, h in rows if h == "GaAs"))
        print(quantiles([r["distance"] for r, _ in others]))
        print(f"{sum(r['distance'] <= MAX_HOST_DISTANCE for r, _ in others)} of {len(others)} other hosts within "
              "the threshold; nearest:", ", ".join(f"{h} {r['distance']:.3f} (×{r['scale']:.2f})" for r, h in others[:10]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="datasets/reference,datasets/textbook", help="folders of committed chunks")
    args = ap.parse_args(argv)
    paths = sorted(p for folder in args.data.split(",") for p in (ROOT / folder).glob("*.h5"))
    samples, hosts = load(paths)
    print(f"{len(samples)} spectra of {len(hosts)} hosts from {len(paths)} files")
    doped_vs_pristine(samples, hosts)
    same_host(hosts)
    other_hosts(hosts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
