"""A cheap toy dataset with the physics' main structure, for tests, speed benchmarks and debugging.

Each host is 1–3 elements from a pool; its PDoS is an acoustic Debye band plus one optical
Gaussian per element at ``E ∝ 1/sqrt(mass)``. A dopant at concentration c replacing a host
element of mass m_s moves a weight 0.7c of that element's band into a mode at
``E_s sqrt(m_s / m_d)`` (a local mode above the band if lighter, a resonance inside it if
heavier) and shifts the host peaks by ∝ c (m_s − m_d) / m_s. Candidates are the true dopants
plus distractors drawn among elements of similar mass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from defectnet.elements import DOPANTS, mass_amu
from defectnet.grid import DEFAULT_GRID, EnergyGrid
from defectnet.model.dataset import TRAINING_ARRAYS, HOST_ELEMENTS, TrainingData

HOST_POOL = ("B", "C", "N", "O", "F", "Mg", "Al", "Si", "P", "S", "Cl", "Zn", "Ga", "Ge", "As",
             "Se", "Cd", "In", "Sn", "Sb", "Te", "Li", "Na", "K", "Ca", "Ti", "Cu", "Ag", "Ba")
N_ACOUSTIC = 12  # Gaussians that make the acoustic Debye band


@dataclass
class _ToyHost:
    """One toy host: its elements, their masses (amu), optical energies (meV) and the pristine modes."""

    name: str
    elements: list
    masses: np.ndarray
    e_opt: np.ndarray
    composition: np.ndarray  # (H,) atomic fractions, order HOST_ELEMENTS
    centres: np.ndarray  # pristine Gaussians: centres (meV), weights, widths (meV σ)
    weights: np.ndarray
    widths: np.ndarray
    pool: list  # vocabulary indices of plausible dopants


def _peaks(grid: EnergyGrid, centres, weights, widths) -> np.ndarray:
    """Sum of unit-area Gaussians, as bin-mean densities on the grid, unit area, shape (G,)."""
    e, w = grid.centers, grid.widths
    c, a, s = (np.asarray(x, float)[:, None] for x in (centres, weights, widths))
    dens = (a * np.exp(-0.5 * ((e[None] - c) / s) ** 2) / (s * np.sqrt(2 * np.pi))).sum(0)
    return dens / np.sum(dens * w)


def _toy_host(h: int, rng, sigma_mev: float) -> _ToyHost:
    k = int(rng.integers(1, 4))
    els = list(rng.choice(HOST_POOL, size=k, replace=False))
    counts = rng.integers(1, 4, size=k)
    frac = counts / counts.sum()
    masses = np.array([mass_amu(el) for el in els])
    stiffness = rng.uniform(2.0e4, 6.0e4)  # meV² amu: E_i = sqrt(stiffness / m_i)
    e_opt = np.sqrt(stiffness / masses)
    e_debye = 0.55 * e_opt.min()
    comp = np.zeros(len(HOST_ELEMENTS), np.float32)
    for el, f in zip(els, frac):
        comp[HOST_ELEMENTS.index(el)] = f
    acoustic_c = np.linspace(0.1, 1.0, N_ACOUSTIC) * e_debye
    acoustic_w = acoustic_c**2 / np.sum(acoustic_c**2) * 0.3
    vocab_mass = np.array([mass_amu(el) for el in DOPANTS])
    # plausible dopants: vocabulary elements within a factor ~3 in mass of a host element
    pool = [i for i, el in enumerate(DOPANTS) if el not in els and np.min(np.abs(np.log(vocab_mass[i] / masses))) < 1.1]
    return _ToyHost(name=f"synth{h:03d}-" + "".join(f"{el}{c}" for el, c in zip(els, counts)), elements=els,
                    masses=masses, e_opt=e_opt, composition=comp,
                    centres=np.concatenate([acoustic_c, e_opt]), weights=np.concatenate([acoustic_w, 0.7 * frac]),
                    widths=np.concatenate([np.full(N_ACOUSTIC, 0.15 * e_debye), 0.06 * e_opt]) + sigma_mev, pool=pool)


def _toy_sample(host: _ToyHost, rng, grid: EnergyGrid, sigma_mev: float, max_dopants: int, n_distractors: tuple):
    """(doped (G,), targets (V,), candidates (V,), number of dopants) of one sample of ``host``."""
    vocab_mass = np.array([mass_amu(el) for el in DOPANTS])
    k = len(host.elements)
    n_d = int(rng.integers(1, min(max_dopants, len(host.pool) - 1) + 1))
    chosen = rng.choice(host.pool, size=n_d, replace=False)
    conc = np.exp(rng.uniform(np.log(0.002), np.log(0.25), size=n_d))
    conc *= min(1.0, 0.3 / conc.sum())
    c_w, c_c, c_s = list(host.weights), list(host.centres), list(host.widths)
    for d, c in zip(chosen, conc):
        site = int(np.argmin(np.abs(np.log(vocab_mass[d] / host.masses))))
        ratio = host.masses[site] / vocab_mass[d]
        c_w[N_ACOUSTIC + site] = max(c_w[N_ACOUSTIC + site] - 0.7 * c, 0.0)
        c_c.append(host.e_opt[site] * np.sqrt(ratio) * (1.15 if ratio > 1 else 0.9))
        c_w.append(0.7 * c)
        c_s.append(0.015 * host.e_opt[site] + sigma_mev)
        c_c[N_ACOUSTIC:N_ACOUSTIC + k] = list(np.array(c_c[N_ACOUSTIC:N_ACOUSTIC + k]) * (1 + 0.3 * c * (1 - 1 / ratio)))
    n_x = int(rng.integers(n_distractors[0], n_distractors[1] + 1))
    others = [i for i in host.pool if i not in set(chosen.tolist())]
    distract = rng.choice(others, size=min(n_x, len(others)), replace=False)
    t = np.zeros(len(DOPANTS), np.float32)
    t[chosen] = conc
    cand = np.zeros(len(DOPANTS), bool)
    cand[chosen] = True
    cand[distract] = True
    return _peaks(grid, c_c, c_w, c_s), t, cand, n_d


def make_synthetic(n_hosts: int = 12, samples_per_host: int = 40, *, seed: int = 0, grid: EnergyGrid = DEFAULT_GRID,
                   fwhm_mev: float = 1.0, max_dopants: int = 4, n_distractors: tuple = (1, 3)) -> TrainingData:
    """The toy dataset of the module docstring.

    Parameters
    ----------
    n_hosts, samples_per_host : int
    seed : int
        All randomness comes from ``numpy.random.default_rng(seed)``.
    grid : EnergyGrid
    fwhm_mev : float
        Gaussian width of every mode, meV.
    max_dopants : int
        Up to this many dopant species per sample (1–6).
    n_distractors : (int, int)
        Inclusive range of distractors per sample.

    Returns
    -------
    TrainingData
        With ``pristine_gpdos``/``doped_gpdos`` equal to the total spectra.
    """
    rng = np.random.default_rng(seed)
    sigma = fwhm_mev / 2.3548
    rows = {k: [] for k in TRAINING_ARRAYS}
    names = []
    for h in range(n_hosts):
        host = _toy_host(h, rng, sigma)
        names.append(host.name)
        pristine = _peaks(grid, host.centres, host.weights, host.widths)
        for _ in range(samples_per_host):
            doped, t, cand, n_d = _toy_sample(host, rng, grid, sigma, max_dopants, n_distractors)
            for key, val in (("pristine", pristine), ("doped", doped), ("pristine_gpdos", pristine),
                             ("doped_gpdos", doped), ("targets", t), ("candidates", cand),
                             ("composition", host.composition), ("host_id", h), ("n_dopants", n_d),
                             ("sample_id", len(rows["sample_id"])), ("supercell_atoms", 480)):
                rows[key].append(val)
    arrays = {k: np.stack(v) if np.ndim(v[0]) else np.array(v) for k, v in rows.items()}
    attrs = {"potential": "synthetic", "tier": "synthetic", "broadening": json.dumps({"fwhm_mev": fwhm_mev}),
             "config": json.dumps({"generator": "make_synthetic", "n_hosts": n_hosts,
                                   "samples_per_host": samples_per_host, "seed": seed})}
    return TrainingData(**arrays, host_names=np.array(names, dtype=object), grid=grid, attrs=attrs)
