"""Energy units and coverage: the unit of a spectrum from what is stated and the host's band edge, and spectra
that stop too early."""

from __future__ import annotations

import numpy as np

from defectnet.errors import DefectnetError

#: Units: a pristine spectrum's band edge must lie within these factors of the host's simulated band edge
#: (MLIPs soften phonons by up to ~25 %) ...
PRISTINE_EDGE_WINDOW = (1 / 1.6, 1.6)
#: ... a doped one's within these: light dopants' local modes push the 99.5 % quantile of the committed doped
#: spectra up to 3.9× their pristine's (99 % of them ≤ 2.5×, none below 0.9×).
DOPED_EDGE_WINDOW = (1 / 1.6, 4.0)
#: The units a spectrum without a stated unit may be in (eV only when stated).
GUESSED_UNITS = ("meV", "THz", "cm-1")


def choose_unit(edge_mev: float, unit: str, sources: dict, host_edge_mev: float, *, window, label: str,
                host: str, cut: bool = False) -> tuple[str, str | None]:
    """The energy unit of a spectrum, from what is stated and the host's band edge.

    ``edge_mev`` is the spectrum's :func:`band_edge` read in ``unit``; ``sources`` {where:
    unit} what the file and the caller state (:func:`defectnet.io.read_spectrum`'s
    ``meta["unit_sources"]``). One stated unit is kept if it puts the band edge within
    ``window`` (factors) of the host's simulated ``host_edge_mev``, and is an error naming
    both numbers if not; units stated differently are decided by the band edge among
    themselves; without any, among :data:`GUESSED_UNITS`. A ``cut`` spectrum (:func:`is_cut`)
    has its band edge at or past its end, so only an edge above the window is wrong.
    Returns (unit, a note or None).
    """
    from defectnet.units import ENERGY_UNIT_TO_MEV

    stated = list(dict.fromkeys(sources.values()))
    pool = stated or list(GUESSED_UNITS)
    edges = {u: edge_mev * ENERGY_UNIT_TO_MEV[u] / ENERGY_UNIT_TO_MEV[unit]
             for u in dict.fromkeys([*pool, *GUESSED_UNITS])}
    ratio = {u: e / host_edge_mev for u, e in edges.items()}
    low = 0.0 if cut else window[0]
    inside = [u for u in pool if low <= ratio[u] <= window[1]]
    where = ", ".join(f"{u} {edges[u]:.1f} meV" for u in pool)
    host_text = f"{host}'s simulated band edge {host_edge_mev:.1f} meV"
    if not inside:
        fits = [u for u in GUESSED_UNITS if low <= ratio[u] <= window[1]]
        hint = f"; in {fits[0]} it would be {edges[fits[0]]:.1f} meV" if fits else ""
        said = ", ".join(f"{k} says {v}" for k, v in sources.items()) or "no unit stated"
        raise DefectnetError(f"{label}: its band edge (99.5 % of the area) read as {where} ({said}) is far from "
                             f"{host_text}; expected within ×{window[1]:g}{hint} — check --unit, the header, or --host")
    best = min(inside, key=lambda u: abs(np.log(ratio[u])))
    because = (f"its band edge is then {edges[best]:.1f} meV against {host_text}"
               + (" (the spectrum is cut, so that is a lower bound and the unit a guess)" if cut else ""))
    if not stated:
        others = ", ".join(f"{u} {edges[u]:.1f}" for u in GUESSED_UNITS if u != best)
        return best, f"{label}: energy unit not stated, assumed {best} from the host: {because} (as {others} meV)"
    if len(stated) > 1:
        said = ", ".join(f"{k} says {v}" for k, v in sources.items())
        return best, f"{label}: the energy unit is stated differently ({said}); {best} won: {because} ({where})"
    return best, None


def coverage_warnings(ends: dict, host_edge_mev: float, host: str, modes: dict | None = None) -> list[str]:
    """Warnings for spectra that stop too early: ``ends`` {label: last energy, meV} inside the host's
    bands (below its simulated band edge), or below ``modes`` {candidate: the energy below which 99 %
    of its simulated signature lies}."""
    out = [f"{label} stops at {end:.1f} meV, inside the bands of {host} (its simulated band edge is "
           f"{host_edge_mev:.1f} meV): the rest of the spectrum is missing and dopants are read from part of it"
           for label, end in ends.items() if end < host_edge_mev]
    top = min(ends.values())
    late = {el: e for el, e in (modes or {}).items() if e > top}
    if late:
        out.append(f"the spectra stop at {top:.1f} meV, below where the simulated signatures of "
                   + ", ".join(f"{el} ({e:.1f} meV)" for el, e in late.items())
                   + " reach 99 % of their area: those candidates are read from part of their signature")
    return out
