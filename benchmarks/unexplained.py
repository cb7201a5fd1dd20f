"""How well the unexplained-signature check tells a missing candidate from a complete list (issue 38).

On every spectrum of the conditioned benchmark's never-seen test hosts that holds a dopant of
≥ 1 at.%, the signature is unmixed against the host's basis twice: with the full candidate list
and with the largest true dopant withheld. The check looks at the share of the signature's
norm the best fit leaves unexplained (``residual_fraction``, ‖r‖/‖Δ‖ with the basis' density
weights); the table gives its distribution in both cases and the firing rate of the check at
candidate thresholds, so the threshold ``predict`` uses is read off data.

    python benchmarks/unexplained.py          # ~2 min

Writes ``benchmarks/results/unexplained/unexplained.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from conditioned import TEST_HOSTS

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="datasets/reference,datasets/textbook")
    ap.add_argument("--bases", default="datasets/reference/bases")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "unexplained")
    args = ap.parse_args(argv)

    from defectnet.model.conditioned_train import basis_training_data
    from defectnet.provenance import provenance
    from defectnet.unmix import unmix

    t0, prov = time.perf_counter(), provenance()
    data, _, bases, _ = basis_training_data(args.data, args.bases, seed=0)
    names = np.asarray(data.host_names, str)[data.host_id]
    vocab = list(data.vocabulary)
    rows = {"complete": [], "withheld": []}
    for i in np.flatnonzero(np.isin(names, TEST_HOSTS)):
        t, cand = data.targets[i], data.candidates[i]
        if t.max() < 0.01:
            continue
        basis = bases[names[i]]
        full = [vocab[j] for j in np.flatnonzero(cand)]
        withheld = [el for el in full if el != vocab[int(np.argmax(t))]]
        for label, cands in (("complete", full), ("withheld", withheld)):
            fit = unmix(data.pristine_gpdos[i], data.doped_gpdos[i], basis, kind="gpdos", candidates=cands)
            rows[label].append(fit.fit["residual_fraction"])
    r = {k: np.array(v) for k, v in rows.items()}
    result = {"n": len(r["complete"]), "hosts": list(TEST_HOSTS),
              "quantiles": {k: {str(q): float(np.quantile(v, q)) for q in (0.5, 0.9, 0.95, 0.99)} for k, v in r.items()},
              "firing": {str(th): {k: float(np.mean(v > th)) for k, v in r.items()} for th in THRESHOLDS},
              "seconds": time.perf_counter() - t0, "provenance": prov}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "unexplained.json").write_text(json.dumps(result, indent=1))
    (args.out / "unexplained.md").write_text(table_md(result))
    print(table_md(result))


def table_md(r: dict) -> str:
    lines = [f"# Unexplained share of the signature, complete list vs largest dopant withheld ({r['n']} spectra)", "",
             "| list | median | 90 % | 95 % | 99 % |", "|---|---|---|---|---|"]
    for k, q in r["quantiles"].items():
        lines.append(f"| {k} | {q['0.5']:.3f} | {q['0.9']:.3f} | {q['0.95']:.3f} | {q['0.99']:.3f} |")
    lines += ["", "| threshold (‖r‖/‖Δ‖) | fires, complete list | fires, dopant withheld |", "|---|---|---|"]
    for th, f in r["firing"].items():
        lines.append(f"| {th} | {f['complete']:.3f} | {f['withheld']:.3f} |")
    lines += ["", f"Never-seen hosts of `benchmarks/conditioned.py`: {', '.join(r['hosts'])}; spectra with a dopant "
              "≥ 1 at.%, unmixed (GPDoS) against their host's basis.", "",
              f"Commit {r['provenance']['commit']}, `{r['provenance']['command']}`, {r['provenance']['date']}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
