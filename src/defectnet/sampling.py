"""Seeded sampling of co-doping scenarios: which dopants, on which sites, how much.

A scenario is drawn from the recommender's records for one host:

* **dopants** — the number of distinct species is uniform in ``n_dopants`` (capped by the
  number of distinct recommended dopants); the species are drawn uniformly without
  replacement from the recommended ones, so every plausible dopant is equally likely to
  appear in a dataset; each goes on one of its recommended sites, chosen with probability
  proportional to the recommender's score.
* **concentrations** — atomic fraction of the whole supercell, log-uniform in
  ``conc_range`` per species (0.2 %–25 % by default). Two bounds hold: the sum over all
  species is at most ``max_total``, and the dopants on one site element never exceed that
  element's share of the cell (a dopant cannot replace more atoms than exist). They are
  met by **resampling**: each concentration is drawn log-uniform on [lo, min(hi, site
  share)] (exactly the log-uniform law conditioned on its own site bound) and the whole
  vector is redrawn until the joint bounds hold, which leaves the draws log-uniform
  conditioned on feasibility. Only if :data:`MAX_RESAMPLES` draws all fail (very tight
  bounds) is the last draw **scaled down** towards ``conc_range[0]`` — c ← lo + s (c − lo)
  with the largest s in [0, 1] that meets every bound — so no concentration ever leaves
  ``conc_range``.
* **distractors** — recommended elements for the host that are not true dopants; their
  number is uniform in ``n_distractors``, capped by what is available. Candidates are
  the true dopants plus the distractors.

Every function is pure: all randomness comes from the ``rng`` argument. A scenario
records the integer seed it was drawn from, and ``sample_scenario(..., rng=seed)``
rebuilds it exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

import numpy as np

from defectnet.elements import DOPANTS, check_element
from defectnet.errors import DefectnetError
from defectnet.settings import Settings, to_float, to_pair

__all__ = ["SamplerConfig", "DopingScenario", "sample_scenario", "sample_candidates"]

#: Joint draws of the concentrations before falling back to scaling them down.
MAX_RESAMPLES = 200

_Z_ORDER = {el: i for i, el in enumerate(DOPANTS)}  # candidate lists use the model's order


def _by_z(elements: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(elements, key=lambda el: (_Z_ORDER.get(el, len(_Z_ORDER)), el)))


@dataclass(frozen=True)
class SamplerConfig(Settings, what="SamplerConfig"):
    """How co-doping scenarios are drawn. Ranges are inclusive ``(min, max)`` pairs.

    Attributes
    ----------
    n_dopants : (int, int)
        Number of distinct dopant species per scenario.
    conc_range : (float, float)
        Concentration of one species, atomic fraction of the supercell (0.002 = 0.2 at.%),
        drawn log-uniform.
    max_total : float
        Upper bound on the summed dopant fraction of the supercell.
    n_distractors : (int, int)
        Number of recommended-but-absent elements added to the candidate list.
    supercell_atoms : (int, int)
        Supercell sizes (atoms) the scenario will be realised in; checked here so that
        ``conc_range[0]`` is at least one atom after rounding in the largest cell.
    """

    n_dopants: tuple[int, int] = (1, 6)
    conc_range: tuple[float, float] = (0.002, 0.25)  # atomic fraction of the supercell
    max_total: float = 0.3  # atomic fraction of the supercell
    n_distractors: tuple[int, int] = (1, 4)
    supercell_atoms: tuple[int, int] = (433, 500)  # atoms

    def __post_init__(self):
        # Built directly too (not only by from_dict): the pairs and the number are read as from_dict reads them.
        for name, kind in (("n_dopants", int), ("conc_range", float), ("n_distractors", int), ("supercell_atoms", int)):
            object.__setattr__(self, name, to_pair(name, getattr(self, name), kind))
        object.__setattr__(self, "max_total", to_float("max_total", self.max_total))

        if self.n_dopants[0] < 1:
            raise DefectnetError(f"n_dopants must be >= 1, got {self.n_dopants}")
        lo, hi = self.conc_range
        if not 0.0 < lo <= hi < 1.0:
            raise DefectnetError(f"conc_range must lie in (0, 1), got {self.conc_range}")
        if not 0.0 < self.max_total <= 1.0:
            raise DefectnetError(f"max_total must be in (0, 1], got {self.max_total}")
        if self.n_dopants[1] * lo > self.max_total:
            raise DefectnetError(
                f"max_total={self.max_total} cannot hold {self.n_dopants[1]} dopants at "
                f"conc_range[0]={lo}"
            )
        if self.n_distractors[0] < 0:
            raise DefectnetError(f"n_distractors must be >= 0, got {self.n_distractors}")
        if self.supercell_atoms[0] < 1:
            raise DefectnetError(f"supercell_atoms must be >= 1, got {self.supercell_atoms}")
        if lo * self.supercell_atoms[1] < 0.5:
            raise DefectnetError(
                f"conc_range[0]={lo} is less than half an atom in a "
                f"{self.supercell_atoms[1]}-atom supercell"
            )

@dataclass(frozen=True)
class DopingScenario:
    """One co-doping scenario for a host.

    Attributes
    ----------
    dopants : tuple of (str, str, float)
        (dopant element, host site element, target atomic fraction of the supercell),
        one entry per species; stored in atomic-number order.
    candidates : tuple of str
        True dopants and distractors, stored in atomic-number order (the model's output
        order, :data:`defectnet.elements.DOPANTS`).
    distractors : tuple of str
        Candidates that are not in the sample.
    seed : int
        Seed of :func:`numpy.random.default_rng` the scenario was drawn from.
    """

    dopants: tuple[tuple[str, str, float], ...]
    candidates: tuple[str, ...]
    distractors: tuple[str, ...]
    seed: int

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        try:
            dopants = [(str(d), str(s), float(c)) for d, s, c in self.dopants]
        except (TypeError, ValueError):
            raise DefectnetError(
                f"dopants must be (dopant, site, fraction) triples, got {self.dopants!r}"
            ) from None
        # One canonical order (atomic number), so equal scenarios compare equal.
        set_("dopants", tuple(sorted(dopants, key=lambda t: (_Z_ORDER.get(t[0], len(_Z_ORDER)), t))))
        set_("candidates", _by_z(self.candidates))
        set_("distractors", _by_z(self.distractors))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise DefectnetError(f"seed must be an integer >= 0, got {self.seed!r}")
        set_("seed", int(self.seed))
        true = [d for d, _, _ in self.dopants]
        if len(set(true)) != len(true):
            raise DefectnetError(f"a dopant species appears twice in {true}")
        for dopant, site, conc in self.dopants:
            if dopant == site:
                raise DefectnetError(f"dopant {dopant} cannot sit on its own element's site")
            if not 0.0 < conc < 1.0:
                raise DefectnetError(f"{dopant} on {site}: fraction {conc} is not in (0, 1)")
        if set(self.distractors) & set(true):
            raise DefectnetError(f"distractors {sorted(set(self.distractors) & set(true))} are true dopants")
        once = len(set(self.candidates)) == len(self.candidates)
        if not once or set(self.candidates) != set(true) | set(self.distractors):
            raise DefectnetError("candidates must be the true dopants plus the distractors, once each")

    @property
    def elements(self) -> tuple[str, ...]:
        """The true dopant elements."""
        return tuple(d for d, _, _ in self.dopants)

    @property
    def total_concentration(self) -> float:
        """Summed dopant fraction of the supercell."""
        return float(sum(c for _, _, c in self.dopants))

    def to_dict(self) -> dict:
        return {
            "dopants": [list(t) for t in self.dopants],
            "candidates": list(self.candidates),
            "distractors": list(self.distractors),
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> DopingScenario:
        expected = {f.name for f in fields(cls)}
        if set(data) != expected:
            raise DefectnetError(
                f"DopingScenario needs keys {sorted(expected)}, got {sorted(data)}"
            )
        return cls(**data)


# --------------------------------------------------------------------------- sampling
def _generator(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise DefectnetError(f"rng must be a numpy Generator or a seed >= 0, got {rng!r}")


def _uniform_count(rng: np.random.Generator, bounds) -> int:
    if isinstance(bounds, (int, np.integer)) and not isinstance(bounds, bool):
        if bounds < 0:
            raise DefectnetError(f"a count must be >= 0, got {bounds}")
        return int(bounds)
    lo, hi = to_pair("n_distractors", bounds, int)
    if lo < 0:
        raise DefectnetError(f"n_distractors must be >= 0, got {bounds}")
    return int(rng.integers(lo, hi + 1))


def sample_candidates(true_dopants, records, n_distractors, rng) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Add distractors to the true dopants.

    Parameters
    ----------
    true_dopants : iterable of str
        Elements really present.
    records : list of DopantRecord
        The recommender's records for the host; distractors are drawn, uniformly without
        replacement, from their dopant elements that are not true dopants.
    n_distractors : int or (int, int)
        Number of distractors, or an inclusive range to draw it from; capped by what is
        available.
    rng : numpy.random.Generator or int
        Source of randomness (an int is used as a seed).

    Returns
    -------
    candidates, distractors : tuple of str
        Both ordered by atomic number; ``candidates`` = true dopants ∪ distractors.
    """
    rng = _generator(rng)
    true = set(true_dopants)
    pool = _by_z({r.dopant for r in records} - true)
    k = min(_uniform_count(rng, n_distractors), len(pool))
    picked = rng.choice(len(pool), size=k, replace=False) if k else []
    distractors = _by_z(pool[i] for i in picked)
    return _by_z(true | set(distractors)), distractors


def _host_shares(host_counts: Mapping[str, int]) -> dict[str, float]:
    """Atomic fraction of each host element (what its site can hold at most)."""
    if not isinstance(host_counts, Mapping) or not host_counts:
        raise DefectnetError(
            f"host_counts must be a non-empty {{element: count}} mapping, got {host_counts!r}"
        )
    for el, n in host_counts.items():
        check_element(el)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise DefectnetError(f"host_counts[{el!r}] must be a positive integer, got {n!r}")
    total = sum(int(n) for n in host_counts.values())
    return {el: int(n) / total for el, n in host_counts.items()}


def _concentrations(rng, sites, shares, config) -> np.ndarray:
    """Log-uniform fractions meeting the per-site and total bounds (see module docstring)."""
    lo, hi = config.conc_range
    upper = np.array([min(hi, shares[s]) for s in sites])
    log_lo, log_hi = np.log(lo), np.log(upper)
    groups = defaultdict(list)
    for i, s in enumerate(sites):
        groups[s].append(i)
    # (member indices, bound): each site element, then the whole cell.
    bounds = [(idx, shares[s]) for s, idx in groups.items()]
    bounds.append((list(range(len(sites))), config.max_total))

    for _ in range(MAX_RESAMPLES):
        c = np.exp(rng.uniform(log_lo, log_hi))
        if all(c[idx].sum() <= bound for idx, bound in bounds):
            return c
    # Shrink towards lo: the feasible s for bound B is (B − n lo) / Σ (c − lo).
    scale = 1.0
    for idx, bound in bounds:
        excess = float((c[idx] - lo).sum())
        if excess > 0:
            scale = min(scale, (bound - lo * len(idx)) / excess)
    # The factor just below 1 keeps rounding from landing a hair above a bound.
    return lo + max(scale, 0.0) * (1.0 - 1e-12) * (c - lo)


def sample_scenario(records, host_counts: Mapping[str, int], config: SamplerConfig, rng) -> DopingScenario:
    """Draw one co-doping scenario for a host.

    Parameters
    ----------
    records : list of DopantRecord
        The recommender's records for the host (``DopantRecommender.recommend``).
    host_counts : dict of str to int
        Atoms of each element in the host formula unit, e.g. ``{"Ga": 1, "As": 1}``;
        an element's share of the atoms bounds what its site can hold.
    config : SamplerConfig
    rng : numpy.random.Generator or int
        With a Generator, a 63-bit seed is drawn from it; with an int, that is the seed.
        All draws then come from ``numpy.random.default_rng(seed)``, so
        ``sample_scenario(records, host_counts, config, scenario.seed)`` reproduces a
        scenario.

    Returns
    -------
    DopingScenario
    """
    if not isinstance(config, SamplerConfig):
        raise DefectnetError(f"config must be a SamplerConfig, got {type(config).__name__}")
    if isinstance(rng, np.random.Generator):
        seed = int(rng.integers(0, 2**63 - 1))
    else:
        _generator(rng)  # validates
        seed = int(rng)
    gen = np.random.default_rng(seed)
    shares = _host_shares(host_counts)
    lo = config.conc_range[0]

    sites_of: dict[str, dict[str, float]] = defaultdict(dict)  # dopant → {site: score}
    for r in records:
        if r.site not in shares:
            raise DefectnetError(
                f"record {r.dopant}@{r.site}: {r.site} is not in host_counts {sorted(shares)}"
            )
        if r.dopant != r.site and shares[r.site] >= lo:
            sites_of[r.dopant][r.site] = max(float(r.score), sites_of[r.dopant].get(r.site, 0.0))
    available = _by_z(sites_of)
    if not available:
        raise DefectnetError("no recommended dopant fits this host; cannot sample a scenario")

    n = min(int(gen.integers(config.n_dopants[0], config.n_dopants[1] + 1)), len(available))
    chosen = _by_z(available[i] for i in gen.choice(len(available), size=n, replace=False))

    # Site per dopant ∝ score, among sites that can still take one more dopant at `lo`.
    room = dict(shares)
    dopants, sites = [], []
    for dopant in chosen:
        options = [s for s in sorted(sites_of[dopant]) if room[s] >= lo - 1e-12]
        if not options:  # every site of this dopant is full at the minimum concentration
            continue
        weights = np.array([sites_of[dopant][s] for s in options]) + 1e-12
        site = options[int(gen.choice(len(options), p=weights / weights.sum()))]
        room[site] -= lo
        dopants.append(dopant)
        sites.append(site)

    conc = _concentrations(gen, sites, shares, config)
    candidates, distractors = sample_candidates(dopants, records, config.n_distractors, gen)
    return DopingScenario(
        dopants=tuple((d, s, float(c)) for d, s, c in zip(dopants, sites, conc, strict=True)),
        candidates=candidates,
        distractors=distractors,
        seed=seed,
    )
