"""±1σ with measured errors (issue 38): does the reported uncertainty cover the truth when the files carry errors?

A user's pristine and doped files may carry per-bin 1σ counting errors; ``predict --basis B --method unmix``
then weighs the fit of Δ = doped − pristine by them and reports the least-squares covariance with them,
widened when χ²/dof shows more than counting noise (:func:`defectnet.unmix.error_inflation`). Here, on
committed spectra of hosts with a committed basis (GaAs and hosts of five other families), measurements are
simulated with counting noise of known σ, the σ written as the files' error column, and the files read by
:func:`defectnet.predict.predict_defects` (``method="unmix"``), the path of the command. Two forward models:

* ``basis``: doped = pristine + Σ Δ_k(c_k) on the basis' own curves, at each sample's concentrations: no
  model error, so ±1σ should cover 68 % of the true dopants if the σ is right (a sample whose curves sum to
  a density below 0 by more than its 1σ, a mix the basis cannot make, is left out and counted);
* ``fresh``: the sample's committed doped spectrum: its own placement, its mix of up to six dopants
  simulated whole (0.2–25 at.%), which the basis, one candidate at a time at 1, 5 and 15 at.%, only
  approximates: the model error a measurement also has (and more: the potential's own error).

Counting noise is the convention of :func:`defectnet.limits.counting_noise` (a bin's share q of the area
gets noise · √(q / B) · N(0, 1), Poisson statistics of B / noise² counts), plus a flat background (2 % of the
area over the grid, subtracted) so that a bin without signal has an error too; not clipped. A file covers
energies up to 1.5 × the highest where the host or a candidate has signal (an instrument's range). Each true
dopant is scored by |c − c_true| ≤ k σ, k = 1, 2 (nominal 0.68, 0.95), under four readings of the same
fits: as reported; the covariance alone (σ / ``sigma_inflation``: counting noise only); the Birge ratio
(the covariance × √max(1, χ²/dof)); and the same files without their errors (the residual-based 1σ ×
``SIGMA_SCALE``, the values clipped at 0: what a user who gives no errors gets, the reference that knows
nothing of them).

    python benchmarks/error_calibration.py          # ~5 min on one core (8 hosts × 20 samples × 8 fits)

Writes ``benchmarks/results/error_calibration/error_calibration.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: GaAs (textbook dopants) and hosts of the zincblende, rocksalt, chalcopyrite and wurtzite families.
HOSTS = ("GaAs", "CdTe", "BAs-zincblende", "CdS-zincblende", "LaSb-rocksalt", "EuS-rocksalt", "CuInSe2",
         "KI-wurtzite")
#: The training files that hold their samples.
FILES = ("datasets/textbook/textbook-001.h5", "datasets/reference/chunk-007.h5", "datasets/reference/chunk-016.h5",
         "datasets/reference/chunk-022.h5", "datasets/reference/chunk-023.h5", "datasets/reference/chunk-024.h5")
#: Flat background under the spectrum, as a share of its area over the grid (subtracted; its noise stays).
BACKGROUND = 0.02
#: A measurement covers energies up to this factor × the highest where the host or a candidate has signal.
RANGE = 1.5
#: The readings of the fits scored, in the tables' order.
READINGS = ("as reported", "covariance alone", "Birge ratio", "no errors given")


def measured(values, grid, noise: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """A measurement of ``values`` (B,), unit area per meV on ``grid``: (values with counting noise, their 1σ),
    both (B,) per meV; noise · √((q + background) / B) on each bin's share q, the background subtracted."""
    q = np.asarray(values, float) * grid.widths
    background = BACKGROUND * grid.widths / float(grid.widths.sum())
    sigma = noise * np.sqrt((np.clip(q, 0.0, None) + background) / q.size)
    return (q + sigma * rng.standard_normal(q.size)) / grid.widths, sigma / grid.widths


def measured_range(basis) -> int:
    """How many bins of the basis grid a measurement covers: up to RANGE × the highest energy (meV) where the
    pristine or a candidate's curve exceeds 1e-3 of its largest value (an instrument's range, not the grid's
    500 meV: noise about 0 up there would be most of the file)."""
    g = basis.grid
    rows = np.vstack([basis.pristine["gpdos"], np.abs(basis.curves["gpdos"]).reshape(-1, g.n_bins)])
    top = max(float(g.centers[np.flatnonzero(np.abs(v) > 1e-3 * np.abs(v).max())[-1]]) for v in rows)
    return int(np.searchsorted(g.edges, RANGE * top))


def read(host: str, basis, pristine, doped, candidates, folder: Path, errors: bool):
    """{element: (concentration, 1σ)} and (χ²/dof, inflation) of predict's unmixing of the
    (values, 1σ) pairs ``pristine`` and ``doped`` over :func:`measured_range`, written as files with their error
    column (``errors``) or without (the values clipped at 0 then: without errors a reader takes no negative
    density)."""
    from defectnet.io import write_spectrum
    from defectnet.predict import predict_defects
    from defectnet.spectrum import Spectrum

    n, paths = measured_range(basis), []
    for name, (v, s) in (("pristine", pristine), ("doped", doped)):
        spec = Spectrum(basis.grid.edges[:n + 1], v[:n] if errors else np.clip(v[:n], 0.0, None), kind="gpdos",
                        errors=s[:n] if errors else None)
        paths.append(write_spectrum(spec, folder / f"{name}.csv"))
    pred = predict_defects(host, paths[1], pristine=paths[0], basis=basis, candidates=candidates, method="unmix")
    rows = {r["element"]: (r["concentration"], r["uncertainty"]) for r in pred.rows}
    return rows, (pred.model.get("chi2_reduced", np.nan), pred.model.get("sigma_inflation", 1.0))


def sample_truth(data, i: int) -> tuple[list, dict]:
    """(candidates, {candidate: atomic fraction}) of sample ``i``."""
    vocab = list(data.vocabulary)
    cands = [vocab[j] for j in np.flatnonzero(data.candidates[i])]
    return cands, {el: float(data.targets[i, vocab.index(el)]) for el in cands}


def score_sample(host, basis, data, i, noises, rng, folder) -> list[dict]:
    """One row per (forward model, noise, true dopant): |error| and the 1σ of each reading, χ²/dof; one row
    ``refused`` (predict's error) per measurement that predict refused; none for the basis' own curves where
    they sum to a negative density beyond counting noise (a mix the basis cannot make)."""
    from defectnet.errors import DefectnetError
    from defectnet.unmix import contributions

    cands, truth = sample_truth(data, i)
    p0 = np.asarray(data.pristine_gpdos[i], float)
    models = {"basis": p0 + sum(contributions(basis, truth, kind="gpdos").values()),
              "fresh": np.asarray(data.doped_gpdos[i], float)}
    out = []
    for model, d0 in models.items():
        for noise in noises:
            p, d = measured(p0, basis.grid, noise, rng), measured(d0, basis.grid, noise, rng)
            if np.any(d0 < -d[1]):
                out.append({"host": host, "model": model, "noise": noise, "unphysical": True})
                continue
            try:
                weighted, (chi2, factor) = read(host, basis, p, d, cands, folder, errors=True)
                plain, _ = read(host, basis, p, d, cands, folder, errors=False)
            except DefectnetError as exc:  # counted: a refusal of a measurement with honest errors is a finding
                out.append({"host": host, "model": model, "noise": noise, "refused": str(exc)})
                continue
            for el in (e for e in cands if truth[e] > 0):
                c, s = weighted[el]
                out.append({"host": host, "model": model, "noise": noise, "element": el, "error": abs(c - truth[el]),
                            "plain_error": abs(plain[el][0] - truth[el]), "chi2": chi2, "inflation": factor,
                            "sigma": {"as reported": s, "covariance alone": s / factor,
                                      "Birge ratio": s / factor * np.sqrt(max(chi2, 1.0)),
                                      "no errors given": plain[el][1]}})
    return out


def coverage(rows: list[dict], reading: str) -> dict:
    """Shares of the true dopants within ±1σ and ±2σ under ``reading``, and the factor on σ that covers 68 %."""
    key = "plain_error" if reading == "no errors given" else "error"
    e = np.array([r[key] for r in rows])
    s = np.array([r["sigma"][reading] for r in rows])
    z = np.divide(e, s, out=np.full(e.size, np.inf), where=s > 0)
    return {"n": int(e.size), "coverage_1sigma": float(np.mean(z <= 1)), "coverage_2sigma": float(np.mean(z <= 2)),
            "factor_for_68": float(np.quantile(z, 0.68)), "mae_at_pct": float(100 * e.mean())}


def summarise(rows: list[dict], noises) -> dict:
    """{"<model>, noise <x>": {reading: coverage, "chi2_median", "inflation_median", "per_host"}}."""
    table = {}
    for model in ("basis", "fresh"):
        for noise in noises:
            part = [r for r in rows if r["model"] == model and r["noise"] == noise and "error" in r]
            entry = {reading: coverage(part, reading) for reading in READINGS}
            entry["unphysical"] = sum(1 for r in rows if r["model"] == model and r["noise"] == noise
                                      and "unphysical" in r)
            entry["refused"] = [r["refused"] for r in rows if r["model"] == model and r["noise"] == noise
                                and "refused" in r]
            entry["chi2_median"] = float(np.median([r["chi2"] for r in part]))
            entry["inflation_median"] = float(np.median([r["inflation"] for r in part]))
            entry["per_host"] = {h: coverage([r for r in part if r["host"] == h], "as reported")["coverage_1sigma"]
                                 for h in dict.fromkeys(r["host"] for r in part)}
            table[f"{model}, noise {noise:g}"] = entry
    return table


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", default=",".join(HOSTS))
    ap.add_argument("--data", default=",".join(FILES))
    ap.add_argument("--bases", default="datasets/reference/bases")
    ap.add_argument("--per-host", type=int, default=20, help="samples drawn from each host")
    ap.add_argument("--noise", default="0.02,0.1", help="relative counting noise (limits' convention), comma-separated")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "error_calibration")
    args = ap.parse_args(argv)

    from defectnet.model.conditioned_train import basis_training_data
    from defectnet.provenance import provenance
    from defectnet.unmix import SIGMA_SCALE

    t0, prov = time.perf_counter(), provenance()
    hosts, noises = args.hosts.split(","), [float(x) for x in args.noise.split(",")]
    data, _, bases, _ = basis_training_data(args.data, args.bases, seed=args.seed)
    names = np.asarray(data.host_names, str)[data.host_id]
    rng, rows = np.random.default_rng(args.seed), []
    with tempfile.TemporaryDirectory() as tmp:
        for host in hosts:
            idx = rng.permutation(np.flatnonzero(names == host))[:args.per_host]
            for i in idx:
                rows += score_sample(host, bases[host], data, int(i), noises, rng, Path(tmp))
            print(f"{host}: {len(idx)} samples, {time.perf_counter() - t0:.0f} s", flush=True)
    result = {"hosts": hosts, "samples_per_host": args.per_host, "noise": noises, "background": BACKGROUND,
              "sigma_scale": SIGMA_SCALE, "rows": summarise(rows, noises), "seconds": time.perf_counter() - t0,
              "provenance": prov}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "error_calibration.json").write_text(json.dumps(result, indent=1, default=float))
    (args.out / "error_calibration.md").write_text(table_md(result))
    print(table_md(result))


def table_md(r: dict) -> str:
    """The results as a Markdown table, one row per forward model, noise and reading."""
    lines = [f"# ±1σ with measured errors ({len(r['hosts'])} hosts × {r['samples_per_host']} samples)", "",
             f"Hosts: {', '.join(r['hosts'])}. Share of the true dopants within ±1σ (nominal 0.68) and ±2σ (0.95); "
             "the factor on σ that would cover 68 %; `no errors given` is the same files without their error "
             "column (residual-based 1σ × SIGMA_SCALE), the reference that knows nothing of the errors.", "",
             "| forward model, noise | reading | true dopants | ±1σ | ±2σ | factor for 68 % | MAE (at.%) | "
             "median χ²/dof | median inflation |", "|---|---|---|---|---|---|---|---|---|"]
    for key, e in r["rows"].items():
        for reading in READINGS:
            m = e[reading]
            extra = f"{e['chi2_median']:.2f} | {e['inflation_median']:.2f}" if reading == "as reported" else " | "
            lines.append(f"| {key} | {reading} | {m['n']} | {m['coverage_1sigma']:.2f} | {m['coverage_2sigma']:.2f} | "
                         f"{m['factor_for_68']:.2f} | {m['mae_at_pct']:.3f} | {extra} |")
    refused = {k: len(e["refused"]) for k, e in r["rows"].items() if e["refused"]}
    unphysical = sum(e["unphysical"] for e in r["rows"].values())
    lines += ["", f"Measurements predict refused (left out): {refused or 'none'}. Measurements whose basis curves "
              f"sum to a negative density beyond 1σ (a mix the basis cannot make; left out of `basis`): {unphysical}."]
    lines += ["", "±1σ as reported, per host: " + "; ".join(
        f"{key}: " + ", ".join(f"{h} {v:.2f}" for h, v in e["per_host"].items()) for key, e in r["rows"].items())]
    p = r["provenance"]
    lines += ["", f"Commit {p['commit']}, `{p['command']}`, {p['date']}, {r['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
