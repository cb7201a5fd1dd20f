"""Human-readable host text: one host in detail, or a table of hosts.

:func:`format_host` backs ``defectnet hosts show`` and :func:`format_table` backs
``defectnet hosts list``.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from defectnet.hosts.library import HARD_CHECKS, Host


def _lattice_parameters(cell: np.ndarray) -> tuple[float, ...]:
    from ase.geometry import cell_to_cellpar

    return tuple(float(x) for x in cell_to_cellpar(cell))


def format_host(host: Host) -> str:
    """A multi-line, human-readable description of one host (``defectnet hosts show``)."""
    a, b, c, al, be, ga = _lattice_parameters(host.cell)
    prov = host.provenance
    lines = [
        f"{host.name}  ({host.formula}, {host.spacegroup_symbol} #{host.spacegroup_number})",
        f"  prototype    {host.prototype}  [{host.family}]",
        f"  source       {host.source}" + (f" — {host.reference}" if host.reference else ""),
    ]
    if host.aliases:
        lines.append(f"  aliases      {', '.join(host.aliases)}")
    lines += [
        f"  cell         a={a:.4f} b={b:.4f} c={c:.4f} Å  α={al:.2f} β={be:.2f} γ={ga:.2f}°"
        f"  (primitive, {host.n_atoms} atoms)",
        f"  volume       {host.volume_per_atom:.3f} Å³/atom",
    ]
    if host.oxidation_states:
        ox = ", ".join(f"{el}{host.oxidation_states[el]:+d}" for el in host.elements if el in host.oxidation_states)
        lines.append(f"  oxidation    {ox}")
    else:
        lines.append("  oxidation    not charge balanced by formal states")
    if host.decoration:
        lines.append("  decoration   " + ", ".join(f"{k}→{v}" for k, v in host.decoration.items()))
    pot = prov.get("potential")
    if pot:
        lines.append(
            f"  potential    {pot.get('name')} ({pot.get('package')} {pot.get('version')}, {pot.get('model')})"
        )
    unrelaxed = {"curated": "no (experimental structure)", "prototype": "no (unbuilt candidate: scaled prototype)"}
    lines.append(f"  relaxed      {'yes' if host.relaxed else unrelaxed.get(host.source, 'no (as given)')}")
    checks = host.checks
    if checks:

        def mark(v):
            return "✓" if v is True else ("✗" if v is False else "–")

        order = [c for c in HARD_CHECKS if c in checks] + [c for c in checks if c not in HARD_CHECKS]
        lines.append("  checks       " + "  ".join(f"{mark(checks[k])} {k}" for k in order))
    extra = [
        (k, prov[k])
        for k in (
            "n_imaginary",
            "min_frequency_mev",
            "max_frequency_mev",
            "bulk_modulus_gpa",
            "min_elastic_eigenvalue_gpa",
            "volume_change",
        )
        if k in prov
    ]
    if extra:
        lines.append(
            "  phonons      " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in extra)
        )
    lines.append(
        "  sites        "
        + "; ".join(f"{s} ({x:.4f} {y:.4f} {z:.4f})" for s, (x, y, z) in zip(host.species, host.positions))
        if host.n_atoms <= 12
        else f"  sites        {host.n_atoms} sites: {' '.join(host.species)}"
    )
    return "\n".join(lines)


def format_table(hosts: Iterable[Host]) -> str:
    """One line per host (``defectnet hosts list``)."""
    rows = [("name", "formula", "spacegroup", "atoms", "prototype", "source", "relaxed", "stable")]
    for h in hosts:
        stable = h.dynamically_stable
        rows.append(
            (
                h.name,
                h.formula,
                f"{h.spacegroup_symbol} ({h.spacegroup_number})",
                str(h.n_atoms),
                h.prototype,
                h.source,
                "yes" if h.relaxed else "no",
                "?" if stable is None else ("yes" if stable else "NO"),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)
