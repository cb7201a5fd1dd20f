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
  as the simulated one (``--host X`` given GaAs files), and every host's pristine against GaAs;
* **stretched or shifted doped spectra** — ``doped_consistency`` (its stretch and shift criteria,
  ``MIN_STRETCH``, ``MAX_STRETCH_RESIDUAL``, ``MIN_SHIFT``, ``MAX_SHIFT_RESIDUAL``) and the doped
  band-edge window of every committed doped spectrum with its energies × 1.2, 1.4, 1.6 (and ÷), and
  + 0.05, 0.1, 0.15 of the band edge: how many ``predict`` refuses, by total concentration;
* **swapped files** — ``swap_consistency`` (``MAX_CLOSER``, ``CLOSER_NOISE_SIGMAS``,
  ``MAX_TAIL_EXCESS``) of every committed pair the right way round and swapped, against the
  host's q-mesh PDoS (total PDoS: what ``predict`` without a basis compares with) and against the
  pristine supercell (GPDoS: what a basis holds), with what else ``predict`` refuses a swapped
  pair for; and on ``--noise-pairs`` seeded pairs with 10 % and 30 % counting noise.

    python benchmarks/consistency.py            # the tables, ~2 min on one core
    python benchmarks/consistency.py --swaps    # + stretched and swapped pairs, ~40 min on one core;
                                                #   writes benchmarks/results/consistency/consistency.{json,md}

The thresholds and their reasons are in ``src/defectnet/checks/`` (``consistency.py``, ``plausibility.py``)
and ``docs/predict-checks.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "gaas-si-zn"
BINS = (0.0, 0.01, 0.03, 0.10, 0.20, 0.31)
OUT = ROOT / "benchmarks" / "results" / "consistency"
STRETCHES = (1.2, 1.4, 1.6, 1 / 1.2, 1 / 1.4)
SHIFTS = (0.05, 0.1, 0.15)  # offsets of the doped energies, shares of the pristine's band edge
NOISE_LEVELS = (0.1, 0.3)


def load_arrays(paths) -> dict:
    """Every committed sample as arrays on the files' one grid: ``host`` names, ``total`` concentration,
    ``p``/``d`` pristine and doped GPDoS, ``pt``/``dt`` their total PDoS, ``q`` the host's q-mesh total PDoS,
    ``edges`` (meV)."""
    from defectnet.data.training_file import read_training_file
    from defectnet.grid import EnergyGrid

    parts = {k: [] for k in ("host", "total", "p", "d", "pt", "dt", "q")}
    edges = None
    for path in paths:
        d = read_training_file(path)
        grid = EnergyGrid.from_dict(d["grid"])
        if edges is not None and not np.array_equal(edges, grid.edges):
            raise SystemExit(f"{path}: another energy grid than the files before it")
        edges = grid.edges
        parts["host"] += [d["host_names"][h] for h in d["host_id"]]
        parts["total"].append(np.asarray(d["targets"], float).sum(1))
        for key, name in (("p", "pristine_gpdos"), ("d", "doped_gpdos"), ("pt", "pristine"), ("dt", "doped"),
                          ("q", "host_pdos")):
            parts[key].append(np.asarray(d[name], float))
    out = {k: (v if k == "host" else np.concatenate(v)) for k, v in parts.items()}
    return out | {"edges": edges}


def load(paths):
    """Per sample (host, total concentration, pristine GPDoS, doped GPDoS) and per host (pristine total,
    q-mesh total, pristine GPDoS) as Spectrum objects on the files' grid."""
    from defectnet.data.training_file import read_training_file
    from defectnet.grid import EnergyGrid
    from defectnet.spectrum import Spectrum

    samples, hosts = [], {}
    for path in paths:
        d = read_training_file(path)
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
    per = sorted(((x["in_band"] / c, h, c) for h, c, x, _ in rows if c > 0), reverse=True)
    print(f"in band / total concentration (MAX_IN_BAND_PER_FRACTION): {quantiles([r[0] for r in per])}; largest: "
          + ", ".join(f"{h} {100 * c:.1f} at.% {r:.2f}" for r, h, c in per[:5]))
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


def by_total(flags, totals) -> dict:
    """{"all": share of ``flags`` set, "<1 at.%": ..., ...} over the bins of total concentration."""
    flags, totals = np.asarray(flags, bool), np.asarray(totals)
    out = {"all": round(float(flags.mean()), 4)}
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        sel = (totals >= lo) & (totals < hi)
        if sel.any():
            out[f"{100 * lo:g}-{100 * hi:g} at.%"] = round(float(flags[sel].mean()), 4)
    return out


def _shifted(spectrum, shift_mev: float):
    """``spectrum`` with its energies + ``shift_mev`` ≥ 0 (an offset of the energy zero: the file starts there)."""
    from defectnet.spectrum import Spectrum

    return Spectrum(spectrum.edges_mev + shift_mev, spectrum.values)


def stretched(data, moved_pairs: int, seed: int = 0) -> dict:
    """Every committed doped GPDoS against its pristine as given, and ``moved_pairs`` seeded ones with their energies
    × each of STRETCHES and + each of SHIFTS (shares of the pristine's band edge): what doped_consistency and the
    doped band-edge window say."""
    from defectnet.checks import (DOPED_EDGE_WINDOW, MAX_SHIFT_RESIDUAL, MAX_STRETCH_RESIDUAL, MIN_SHIFT, MIN_STRETCH,
                                  band_edge, doped_consistency)
    from defectnet.spectrum import Spectrum

    edges, n = data["edges"], len(data["host"])
    moves = [(f"x{f:.3g}", f, 0.0) for f in STRETCHES] + [(f"+{d:g} of the band edge", 1.0, d) for d in SHIFTS]
    pick = set(np.random.default_rng(seed).choice(n, size=min(moved_pairs, n), replace=False).tolist())
    rows, refused = [], {label: np.zeros(n, bool) for label, _, _ in moves}
    for i in range(n):
        p, d = Spectrum(edges, data["p"][i]), Spectrum(edges, data["d"][i])
        c = doped_consistency(p, d)
        rows.append((c["consistent"], c["stretch"], c["stretch_residual"], c["stretched"], c["shift_mev"] / c["band_edge_mev"],
                     c["shift_residual"], c["shifted"]))
        for label, f, shift in moves if i in pick else ():
            moved = _shifted(d.scale_energy(f), shift * c["band_edge_mev"])
            ratio = band_edge(moved) / band_edge(p)
            outside = not DOPED_EDGE_WINDOW[0] <= ratio <= DOPED_EDGE_WINDOW[1]
            refused[label][i] = outside or doped_consistency(p, moved)["consistent"] is False
    consistent, stretch, residual, flagged, shift, shift_residual, shifted = (np.array(x) for x in zip(*rows))

    def least(size, best, res, far, threshold):
        """The pairs whose best match is ``far`` from as given, with the least residual per unit of ``size``."""
        k = res[far] / size[far]
        idx = np.flatnonzero(far)[np.argsort(k)[:5]]
        return {"beyond": int(far.sum()), "least_residual_per_unit": round(float(k.min()), 4) if k.size else None,
                "threshold": threshold,
                "least": [{"host": data["host"][i], "total_at_pct": round(100 * float(data["total"][i]), 1),
                           "best": round(float(best[i]), 3), "residual": round(float(res[i]), 5)} for i in idx]}

    log_s = np.abs(np.log(stretch))
    out = {"pairs": n, "refused_as_given": int(np.sum(~consistent)), "stretched_as_given": int(flagged.sum()),
           "shifted_as_given": int(shifted.sum()),
           "best_stretch_quantiles": {q: round(float(np.quantile(stretch, q)), 4) for q in (0, 0.001, 0.5, 0.999, 1)},
           "stretch": least(log_s, stretch, residual, log_s >= np.log(MIN_STRETCH), MAX_STRETCH_RESIDUAL),
           "shift": least(np.abs(shift), shift, shift_residual, np.abs(shift) >= MIN_SHIFT, MAX_SHIFT_RESIDUAL),
           "moved_pairs": len(pick),
           "refused_when_moved": {label: by_total(refused[label][sorted(pick)], data["total"][sorted(pick)])
                                  for label, _, _ in moves}}
    print(f"\n## stretched or shifted doped spectra ({n} committed pairs; refused as given: {out['refused_as_given']})")
    for what in ("stretch", "shift"):
        r = out[what]
        print(f"{what}: {r['beyond']} best beyond the minimum, least residual per |ln s| or |δ| "
              f"{r['least_residual_per_unit']} (threshold {r['threshold']}): "
              + ", ".join(f"{x['host']} {x['total_at_pct']} at.% at {x['best']}" for x in r["least"]))
    for label, rates in out["refused_when_moved"].items():
        print(f"doped energies {label}: refused {rates}")
    return out


def _noisy(v, level, rng):
    return v * np.clip(1 + level * rng.standard_normal(v.size), 0, None) if level else v


def swapped(data, *, noise_pairs: int = 1000, seed: int = 0) -> dict:
    """swap_consistency of committed pairs the right way round and swapped, and what else refuses a swapped pair.

    ``no basis``: every pair's total PDoS against the host's q-mesh PDoS (what predict computes with the
    MLIP); ``basis``: ``noise_pairs`` seeded pairs' GPDoS against the pristine supercell's GPDoS (what a
    basis holds; the right way round the pristine is the reference itself). Then the same pairs with
    counting noise (NOISE_LEVELS) on both spectra, the right way round."""
    from defectnet.checks import doped_consistency, host_consistency, swap_consistency
    from defectnet.spectrum import Spectrum

    edges, n = data["edges"], len(data["host"])

    def one(p, d, ref):
        p, d, ref = Spectrum(edges, p), Spectrum(edges, d), Spectrum(edges, ref)
        hp, hd = host_consistency(p, ref), host_consistency(d, ref)
        right, swap = swap_consistency(p, d, ref, hp, hd), swap_consistency(d, p, ref, hd, hp)
        refused = swap["swapped"] or not hd["consistent"] or doped_consistency(d, p)["consistent"] is False
        return right, swap, refused

    out = {}
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(noise_pairs, n), replace=False))
    for label, keys, which in (("no basis: total PDoS vs the q-mesh PDoS", ("pt", "dt", "q"), np.arange(n)),
                               ("basis: GPDoS vs the pristine supercell", ("p", "d", "p"), sample)):
        rows = [one(*(data[k][i] for k in keys)) for i in which]
        right, swap, refused = zip(*rows)
        closer = np.array([r["closer"] for r in right])
        tails = np.array([r["tail_excess"] if r["tail_excess"] is not None else -1.0 for r in right])
        caught = np.array([s["swapped"] for s in swap])
        totals = data["total"][which]
        out[label] = {
            "pairs": int(which.size), "right_way_flagged": int(sum(r["swapped"] for r in right)),
            "right_way_closer_max": round(float(closer.max()), 5), "right_way_tail_excess_max": round(float(tails.max()), 5),
            "swapped_flagged": by_total(caught, totals),
            "swapped_flagged_by_distance": round(float(np.mean([s["by_distance"] for s in swap])), 4),
            "swapped_flagged_by_tail": round(float(np.mean([s["by_tail"] for s in swap])), 4),
            "swapped_refused_at_all": by_total(refused, totals)}
        print(f"\n## swapped files, {label}: {out[label]}")
    pick = sample
    for level in NOISE_LEVELS:
        for label, keys in (("no basis", ("pt", "dt", "q")), ("basis", ("p", "d", "p"))):
            rows = [one(_noisy(data[keys[0]][i], level, rng), _noisy(data[keys[1]][i], level, rng), data[keys[2]][i])
                    for i in pick]
            right = [r for r, _, _ in rows]
            key = f"{label}, {100 * level:g} % counting noise"
            out[key] = {"pairs": int(pick.size), "right_way_flagged": int(sum(r["swapped"] for r in right)),
                        "right_way_tail_excess_max": round(max(r["tail_excess"] or -1.0 for r in right), 5),
                        "right_way_closer_over_threshold_max": round(max(r["closer"] - r["threshold"] for r in right), 5),
                        "swapped_flagged": round(float(np.mean([s["swapped"] for _, s, _ in rows])), 4)}
            print(f"## swapped files, {key}: {out[key]}")
    return out


def write_results(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "consistency.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    prov, st = result["provenance"], result["stretched"]
    lines = ["# Stretched and swapped spectra against the checks of `predict` (issue 34)", "",
             f"{st['pairs']} committed pairs ({result['data']}), {result['minutes']} min. "
             f"Commit {prov['commit']}, `{prov['command']}`, {prov['date']}.", "",
             "## Doped energies stretched or shifted", "",
             f"As given: {st['refused_as_given']} refused ({st['stretched_as_given']} taken for stretched, "
             f"{st['shifted_as_given']} for shifted)."]
    for what, unit in (("stretch", "|ln stretch|"), ("shift", "|shift| (share of the band edge)")):
        r = st[what]
        lines.append(f"- {what}: {r['beyond']} pairs have their best match beyond the minimum; the least in-band "
                     f"residual per {unit} among them is {r['least_residual_per_unit']} (threshold {r['threshold']}): "
                     + ", ".join(f"{x['host']} {x['total_at_pct']} at.% at {x['best']}" for x in r["least"]) + ".")
    bins = next(iter(st["refused_when_moved"].values()))
    lines += ["", "| doped energies | " + " | ".join(bins) + " |", "| --- |" + " --- |" * len(bins)]
    for f, rates in st["refused_when_moved"].items():
        lines.append(f"| {f} | " + " | ".join(f"{100 * v:.1f} %" for v in rates.values()) + " |")
    lines += ["", f"Share of {st['moved_pairs']} seeded pairs refused (by the stretch or shift criterion, the in-band "
              "distance or the band-edge window), by the sample's total dopant concentration.", "",
              "## Pristine and doped swapped", ""]
    for key, r in result["swapped"].items():
        lines.append(f"- **{key}**: " + "; ".join(f"{k} {v}" for k, v in r.items()))
    (out / "consistency.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="datasets/reference,datasets/textbook", help="folders of committed chunks")
    ap.add_argument("--swaps", action="store_true", help="also measure stretched and swapped pairs and write the results")
    ap.add_argument("--noise-pairs", type=int, default=1000,
                    help="seeded pairs for the swap check against a basis' pristine and with counting noise")
    ap.add_argument("--moved-pairs", type=int, default=2000, help="seeded pairs stretched and shifted")
    ap.add_argument("--out", type=Path, default=OUT, help="folder for consistency.{json,md}")
    args = ap.parse_args(argv)
    paths = sorted(p for folder in args.data.split(",") for p in (ROOT / folder).glob("*.h5"))
    if args.swaps:
        from defectnet.provenance import provenance

        t0, prov = time.perf_counter(), provenance()
        data = load_arrays(paths)
        print(f"{len(data['host'])} spectra of {len(set(data['host']))} hosts from {len(paths)} files")
        result = {"stretched": stretched(data, args.moved_pairs), "swapped": swapped(data, noise_pairs=args.noise_pairs)}
        result |= {"data": args.data, "minutes": round((time.perf_counter() - t0) / 60, 1), "provenance": prov}
        write_results(result, args.out)
        return 0
    samples, hosts = load(paths)
    print(f"{len(samples)} spectra of {len(hosts)} hosts from {len(paths)} files")
    doped_vs_pristine(samples, hosts)
    same_host(hosts)
    other_hosts(hosts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
