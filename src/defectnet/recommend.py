"""Dopant recommender: which elements could sit on which host site.

:class:`DopantRecommender` wraps the dopant models pymatgen ships (the ones the published
method uses) and repairs where they fail for common hosts:

* ``"substitution"`` — data-mined substitution probabilities of Hautier et al.,
  *Inorg. Chem.* 50, 656 (2011), via pymatgen's ``SubstitutionPredictor``. pymatgen's
  ``get_dopants_from_substitution_probabilities`` raises for the whole host when one
  species is unknown to the model (``As3-`` in GaAs, ``Si0+`` in Si) and drops isovalent
  substitutions (Al on Ga); here the predictor runs per species, unknown species are
  skipped, and isovalent dopants are kept.
* ``"shannon"`` — Shannon ionic-radius matching at the site's coordination number (the
  fallback of the published method, ``get_dopants_from_shannon_radii``). Reimplemented on
  pymatgen's Shannon table because the pymatgen function needs a CrystalNN graph (too slow
  for thousands of hosts), rebuilds its table on every call, silently skips species
  without a radius at that coordination and drops isovalent dopants.
* ``"periodic"`` — a chemical fallback for covalent and elemental hosts, where the ionic
  models say little (Si) or the wrong thing (GaAs): isovalent and ±1-valence neighbours
  in the periodic table (p/n-type dopants), ranked by covalent-radius mismatch and a
  preference for the same or an adjacent period.

How scores from different sources are made comparable
-----------------------------------------------------
Every source gives each (dopant, site) pair a plausibility in [0, 1], where 1 is an ideal
substitution by that source's criterion:

* substitution: the Hautier probability P(dopant | site) relative to that of the
  site's likeliest substitute (the site's own species excluded), so that the best
  candidate of the ionic and of the covalent rule both score ≈ 1;
* shannon and periodic: a Gaussian weight of the size mismatch measured against the
  site's bond length d, exp(−½ (Δr / (0.075 d))²) — Hume-Rothery's 15 % radius rule as
  one standard deviation — times, for the periodic rule, a penalty for dopants more than
  one period away.

Sources of one *kind* form a fallback chain in the order of ``methods`` (ionic:
substitution, then Shannon for species the substitution model does not know). The two
kinds are mixed with the site's Pauling fractional ionic character f = 1 − exp(−Δχ²/4),
averaged over its nearest-neighbour bonds::

    score(dopant, site) = f · s_ionic(dopant, site) + (1 − f) · s_periodic(dopant, site)

so GaAs (f ≈ 0.03) is ranked almost entirely by the covalent rule, ZnO (f ≈ 0.55) by
both, and elemental Si (f = 0, no ionic species) by the covalent rule alone. If only one
kind has anything to say about a site it gets the whole weight. Every record is one
(dopant, site) pair; its ``source`` is the source that contributed most to its score.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

from defectnet.elements import DOPANTS, check_element
from defectnet.errors import DefectnetError
from defectnet.settings import Settings
from defectnet.sites import Site as _Site
from defectnet.sites import analyse_sites as _analyse_sites
from defectnet.sites import element_data as _element
from defectnet.sites import guess_oxidation_states as _guess_oxidation_states
from defectnet.sites import to_structure as _to_structure

__all__ = ["DopantRecord", "DopantRecommender", "SOURCES", "coverage", "keeps_valence"]

_Z_ORDER = {el: i for i, el in enumerate(DOPANTS)}  # ties are broken by atomic number

#: Width (one standard deviation) of the Gaussian size weight, as a fraction of the
#: site's bond length: Hume-Rothery's 15 % limit on the radius mismatch of a solid
#: solution is ≈ 7.5 % of a bond between like-sized atoms.
SIZE_TOLERANCE = 0.075
#: Period-2 elements (Li–F) are small but form short, strong bonds and are among the
#: commonest dopants of sp³ semiconductors despite large size mismatch (B, C in Si;
#: Be, C in GaAs; N in SiC and ZnO; O in GaN; Li in ZnO). The periodic rule gives them
#: twice the size tolerance and no period penalty.
LIGHT_PERIOD = 2
LIGHT_SIZE_TOLERANCE = 2 * SIZE_TOLERANCE
#: Extra factor exp(−PERIOD_PENALTY) per period beyond the adjacent one (periodic rule).
PERIOD_PENALTY = 1.0
#: A dopant compensates at most this many units of charge (ionic rules): aliovalent
#: substitutions by two or more need double compensation and are rare as dopants.
MAX_CHARGE_CHANGE = 1


@dataclass(frozen=True)
class DopantRecord(Settings, what="DopantRecord"):
    """One recommended substitution.

    Attributes
    ----------
    dopant : str
        Element placed on the site.
    site : str
        Host element it replaces.
    score : float
        Plausibility in [0, 1] of this substitution (1 = ideal); comparable across
        sources and sites (see the module docstring for how sources are merged).
    source : str
        Source that contributed most: ``"substitution"``, ``"shannon"`` or ``"periodic"``.
    oxidation_state : int or None
        Dopant oxidation state from an ionic source; ``None`` when only the periodic rule
        proposed it or the host has no ionic picture (elemental, intermetallic).
    """

    dopant: str
    site: str
    score: float
    source: str
    oxidation_state: int | None = None

# A source maps (site, vocabulary) to {dopant: (plausibility in [0, 1], oxidation state)};
# {} when it has nothing to say about the site.
Proposal = dict[str, tuple[float, int | None]]


@dataclass(frozen=True)
class _Source:
    kind: str  # "ionic" | "covalent": sources of one kind form a fallback chain
    propose: Callable[[_Site, frozenset, float], Proposal]


# --------------------------------------------------------------------------- helpers
def _size_weight(r_dopant: float, r_site: float, bond_length: float, tolerance: float) -> float:
    """Gaussian weight of the radius mismatch relative to the bond length (radii in Å)."""
    mismatch = (r_dopant - r_site) / bond_length
    return math.exp(-0.5 * (mismatch / tolerance) ** 2)


# ----------------------------------------------------------------- "substitution"
@lru_cache(maxsize=4)
def _substitution_predictor(threshold: float):
    """The Hautier substitution model; loading its lambda table takes ~2 s, so it is cached."""
    from pymatgen.analysis.structure_prediction.substitution_probability import (
        SubstitutionPredictor,
    )

    return SubstitutionPredictor(threshold=threshold)


@lru_cache(maxsize=4096)
def _substitution_list(element: str, oxi: int, threshold: float) -> tuple[tuple[str, int, float], ...]:
    """(element, oxidation state, P(element | site)) for the species on a site, or () if unknown."""
    from pymatgen.core import Species

    predictor = _substitution_predictor(threshold)
    sp = Species(element, oxi)
    if sp not in predictor.p.species:  # e.g. As3-, Te2-: the model never saw them
        return ()
    out = []
    for pred in predictor.list_prediction([sp]):
        ((new, _old),) = pred["substitutions"].items()
        out.append((new.symbol, int(new.oxi_state), float(pred["probability"])))
    return tuple(out)


def _substitution_source(site: _Site, vocabulary: frozenset, threshold: float) -> Proposal:
    if not site.ionic:
        return {}
    best: dict[str, tuple[float, int]] = {}
    for element, oxi, prob in _substitution_list(site.element, site.oxidation_state, threshold):
        # The site's own element is no dopant; a cation on an anion site (or the reverse)
        # is an artefact of mining whole structures, not a substitutional dopant.
        if element == site.element or element not in vocabulary:
            continue
        if abs(oxi - site.oxidation_state) > MAX_CHARGE_CHANGE or oxi * site.oxidation_state <= 0:
            continue
        if prob > best.get(element, (0.0, 0))[0]:  # keep the element's likeliest state
            best[element] = (prob, oxi)
    if not best:
        return {}
    # Relative to the likeliest substitute, so that the best ionic and the best
    # covalent candidate of a site both score ≈ 1.
    top = max(p for p, _ in best.values())
    return {el: (p / top, oxi) for el, (p, oxi) in best.items()}


# ----------------------------------------------------------------------- "shannon"
_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7, "VIII": 8,
          "IX": 9, "X": 10, "XI": 11, "XII": 12, "XIV": 14}


@cache
def _shannon_radii(element: str) -> dict[tuple[int, int], float]:
    """{(oxidation state, coordination): ionic radius in Å} from pymatgen's Shannon table."""
    out = {}
    for oxi, by_cn in _element(element).data.get("Shannon radii", {}).items():
        for cn, by_spin in by_cn.items():
            if cn not in _ROMAN:  # square-planar / pyramidal variants
                continue
            data = by_spin.get("High Spin") or by_spin.get("") or next(iter(by_spin.values()))
            out[(int(oxi), _ROMAN[cn])] = float(data["ionic_radius"])
    return out


@cache
def _common_oxidation_states(element: str) -> tuple[int, ...]:
    return tuple(int(o) for o in _element(element).common_oxidation_states)


@lru_cache(maxsize=8192)
def _shannon_proposal(element: str, oxi: int, cn: int, bond_length: float, vocabulary: frozenset) -> Proposal:
    radii = _shannon_radii(element)
    cns = sorted(c for (o, c) in radii if o == oxi)
    if not cns:  # e.g. As3-: no tabulated radius at all
        return {}
    # If the site's coordination is not tabulated (S2- has only VI) compare at the
    # nearest tabulated one, dopants and host alike.
    cn = min(cns, key=lambda c: (abs(c - cn), c))
    r_site = radii[(oxi, cn)]
    best: Proposal = {}
    for dopant in vocabulary:
        if dopant == element:
            continue
        for d_oxi in _common_oxidation_states(dopant):
            if abs(d_oxi - oxi) > MAX_CHARGE_CHANGE or d_oxi * oxi <= 0:
                continue
            r = _shannon_radii(dopant).get((d_oxi, cn))
            if r is None:
                continue
            w = _size_weight(r, r_site, bond_length, SIZE_TOLERANCE)
            if w > best.get(dopant, (0.0, None))[0]:
                best[dopant] = (w, d_oxi)
    return best


def _shannon_source(site: _Site, vocabulary: frozenset, threshold: float) -> Proposal:
    if not site.ionic:
        return {}
    return _shannon_proposal(
        site.element, site.oxidation_state, site.coordination, site.bond_length, vocabulary
    )


# ---------------------------------------------------------------------- "periodic"
@cache
def _periodic_descriptor(symbol: str) -> tuple[int | None, int | None, int, float]:
    """(main-group valence, d-block group, period, covalent radius in Å) of an element.

    Valence counts s and p electrons: groups 1–2 → 1–2, groups 13–18 → 3–8, and the
    filled-d groups 11–12 (Cu, Zn, …) → 1–2, which dope like main-group elements. Groups
    3–12 form the d-block family, related by group number; the f-block counts as group 3.
    """
    from ase.data import atomic_numbers, covalent_radii  # Cordero et al. 2008

    el = _element(symbol)
    group = 3 if el.block == "f" else el.group
    valence = group if group <= 2 else (group - 10 if group >= 11 else None)
    d_group = group if el.block in ("d", "f") else None
    return valence, d_group, el.row, float(covalent_radii[atomic_numbers[symbol]])


def _are_neighbours(site: str, dopant: str, metallic: bool) -> bool:
    """Isovalent or ±1-valence neighbours (donor/acceptor), or adjacent d-block groups.

    The d-block relation applies to transition-metal sites, and to Cu/Zn-group sites
    only in metallic hosts: Ni on Cu is an alloy, Ni on Cu⁺ in CuInSe₂ is no dopant.
    """
    v_s, g_s, _, _ = _periodic_descriptor(site)
    v_d, g_d, _, _ = _periodic_descriptor(dopant)
    if v_s is not None and v_d is not None and abs(v_s - v_d) <= 1:
        return True
    if g_s is None or g_d is None or (v_s is not None and not metallic):
        return False
    return abs(g_s - g_d) <= 1


@lru_cache(maxsize=8192)
def _periodic_proposal(element: str, bond_length: float, metallic: bool, vocabulary: frozenset) -> Proposal:
    _, _, period, r_site = _periodic_descriptor(element)
    out: Proposal = {}
    for dopant in vocabulary:
        # H does not substitute in this sense: it sits interstitially or passivates bonds.
        if dopant in (element, "H") or not _are_neighbours(element, dopant, metallic):
            continue
        _, _, d_period, r = _periodic_descriptor(dopant)
        if d_period <= LIGHT_PERIOD:
            w = _size_weight(r, r_site, bond_length, LIGHT_SIZE_TOLERANCE)
        else:
            w = _size_weight(r, r_site, bond_length, SIZE_TOLERANCE)
            w *= math.exp(-PERIOD_PENALTY * max(0, abs(d_period - period) - 1))
        out[dopant] = (w, None)
    return out


def _periodic_source(site: _Site, vocabulary: frozenset, threshold: float) -> Proposal:
    return _periodic_proposal(site.element, site.bond_length, not site.ionic, vocabulary)


#: Source registry: name → (kind, proposal function). Add a source here.
SOURCES: dict[str, _Source] = {
    "substitution": _Source("ionic", _substitution_source),
    "shannon": _Source("ionic", _shannon_source),
    "periodic": _Source("covalent", _periodic_source),
}


# ---------------------------------------------------------------- the estimator
class DopantRecommender:
    """Rank substitutional dopants for a host crystal (scikit-learn style).

    Parameters
    ----------
    n_max : int
        Number of records :meth:`recommend` returns by default (over all sites).
    threshold : float
        Smallest score kept (dimensionless, in [0, 1)); also the probability threshold
        of pymatgen's ``SubstitutionPredictor``.
    vocabulary : iterable of str
        Elements that may be proposed; default :data:`defectnet.elements.DOPANTS`.
    methods : tuple of str
        Sources to use, names from :data:`SOURCES`; within a kind the order is the
        fallback order.

    Examples
    --------
    >>> from ase.build import bulk
    >>> rec = DopantRecommender().fit()
    >>> [r.dopant for r in rec.recommend(bulk("Si", "diamond", a=5.431), n=3)]  # doctest: +SKIP
    ['P', 'As', 'Ge']
    """

    def __init__(
        self,
        *,
        n_max: int = 10,
        threshold: float = 1e-3,
        vocabulary: Iterable[str] = DOPANTS,
        methods: tuple[str, ...] = ("substitution", "shannon", "periodic"),
    ):
        self.n_max = n_max
        self.threshold = threshold
        self.vocabulary = vocabulary
        self.methods = methods

    def get_params(self, deep: bool = True) -> dict:
        """The constructor arguments (what to log beside the results)."""
        return {
            "n_max": self.n_max,
            "threshold": self.threshold,
            "vocabulary": tuple(self.vocabulary),
            "methods": tuple(self.methods),
        }

    def fit(self, X=None, y=None) -> DopantRecommender:
        """Validate the parameters and load (once per process) the pymatgen models.

        ``X`` and ``y`` are ignored; they exist for scikit-learn compatibility.
        """
        if isinstance(self.n_max, bool) or not isinstance(self.n_max, (int, np.integer)) or self.n_max < 1:
            raise DefectnetError(f"n_max must be a positive integer, got {self.n_max!r}")
        if not 0.0 <= float(self.threshold) < 1.0:
            raise DefectnetError(f"threshold must be in [0, 1), got {self.threshold!r}")
        vocabulary = tuple(self.vocabulary)
        if not vocabulary:
            raise DefectnetError("vocabulary is empty")
        for symbol in vocabulary:
            check_element(symbol, dopant=True)
        methods = tuple(self.methods)
        unknown = [m for m in methods if m not in SOURCES]
        if unknown or not methods:
            raise DefectnetError(
                f"unknown recommender methods {unknown or methods!r}; choose from {sorted(SOURCES)}"
            )
        self.vocabulary_ = frozenset(vocabulary)
        self.methods_ = methods
        self.sources_ = {m: SOURCES[m] for m in methods}
        if "substitution" in methods:
            self.substitution_model_ = _substitution_predictor(float(self.threshold))
        # Warm the per-element tables (~0.5 s once per process) so that the first
        # recommend() is as fast as the rest.
        for symbol in vocabulary:
            _periodic_descriptor(symbol)
            _shannon_radii(symbol)
            _common_oxidation_states(symbol)
        _guess_oxidation_states("NaCl")  # loads pymatgen's bond-valence data
        return self

    def recommend(self, structure, n: int | None = None) -> list[DopantRecord]:
        """Ranked substitutional dopants for ``structure``.

        Parameters
        ----------
        structure : ase.Atoms or pymatgen.core.Structure
            Periodic host crystal (any cell; lengths in Å). Oxidation states on a pymatgen
            structure are used if every site has one, otherwise they are guessed.
        n : int, optional
            Number of records to return (default ``n_max``).

        Returns
        -------
        list of DopantRecord
            Sorted by decreasing score; one record per (dopant, site) pair, never a dopant
            on its own element's site. May be shorter than ``n`` (after ``threshold``).
        """
        if not hasattr(self, "vocabulary_"):
            raise DefectnetError("DopantRecommender is not fitted; call fit() first")
        n = self.n_max if n is None else n
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise DefectnetError(f"n must be a positive integer, got {n!r}")
        records: list[DopantRecord] = []
        for site in _analyse_sites(_to_structure(structure)):
            records.extend(self._merge(site))
        records = [r for r in records if r.score >= self.threshold]
        records.sort(key=lambda r: (-r.score, r.site, _Z_ORDER[r.dopant]))
        return records[:n]

    def _merge(self, site: _Site) -> list[DopantRecord]:
        # First non-empty source of each kind (fallback chain in `methods` order).
        chosen: dict[str, tuple[str, Proposal]] = {}
        for name, source in self.sources_.items():
            if source.kind in chosen:
                continue
            proposal = source.propose(site, self.vocabulary_, float(self.threshold))
            if proposal:
                chosen[source.kind] = (name, proposal)
        if not chosen:
            return []
        weights = {"ionic": site.ionic_character, "covalent": 1.0 - site.ionic_character}
        total = sum(weights[kind] for kind in chosen)
        if total <= 0:  # only an ionic source, but every bond is homopolar (or the reverse)
            weights, total = {kind: 1.0 for kind in chosen}, float(len(chosen))

        scores: dict[str, float] = defaultdict(float)
        best: dict[str, tuple[float, str]] = {}
        oxidation: dict[str, int | None] = {}
        for kind, (name, proposal) in chosen.items():
            w = weights[kind] / total
            for dopant, (plausibility, oxi) in proposal.items():
                contribution = w * plausibility
                scores[dopant] += contribution
                if contribution > best.get(dopant, (-1.0, ""))[0]:
                    best[dopant] = (contribution, name)
                if oxi is not None:
                    oxidation[dopant] = oxi
        return [
            DopantRecord(dopant, site.element, min(1.0, score), best[dopant][1], oxidation.get(dopant))
            for dopant, score in scores.items()
        ]

    def __repr__(self) -> str:
        params = self.get_params()
        if params["vocabulary"] == DOPANTS:
            params["vocabulary"] = "DOPANTS"
        return f"DopantRecommender({', '.join(f'{k}={v!r}' for k, v in params.items())})"


def keeps_valence(record: DopantRecord, site_oxidation_state: int) -> bool:
    """Whether ``record``'s dopant takes the site's oxidation state: its own (ionic sources)
    or, for a record without one, one of the element's common states."""
    if record.oxidation_state is not None:
        return record.oxidation_state == site_oxidation_state
    return site_oxidation_state in _common_oxidation_states(record.dopant)


def coverage(structures, min_candidates: int = 5, *, recommender: DopantRecommender | None = None) -> float:
    """Fraction of hosts for which the recommender proposes enough distinct dopants.

    Parameters
    ----------
    structures : iterable or mapping of structures
        Hosts (ase.Atoms or pymatgen Structure); for a mapping, its values.
    min_candidates : int
        Distinct dopant *elements* needed among the ``recommend`` records (a dopant on
        two sites counts once, as it does in a candidate list).
    recommender : DopantRecommender, optional
        Default: a fitted ``DopantRecommender()``.

    Returns
    -------
    float
        Fraction in [0, 1].
    """
    if isinstance(structures, Mapping):
        structures = structures.values()
    structures = list(structures)
    if not structures:
        raise DefectnetError("coverage needs at least one structure")
    if min_candidates < 1:
        raise DefectnetError(f"min_candidates must be >= 1, got {min_candidates}")
    recommender = recommender or DopantRecommender().fit()
    if not hasattr(recommender, "vocabulary_"):
        recommender.fit()
    hits = sum(
        len({r.dopant for r in recommender.recommend(s)}) >= min_candidates for s in structures
    )
    return hits / len(structures)


#: Candidates of ``--candidates auto``: the recommender's best this many dopants (issue 38: the
#: elements that can sit on the host's sites are typically 20–40; the first 20 hold the common ones).
AUTO_CANDIDATES = 20


def candidate_pool(structure, n: int = AUTO_CANDIDATES, *, vocabulary: Iterable[str] = DOPANTS) -> list[str]:
    """``"El@Site"`` for the ``n`` best distinct dopants of ``structure``, each on its best site:
    what ``defectnet basis HOST --candidates auto`` simulates.

    Parameters
    ----------
    structure : ase.Atoms or pymatgen.core.Structure
    n : int
        How many distinct dopants.
    vocabulary : iterable of str
        Elements that may be proposed.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DefectnetError(f"the number of automatic candidates must be a positive integer, got {n!r}")
    best: dict[str, str] = {}
    for r in DopantRecommender(n_max=10 * n, vocabulary=vocabulary).fit().recommend(structure):
        best.setdefault(r.dopant, r.site)  # records come best first: the first site is the dopant's best
        if len(best) == n:
            break
    if not best:
        raise DefectnetError("the recommender proposes no dopant for this host")
    return [f"{el}@{site}" for el, site in best.items()]
