"""How a prediction is made: :class:`PredictConfig`, saved beside every answer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from defectnet.checks import split_candidate
from defectnet.errors import DefectnetError
from defectnet.settings import Settings
from defectnet.signatures import SPECTRUM_KINDS

#: What an input spectrum may be: the total PDoS or the neutron-weighted GPDoS (a basis' kinds, as a spectrum names them).
KINDS = tuple(SPECTRUM_KINDS.values())
#: Who answers with a basis: the conditioned network, the unmixing alone, or the unmixing merged with the plain network.
METHODS = ("conditioned", "unmix", "merge")
#: ``candidates`` meaning "no list": every candidate of the basis, ranked (``--candidates auto``)
AUTO = ("auto",)


#: What ``refine=None`` (auto) does with the conditioned network's answer: ``iterations`` syntheses
#: when its total is at least ``from_total`` (atomic fraction). Chosen by a rule set before its run
#: (docs/accuracy.md, "Refining only what the network found"): on 80 spectra of ten never-seen
#: hosts MAE 1.05 -> 0.80 at.%, distractor mean 0.31 -> 0.24.
AUTO_REFINE = {"iterations": 3, "from_total": 0.05}


@dataclass(frozen=True)
class PredictConfig(Settings, what="predict config"):
    """How a prediction is made; saved beside every output.

    Parameters
    ----------
    candidates : tuple of str
        Candidate dopant elements given by the user; :data:`AUTO` (``("auto",)``) for every
        candidate of the basis (a basis of the recommender's pool: ``defectnet basis HOST
        --candidates auto``), ranked by the answer.
    n_recommend : int
        Add this many candidates from :class:`~defectnet.recommend.DopantRecommender` (0 = none).
    kind : str or None
        What the input spectra are: ``"total"`` PDoS or neutron-weighted ``"gpdos"``; ``None``
        = what the model was trained on (a file with a ``gpdos`` or ``total`` column is read
        accordingly).
    unit : str or None
        Energy unit of the input files (meV, THz, cm-1); ``None`` = from the files, see
        :func:`~defectnet.io.read_spectrum`.
    energy_scale : float or None
        The input files' energies are multiplied by this before use (dimensionless).
        Universal MLIPs soften phonons (Si optical ~50 meV vs 64 meV measured): pass
        E_MLIP / E_measured of a known peak to put measured spectra on the model's scale,
        or ``None`` to fit it (:func:`fit_energy_scale`: the measured pristine spectrum
        against the host's MLIP spectrum).
    potential : str
        MLIP for the pristine spectrum when no pristine file is given.
    fwhm_mev, resolution
        Broadening of a computed pristine spectrum (``resolution`` wins); ``None`` for both =
        the broadening of the model's training data.
    method : {'conditioned', 'unmix', 'merge'} or None
        Who answers with a basis (:data:`METHODS`): ``conditioned``, the conditioned network,
        which reads each candidate through its signature in the basis
        (:mod:`defectnet.model.conditioned`); ``unmix``, the unmixing alone
        (:func:`~defectnet.unmix.unmix`); ``merge``, on a host the plain network was trained
        on its answer merged with the unmixing (:func:`~defectnet.unmix.combine`; better than
        either alone there, worse on hosts it never saw, where the unmixing alone is kept).
        ``None``: ``conditioned`` when a conditioned model is given, or none is given and the
        shipped one can read the basis; else ``merge``, with a note when a conditioned model
        is shipped but cannot read the basis or ``stretch`` asks for an unmixing.
    refine : int or None
        With a basis: correct the answer by this many syntheses of the mix from the host's
        patches the basis keeps (:func:`~defectnet.synthesis.refine`, ~1–4 s each; mixes of
        several dopants at 10–30 % are read low without), started from the conditioned network's
        answer (method conditioned; the candidates it finds absent held at 0) or the unmixing's
        (unmix, merge). 0 = not refined. ``None`` (auto): the conditioned network's answer is
        refined as :data:`AUTO_REFINE` says when the basis keeps its host and patches; the
        unmixing's is not.
    combine : bool
        The older spelling of ``method``: ``False`` is ``method='unmix'``.
    stretch : float
        With a basis: each candidate's local modes (its signature above the host's band edge)
        may sit at energies scaled by up to ±``stretch`` from where the basis' potential put
        them, fitted per candidate (:func:`~defectnet.unmix.unmix`). 0 = as simulated.
    modes_mev : dict element -> float
        With a basis: measured local-mode energies (meV) of candidates; each one's signature above
        the host's bands is moved there before anything reads the basis
        (:func:`~defectnet.unmix.calibrated`), for every method.
    force : bool
        Answer even when the input is unlike the host (a measured pristine unlike the host's
        simulated one, a doped spectrum unlike its pristine): the refusal becomes a warning and
        the answer is not trusted (:mod:`defectnet.checks`).
    """

    candidates: tuple[str, ...] = ()
    n_recommend: int = 0
    kind: str | None = None
    unit: str | None = None
    energy_scale: float | None = 1.0
    potential: str = "sevennet"
    fwhm_mev: float | None = None
    resolution: str | None = None
    method: str | None = None
    refine: int | None = None
    combine: bool = True
    stretch: float = 0.0
    modes_mev: dict = field(default_factory=dict)
    force: bool = False

    def __post_init__(self):
        object.__setattr__(self, "candidates", tuple(dict.fromkeys(self.candidates)))
        if self.kind is not None and self.kind not in KINDS:
            raise DefectnetError(f"unknown spectrum kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.energy_scale is not None and not (np.isfinite(self.energy_scale) and 0.5 <= self.energy_scale <= 2.0):
            raise DefectnetError(f"energy_scale must lie in [0.5, 2], got {self.energy_scale!r}")
        if self.n_recommend < 0:
            raise DefectnetError(f"n_recommend must be ≥ 0, got {self.n_recommend}")
        if self.refine is not None and self.refine < 0:
            raise DefectnetError(f"refine must be ≥ 0 syntheses, got {self.refine}")
        if not (np.isfinite(self.stretch) and 0 <= self.stretch <= 0.5):
            raise DefectnetError(f"stretch must be a fraction in [0, 0.5], got {self.stretch!r}")
        for el, e in self.modes_mev.items():
            if not (isinstance(e, (int, float)) and np.isfinite(e) and e > 0):
                raise DefectnetError(f"the local mode of {el} must be a positive energy in meV, got {e!r}")
        if self.method is not None and self.method not in METHODS:
            raise DefectnetError(f"unknown method {self.method!r}; expected one of {', '.join(METHODS)}")
        if not self.combine:  # --basis-only, from before there were methods
            if self.method not in (None, "unmix"):
                raise DefectnetError(f"--basis-only is --method unmix, which contradicts --method {self.method}; "
                                     "give one of them")
            object.__setattr__(self, "method", "unmix")
        if self.candidates != AUTO:
            for c in self.candidates:
                split_candidate(c)
