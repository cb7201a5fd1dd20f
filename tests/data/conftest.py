"""Shared settings of the EMT pipeline tests (fcc Cu/Au/Ag/Pd, 32-atom supercells; no MLIP)."""

from types import SimpleNamespace

import pytest

from defectnet.data.config import GenerateConfig

EMT_DOPANTS = ["Ni", "Cu", "Pd", "Ag", "Al"]

#: A small EMT dataset: 32-atom supercells, nearest-neighbour patches (2.6 Å), two dopants per pool.
BASE = {
    "samples_per_host": 6,
    "samples_per_task": 2,
    "potential": "emt",
    "tier": "patch",
    "supercell_atoms": 32,
    "seed": 7,
    "sampler": {"n_dopants": [1, 2], "conc_range": [0.03, 0.12], "max_total": 0.25, "n_distractors": [1, 2],
                "dopant_pool": 2, "vocabulary": EMT_DOPANTS},
    "host_settings": {"fc_min_width_ang": 6.5, "mesh_length_ang": 15.0},
    "tier_settings": {"cutoff_ang": 2.6},
    "task_timeout_s": 300,
}


def _config(hosts, **changes) -> GenerateConfig:
    return GenerateConfig.from_dict({**BASE, "hosts": hosts, **changes})


def _inline(**atoms):
    return {"structures": {name: a for name, a in atoms.items()}}


@pytest.fixture(scope="session")
def emt():
    """The EMT base config, its dopants, and helpers: ``emt.config(hosts, **changes)``, ``emt.inline(**atoms)``."""
    return SimpleNamespace(base=BASE, dopants=EMT_DOPANTS, config=_config, inline=_inline)


@pytest.fixture(scope="session")
def recommender():
    """A recommender fitted on the EMT dopants."""
    from defectnet.recommend import DopantRecommender

    return DopantRecommender(vocabulary=EMT_DOPANTS, n_max=20).fit()


@pytest.fixture(scope="session")
def emt_store(emt, tmp_path_factory):
    """A generated store (tests copy it before changing it): Cu, Au and hcp Cu (fine; hcp has
    two equivalent sites), bcc Cu (imaginary modes under EMT), Si (no EMT). Returns (path, config, summary)."""
    from ase.build import bulk

    from defectnet.data.generate import run_generate

    out = tmp_path_factory.mktemp("emt") / "emt.sqlite"
    hosts = emt.inline(Cu=bulk("Cu", "fcc", a=3.6), Au=bulk("Au", "fcc", a=4.08),
                       **{"Cu-hcp": bulk("Cu", "hcp", a=2.55, c=4.16), "Cu-bcc": bulk("Cu", "bcc", a=2.87),
                          "Si": bulk("Si", "diamond", a=5.43)})
    cfg = emt.config(hosts)
    summary = run_generate(cfg, out, workers=2, progress=False)
    return out, cfg, summary
