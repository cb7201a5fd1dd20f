"""Candidate hosts: curated experimental structures and decorated crystal prototypes.

Two pure, deterministic sources feed ``defectnet hosts build``:

* :func:`curated_hosts` — the systems users ask about (Si, GaAs, GaN, ZnO, CdTe, SrTiO3,
  CuInSe2, Cu2ZnSnS4, MgB2, ...) built from experimental room-temperature lattice constants
  (the reference is recorded on each host). Internal coordinates of the complex structures are
  the published ones to ~1e-3; the build relaxes everything with the MLIP anyway.
* :func:`generate_candidates` — prototypes decorated with charge-balanced element sets.
  Prototypes come from pymatgen's copy of the AFLOW prototype encyclopedia (Mehl et al.,
  Comput. Mater. Sci. 136, S1, 2017) and, where the encyclopedia has no entry (kesterite,
  double perovskites, delafossite), from ``ase.spacegroup.crystal``.

Decoration rules (each one a filter; a candidate must pass all; rule numbers are cited in code):

1. **Elements**: Z ≤ 83 (what SevenNet-0/CHGNet were trained on), no noble gases, no
   radioactive Tc/Pm.
2. **Charge balance**: every prototype lists oxidation-state patterns, one formal state per site
   (e.g. zincblende: I–VII, II–VI, III–V, IV–IV); an element may take a state only if it is
   in pymatgen's ``common_oxidation_states`` or ``icsd_oxidation_states``; each pattern sums
   to zero over the primitive cell.
3. **Coordination**: a cation must have a Shannon radius tabulated for the coordination
   number it has in the prototype (Shannon lists what is observed: no Ca²⁺ in tetrahedra,
   no Ga³⁺ in 12-fold sites). Nonmetal cations (B, C, N, P, S, Se) only in sites with
   CN ≤ 4. Sites whose pattern names an explicit element list (lone-pair Sn²⁺/Pb²⁺, ...)
   take the nearest tabulated CN.
4. **Electronegativity**: every cation less electronegative (Pauling) than every anion,
   within 0.3 (PbTe: χ(Pb) = 2.33 > χ(Te) = 2.1).
5. **Size match**: each cation–anion bond length is predicted as the Pauling-ionicity
   weighted mix of the Shannon ionic-radius sum and the covalent-radius sum (Cordero 2008),
   w = 1 − exp(−Δχ²/4); the lattice is scaled by the weighted geometric mean of
   predicted/prototype bond ratios, and the spread of those ratios (max/min, the
   generalised Goldschmidt tolerance) must be ≤ the prototype's ``max_mismatch``
   (1.08 for cubic perovskites, 1.10 for double perovskites, 1.15 otherwise).
6. **Redox**: strong oxidants (Pb⁴⁺, Tl³⁺, Bi⁵⁺, Ce⁴⁺, Mn⁴⁺, Ni³⁺, Cu³⁺, Ag²⁺, Cr⁶⁺, ...) only
   with O²⁻/F⁻; states that are really metal–metal dimers (Hg⁺, Ga²⁺, In²⁺, Cd⁺) are not used;
   platinum-group metals and Au are left out of the default cation pools (square-planar d⁸ and
   metallic chemistry that radius rules do not describe).
7. **Distances** after scaling: no atom pair closer than 0.7× (cation–cation) or 0.9×
   (anion–anion) the covalent-radius sum.
8. **Uniqueness**: one candidate per (reduced formula, space group, primitive-cell size) — the
   size keeps polytypes such as wurtzite and 4H apart; curated hosts win.

Candidates are ranked within a prototype by a plausibility score (size match, common
oxidation states, no 4f elements) and interleaved across prototypes so that any prefix of
the list covers every prototype family. The seed only breaks score ties.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

import numpy as np

from defectnet.errors import DefectnetError
from defectnet.hosts.chemistry import (
    DEFAULT_ANIONS,
    DIMER_STATES,
    EN_TOLERANCE,
    HARD_ANIONS,
    NOBLE_METALS,
    NON_CATIONS,
    NONMETAL_CATIONS,
    OXIDANT_STATES,
    bond_length,
    covalent_radius,
    electronegativity,
    host_elements,
    oxidation_states,
)
from defectnet.hosts.curated import curated_hosts
from defectnet.hosts.library import Host, reduced_formula, spacegroup_of
from defectnet.hosts.prototypes import PROTOTYPES, Prototype, SiteSpec, parse_pattern

NN_SHELL = 1.2  # neighbours within 1.2 × the shortest cation–anion distance form the first shell
MIXED_SHELL = 1.4  # a second counter-ion species belongs to the shell if it comes this close
MAX_PRIMITIVE_ATOMS = 20


# ===================================================================== geometry analysis
@dataclass(frozen=True)
class _Geometry:
    """Per-prototype numbers needed to judge and scale a decoration (reference lengths, Å)."""

    cn: dict[str, int]  # slot -> coordination by the opposite role
    constraints: tuple[tuple[tuple[tuple[str, str], ...], float, float], ...]  # ((cat, an) pairs, d0 sum, weight)
    bridges: tuple[
        tuple[int, int, int, np.ndarray, np.ndarray], ...
    ]  # (anion idx, cat1 idx, cat2 idx, offset1, offset2)


def _roles(proto: Prototype) -> dict[str, int]:
    """slot -> +1 (cation) / -1 (anion), the same in every pattern."""
    signs = None
    for pat in proto.patterns:
        specs = parse_pattern(pat)
        if len(specs) != len(proto.slots):
            raise ValueError(f"{proto.key}: pattern {pat!r} has {len(specs)} sites for {len(proto.slots)} slots")
        s = tuple(int(np.sign(sp.charge)) for sp in specs)
        if signs is not None and s != signs:
            raise ValueError(f"{proto.key}: patterns disagree on which sites are cations")
        signs = s
    return dict(zip(proto.slots, signs))


@lru_cache(maxsize=None)
def _geometry(key: str) -> _Geometry:
    from ase.neighborlist import neighbor_list

    proto = PROTOTYPES[key]
    t = proto.template()
    if set(t.slots) != set(proto.slots):
        raise ValueError(f"{key}: template slots {sorted(set(t.slots))} != declared {sorted(proto.slots)}")
    roles = _roles(proto)
    atoms = t.atoms()
    i_idx, j_idx, dist, vec, shifts = neighbor_list("ijdDS", atoms, cutoff=6.0)
    role = np.array([roles[s] for s in t.slots])
    opposite = role[i_idx] != role[j_idx]
    slot_of = np.array(t.slots)
    shells: dict[int, np.ndarray] = {}
    for i in range(len(atoms)):
        m = (i_idx == i) & opposite
        if not m.any():
            raise ValueError(f"{key}: site {i} ({t.slots[i]}) has no counter-ion within 6 Å")
        dmin = dist[m].min()
        # first shell per counter-ion slot (mixed-anion sites: PbFCl's Pb has 4 F + 5 Cl),
        # counting a slot only if it comes within MIXED_SHELL of the nearest counter-ion
        keep = np.zeros(len(dist), bool)
        for s in set(slot_of[j_idx[m]]):
            ms = m & (slot_of[j_idx] == s)
            ds = dist[ms].min()
            if ds <= MIXED_SHELL * dmin:
                keep |= ms & (dist <= NN_SHELL * ds + 1e-6)
        shells[i] = np.flatnonzero(keep)
    cn_by_slot: dict[str, list[int]] = {}
    for i, s in enumerate(t.slots):
        cn_by_slot.setdefault(s, []).append(len(shells[i]))
    cn = {s: Counter(v).most_common(1)[0][0] for s, v in cn_by_slot.items()}

    # bridging anions X between two different cation slots on a straight line (B–X–B')
    bridges, bridged_pairs = [], set()
    for i in range(len(atoms)):
        if role[i] > 0 or len(shells[i]) != 2:
            continue
        a, b = shells[i]
        if t.slots[j_idx[a]] == t.slots[j_idx[b]]:
            continue
        cosang = np.dot(vec[a], vec[b]) / (dist[a] * dist[b])
        if cosang < -0.98:
            bridges.append((i, int(j_idx[a]), int(j_idx[b]), shifts[a], shifts[b]))
            bridged_pairs.add(tuple(sorted(((t.slots[j_idx[a]], t.slots[i]), (t.slots[j_idx[b]], t.slots[i])))))

    # mean distance and count of each cation–anion pair type (counted from the cation side)
    sums: dict[tuple[str, str], list[float]] = {}
    for i in range(len(atoms)):
        if role[i] < 0:
            continue
        for n in shells[i]:
            sums.setdefault((t.slots[i], t.slots[j_idx[n]]), []).append(dist[n])
    constraints, used = [], set()
    for group in sorted(bridged_pairs):
        d0 = sum(float(np.mean(sums[p])) for p in group)
        constraints.append((group, d0, float(sum(len(sums[p]) for p in group))))
        used.update(group)
    for pair in sorted(sums):
        if pair not in used:
            constraints.append(((pair,), float(np.mean(sums[pair])), float(len(sums[pair]))))
    return _Geometry(cn=cn, constraints=tuple(constraints), bridges=tuple(bridges))


# ===================================================================== decoration
@dataclass(frozen=True)
class Decoration:
    """One charge-balanced assignment of elements to a prototype's slots."""

    prototype: str
    elements: tuple[str, ...]  # per slot
    charges: tuple[int, ...]  # per slot
    scale: float  # lattice scale factor applied to the template
    mismatch: float  # spread of predicted/template bond ratios (1 = perfect)
    bonds: dict  # (cation slot, anion slot) -> predicted length, Å
    score: float


def _pool(spec: SiteSpec, slot_cn: int) -> list[tuple[str, bool, bool]]:
    """(element, state is common, radius must match CN exactly) allowed on one site."""
    allowed = set(host_elements())
    if spec.charge < 0:
        names = spec.pool or DEFAULT_ANIONS.get(spec.charge, ())
        # an explicit anion list may use a state pymatgen does not list (S⁻ in the S2²⁻ dimer of pyrite)
        return [
            (el, oxidation_states(el).get(spec.charge, spec.pool is None), False)
            for el in names
            if el in allowed and (spec.pool is not None or spec.charge in oxidation_states(el))
        ]
    out = []
    names = spec.pool or [el for el in host_elements() if el not in NON_CATIONS | NOBLE_METALS]
    for el in names:
        states = oxidation_states(el)
        if el not in allowed or spec.charge not in states or (el, spec.charge) in DIMER_STATES:
            continue
        if spec.pool is None and el in NONMETAL_CATIONS and slot_cn > 4:
            continue
        out.append((el, states[spec.charge], spec.pool is None))
    return out


@lru_cache(maxsize=None)
def decorate(key: str, *, max_mismatch: float | None = None) -> tuple[Decoration, ...]:
    """Every decoration of prototype ``key`` that passes rules 1–6 (see module doc), unsorted (cached)."""
    proto = PROTOTYPES[key]
    geo = _geometry(key)
    t = proto.template()
    counts = Counter(t.slots)
    limit = max_mismatch or proto.max_mismatch
    share = {s: g for g in proto.may_share for s in g}
    log_limit = math.log(limit)
    out: list[Decoration] = []
    for pat in proto.patterns:
        specs = parse_pattern(pat)
        total = sum(sp.charge * counts[s] for sp, s in zip(specs, proto.slots))
        if total != 0:
            raise ValueError(f"{key}: pattern {pat!r} leaves a charge of {total:+d} per cell")
        q = {s: sp.charge for s, sp in zip(proto.slots, specs)}
        pools = {s: _pool(sp, geo.cn[s]) for s, sp in zip(proto.slots, specs)}
        anions = [s for s in proto.slots if q[s] < 0]
        # depth-first over slots, anions first, so every rule is checked as soon as it can be
        # (a cation that does not fit is dropped before the next slot is tried)
        order = sorted(proto.slots, key=lambda s: (q[s] > 0, len(pools[s])))
        depth_of = {s: i for i, s in enumerate(order)}
        ready: list[list[int]] = [[] for _ in order]  # constraints complete at each depth
        for ci, (pairs, _, _) in enumerate(geo.constraints):
            ready[max(depth_of[x] for pair in pairs for x in pair)].append(ci)
        assigned: dict[str, tuple[str, bool, bool]] = {}

        def emit():
            combo = [assigned[s] for s in proto.slots]
            els = tuple(c[0] for c in combo)
            dec = _size_match(proto, geo, specs, els, [c[2] for c in combo], limit)
            n_uncommon = sum(not c[1] for c in combo)
            n_f = sum(57 <= _z(el) <= 71 and el != "La" for el in els)
            score = (
                proto.prior
                - math.log(dec[1]) / log_limit
                - 0.5 * n_uncommon
                - 0.25 * n_f
                - _distance_to_known(key, els) / 15.0
            )
            out.append(Decoration(key, els, tuple(sp.charge for sp in specs), dec[0], dec[1], dec[2], round(score, 6)))

        def visit(depth: int, lo: float, hi: float) -> None:
            if depth == len(order):
                emit()
                return
            s = order[depth]
            for cand in pools[s]:
                el = cand[0]
                if any(el == other[0] and o not in share.get(s, ()) for o, other in assigned.items()):
                    continue
                if q[s] > 0:  # all anions are assigned by now
                    an_els = [assigned[a][0] for a in anions]
                    if electronegativity(el) > min(electronegativity(a) for a in an_els) + EN_TOLERANCE:
                        continue
                    if (el, q[s]) in OXIDANT_STATES and not set(an_els) <= HARD_ANIONS:
                        continue
                assigned[s] = cand
                window = _bond_window(geo, ready[depth], assigned, q, lo, hi, log_limit)
                if window is not None:
                    visit(depth + 1, *window)
                del assigned[s]

        visit(0, math.inf, -math.inf)
    return tuple(out)


def _bond_window(geo, constraints, assigned: dict, q: dict, lo: float, hi: float, log_limit: float):
    """(lo, hi) of log(d / d0) widened by the bond ``constraints`` (indices into ``geo.constraints``)
    of the slots ``assigned`` so far; None when a bond length is unknown or the window exceeds ``log_limit``."""
    for ci in constraints:
        pairs, d0, _ = geo.constraints[ci]
        d = 0.0
        for cat, an in pairs:
            b = bond_length(assigned[cat][0], q[cat], geo.cn[cat], assigned[an][0], q[an], geo.cn[an],
                            exact=assigned[cat][2])
            if b is None:
                return None
            d += b
        lg = math.log(d / d0)
        lo, hi = min(lo, lg), max(hi, lg)
        if hi - lo > log_limit:
            return None
    return lo, hi


@lru_cache(maxsize=None)
def _known_members(key: str) -> np.ndarray:
    """Mendeleev numbers of the known members of a prototype, shape (n_known, n_slots)."""
    proto = PROTOTYPES[key]
    members = [m.split() for m in proto.known]
    if all(s in host_elements() for s in proto.slots):  # the prototype's own compound
        members.append(list(proto.slots))
    for m in members:
        if len(m) != len(proto.slots):
            raise ValueError(f"{key}: known member {m} does not have one element per slot")
    return np.array([[_mendeleev(el) for el in m] for m in members], dtype=float).reshape(-1, len(proto.slots))


@lru_cache(maxsize=None)
def _mendeleev(el: str) -> float:
    from pymatgen.core import Element

    return float(Element(el).mendeleev_no)


def _distance_to_known(key: str, els: tuple[str, ...]) -> float:
    """Mean per-site |ΔMendeleev number| to the nearest known member (0 for a known member)."""
    known = _known_members(key)
    if len(known) == 0:
        return 0.0
    m = np.array([_mendeleev(el) for el in els])
    return float(np.abs(known - m).mean(axis=1).min())


@lru_cache(maxsize=None)
def _z(el: str) -> int:
    from ase.data import atomic_numbers

    return atomic_numbers[el]


def _size_match(proto, geo, specs, els, exact, limit):
    """(scale, mismatch, bonds) if every bond is predictable and the ratios agree within ``limit``."""
    idx = {s: i for i, s in enumerate(proto.slots)}
    bonds, logs, weights = {}, [], []
    for pairs, d0, weight in geo.constraints:
        d = 0.0
        for cat, an in pairs:
            ic, ia = idx[cat], idx[an]
            if (cat, an) not in bonds:
                b = bond_length(
                    els[ic], specs[ic].charge, geo.cn[cat], els[ia], specs[ia].charge, geo.cn[an], exact=exact[ic]
                )
                if b is None:
                    return None
                bonds[(cat, an)] = b
            d += bonds[(cat, an)]
        logs.append(math.log(d / d0))
        weights.append(weight)
    mismatch = math.exp(max(logs) - min(logs))
    if mismatch > limit:
        return None
    scale = math.exp(float(np.average(logs, weights=weights)))
    return scale, mismatch, bonds


def build_structure(dec: Decoration):
    """The decorated, scaled primitive cell as ``ase.Atoms`` (bridging anions placed by bond lengths)."""
    proto = PROTOTYPES[dec.prototype]
    t = proto.template()
    geo = _geometry(dec.prototype)
    mapping = dict(zip(proto.slots, dec.elements))
    atoms = t.atoms(mapping)
    atoms.set_cell(t.cell * dec.scale, scale_atoms=True)
    if geo.bridges:
        pos = atoms.positions.copy()
        cell = atoms.cell.array
        for ix, c1, c2, s1, s2 in geo.bridges:
            p1 = atoms.positions[c1] + s1 @ cell
            p2 = atoms.positions[c2] + s2 @ cell
            d1 = dec.bonds[(t.slots[c1], t.slots[ix])]
            d2 = dec.bonds[(t.slots[c2], t.slots[ix])]
            pos[ix] = p1 + (p2 - p1) * d1 / (d1 + d2)
        atoms.positions = pos
        atoms.wrap()
    return atoms


def min_distance_ok(atoms, charges: dict[str, int] | None = None) -> bool:
    """No pair closer than 0.7× (cation–cation / any) or 0.9× (anion–anion) the covalent-radius sum."""
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, cutoff=4.0)
    if len(d) == 0:
        return True
    symbols = np.array(atoms.get_chemical_symbols())
    rc = np.array([covalent_radius(s) for s in symbols])
    factor = np.full(len(d), 0.7)
    if charges:
        q = np.array([charges.get(s, 0) for s in symbols])
        factor[(q[i] < 0) & (q[j] < 0)] = 0.9
    return bool(np.all(d >= factor * (rc[i] + rc[j]) - 1e-9))


@lru_cache(maxsize=None)
def _pair_min_distances(key: str) -> dict[tuple[str, str], float]:
    """Shortest distance (Å, template scale) between each pair of slots."""
    from ase.neighborlist import neighbor_list

    t = PROTOTYPES[key].template()
    i, j, d = neighbor_list("ijd", t.atoms(), cutoff=6.0)
    out: dict[tuple[str, str], float] = {}
    for a, b, x in zip(i, j, d):
        k = tuple(sorted((t.slots[a], t.slots[b])))
        out[k] = min(out.get(k, np.inf), float(x))
    return out


def _distances_ok(dec: Decoration) -> bool:
    """:func:`min_distance_ok` from the template's pair distances (uniform scaling, no bridges)."""
    proto = PROTOTYPES[dec.prototype]
    el = dict(zip(proto.slots, dec.elements))
    q = dict(zip(proto.slots, dec.charges))
    for (a, b), d in _pair_min_distances(dec.prototype).items():
        factor = 0.9 if q[a] < 0 and q[b] < 0 else 0.7
        if d * dec.scale < factor * (covalent_radius(el[a]) + covalent_radius(el[b])) - 1e-9:
            return False
    return True


@lru_cache(maxsize=None)
def _spacegroup(key: str, classes: tuple[int, ...]) -> tuple[int, str]:
    """Space group of the template with slots coloured by ``classes`` (equal element = equal class)."""
    from ase import Atoms

    proto = PROTOTYPES[key]
    t = proto.template()
    colour = dict(zip(proto.slots, classes))
    atoms = Atoms(numbers=[colour[s] + 1 for s in t.slots], cell=t.cell, scaled_positions=t.frac, pbc=True)
    return spacegroup_of(atoms)


def decoration_host(dec: Decoration, *, name: str | None = None) -> Host | None:
    """The unrelaxed candidate :class:`Host` of a decoration (None if it fails the distance rule)."""
    proto = PROTOTYPES[dec.prototype]
    ox = {el: q for el, q in zip(dec.elements, dec.charges)}
    geo = _geometry(dec.prototype)
    if not geo.bridges and not _distances_ok(dec):
        return None
    atoms = build_structure(dec)
    if len(atoms) > MAX_PRIMITIVE_ATOMS:
        return None
    if geo.bridges and not min_distance_ok(atoms, ox):
        return None
    classes = tuple(dec.elements.index(e) for e in dec.elements)
    formula = reduced_formula(atoms.get_chemical_symbols(), ox)
    return Host.from_atoms(
        atoms,
        name=name or f"{formula}-{proto.key}",
        source="prototype",
        prototype=proto.key,
        family=proto.family,
        reference=proto.source,
        oxidation_states=dict(sorted(ox.items(), key=lambda kv: kv[1], reverse=True)),
        decoration=dict(zip(proto.slots, dec.elements)),
        spacegroup=_spacegroup(dec.prototype, classes),
        provenance={
            "status": "candidate",
            "score": dec.score,
            "mismatch": round(dec.mismatch, 4),
            "scale": round(dec.scale, 4),
            "checks": {"charge_balanced": True, "min_distance_ok": True},
        },
    )


# ===================================================================== the candidate list
def structure_key(host: Host) -> tuple[str, int, int]:
    """(reduced formula, space-group number, primitive atoms): what "the same structure" means here.

    The formula is pymatgen's canonical one, so that the two decorations of one lattice
    (GeSi and SiGe zincblende: the same crystal with its sublattices swapped) are one structure.
    """
    return _canonical_formula(host.formula), host.spacegroup_number, host.n_atoms


@lru_cache(maxsize=None)
def _canonical_formula(formula: str) -> str:
    from pymatgen.core import Composition

    return Composition(formula).reduced_formula


def generate_candidates(
    *,
    seed: int = 0,
    prototypes: Iterable[str] | None = None,
    max_per_prototype: int | None = 250,
    exclude: Iterable[tuple[str, int]] = (),
    include_curated_keys: bool = True,
) -> list[Host]:
    """Decorated prototype candidates, ranked and interleaved across prototypes.

    Parameters
    ----------
    seed : int
        Breaks ties between equal scores (the list is otherwise fully determined by the rules).
    prototypes : iterable of str, optional
        Registry keys to use (default: all of :data:`PROTOTYPES`, in registry order).
    max_per_prototype : int or None
        Keep at most this many best-scored candidates per prototype (keeps the list diverse).
    exclude : iterable of (reduced formula, space-group number, atoms in the primitive cell)
        Structures already covered elsewhere (see :func:`structure_key`).
    include_curated_keys : bool
        Also exclude everything the curated hosts cover.

    Returns
    -------
    list of Host
        Unrelaxed candidates (``source="prototype"``), unique by :func:`structure_key` and name.
    """
    rng = np.random.default_rng(seed)
    keys = list(prototypes) if prototypes is not None else list(PROTOTYPES)
    for k in keys:
        if k not in PROTOTYPES:
            raise DefectnetError(f"unknown prototype {k!r}; expected one of {', '.join(PROTOTYPES)}")
    seen = set(exclude)
    if include_curated_keys:
        seen |= {structure_key(h) for h in curated_hosts()}
    ranked: dict[str, list[Decoration]] = {}
    for k in keys:
        decs = decorate(k)
        tie = rng.permutation(len(decs))
        order = sorted(range(len(decs)), key=lambda i: (-decs[i].score, decs[i].elements, tie[i]))
        ranked[k] = [decs[i] for i in order]
    out: list[Host] = []
    names: set[str] = set()
    taken: Counter = Counter()
    cursors = {k: 0 for k in keys}
    active = list(keys)
    while active:  # round-robin: the best remaining candidate of each prototype per round
        for k in list(active):
            host = None
            while host is None and cursors[k] < len(ranked[k]):
                h = decoration_host(ranked[k][cursors[k]])
                cursors[k] += 1
                if h is not None and structure_key(h) not in seen and h.name not in names:
                    host = h
            if host is None:
                active.remove(k)
                continue
            seen.add(structure_key(host))
            names.add(host.name)
            out.append(host)
            taken[k] += 1
            if max_per_prototype is not None and taken[k] >= max_per_prototype:
                active.remove(k)
    return out


def all_candidates(*, seed: int = 0, max_per_prototype: int | None = 250) -> list[Host]:
    """Curated hosts first, then the decorated prototype candidates (the build's work list)."""
    return curated_hosts() + generate_candidates(seed=seed, max_per_prototype=max_per_prototype)
