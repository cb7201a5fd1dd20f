"""Forward models (:data:`ENGINES`): a candidate's defect signature Δ_k(c) at a concentration.

Each is built from the basis and the run's :class:`~defectnet.limits.config.LimitsConfig`, which is
not imported here: the config checks its ``engine`` against :data:`ENGINES`.
"""

from __future__ import annotations

import numpy as np

#: Placement seeds of the synthesis engine start here (the basis' own are its ``seed`` + 0, 1 ...).
PLACEMENT_SEED = 10_000


class CurvesEngine:
    """Δ from the basis' own curves: Σ_k Δ_k(c_k), each piecewise linear in c through the origin and
    the basis' realised concentrations (the last segment extended); no placement noise."""

    name = "curves"

    def __init__(self, basis, config, synthesizer=None):
        self.basis, self.kind = basis, config.kind

    def describe(self) -> str:
        knots = ", ".join(f"{100 * x:.2f}" for x in np.mean(self.basis.realised, axis=0))
        return (f"the basis' own simulated curves Δ_k(c) (cells at {knots} at.%; piecewise linear in c through 0, "
                "extended beyond the last; the curves unmixing fits, so no model error: the limit set by resolution "
                "and counting noise)")

    def signature(self, mix: dict, index: int) -> np.ndarray:
        """Δ (B,) per meV of ``mix`` {element: atomic fraction} (``index``: the measurement, unused)."""
        from defectnet.unmix import curve_and_slope

        b = self.basis
        out = np.zeros(b.grid.n_bins)
        for el, c in mix.items():
            k = b.elements.index(el)
            out += curve_and_slope(b.realised[k], b.curves[self.kind][k], c)[0]
        return out

    def realised(self, element: str, c: float) -> float:
        return float(c)


class SynthesisEngine:
    """Δ from fresh placements of the host's patches (:class:`~defectnet.synthesis.Synthesizer`),
    ``placements`` seeds per concentration starting at :data:`PLACEMENT_SEED` + seed × placements."""

    name = "synthesis"

    def __init__(self, basis, config, synthesizer=None):
        from defectnet.synthesis import Synthesizer

        self.kind, self.placements = config.kind, config.placements
        self.first_seed = PLACEMENT_SEED + config.seed * config.placements
        self.synthesizer = synthesizer if synthesizer is not None else Synthesizer.from_basis(basis)
        self._cache: dict = {}

    def describe(self) -> str:
        return (f"fresh placements of the host's patches in its {self.atoms}-atom supercell (Synthesizer; "
                f"{self.placements} placements per concentration, seeds {self.first_seed}…, not the basis'; a "
                "concentration is a whole number of dopant atoms, below half an atom the cell is pristine)")

    @property
    def atoms(self) -> int:
        return len(self.synthesizer.host.supercell)

    def signature(self, mix: dict, index: int) -> np.ndarray:
        seed = self.first_seed + index % self.placements
        key = (tuple(sorted(mix.items())), seed)
        if key not in self._cache:
            self._cache[key] = self.synthesizer.signature(mix, kind=self.kind, seed=seed)
        return self._cache[key]

    def realised(self, element: str, c: float) -> float:
        return round(c * self.atoms) / self.atoms


#: Forward models of a candidate's doped spectrum, by name.
ENGINES = {"curves": CurvesEngine, "synthesis": SynthesisEngine}
