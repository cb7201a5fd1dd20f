"""Generation config: validation with one-line errors naming the key, round trip and identity."""

import json

import pytest
import yaml

from defectnet.data.config import GenerateConfig, load_config
from defectnet.errors import DefectnetError




# ---------------------------------------------------------------------------- config
@pytest.mark.parametrize("data, fragment", [
    ({"hosts": ["Si"], "colour": 1}, "unknown config key 'colour'"),
    ({"hosts": ["Si"], "sampler": {"n_dopant": [1, 2]}}, "unknown config key 'sampler.n_dopant'"),
    ({"hosts": {"name": ["Si"]}}, "unknown config key 'hosts.name'"),
    ({"hosts": ["Si"], "host_settings": {"fmax": 0.1}}, "unknown config key 'host_settings.fmax'"),
    ({"hosts": ["Si"], "samples_per_host": 0}, "'samples_per_host': must be >= 1"),
    ({"hosts": ["Si"], "samples_per_host": 2.5}, "expected an integer"),
    ({"hosts": ["Si"], "sampler": {"conc_range": [0.2, 0.1]}}, "'sampler.conc_range': expected min <= max"),
    ({"hosts": ["Si"], "sampler": {"conc_range": [0.0, 0.1]}}, "conc_range must lie in (0, 1)"),
    ({"hosts": ["Si"], "sampler": {"vocabulary": ["Xe"]}}, "not in the dopant vocabulary"),
    ({"hosts": ["Si"], "tier": "exact"}, "'tier': unknown tier 'exact'"),
    ({"hosts": ["Si"], "potential": "mace"}, "'potential': unknown potential 'mace'"),
    ({"hosts": ["Si"], "broadening": {"fwhm_mev": 1.0, "resolution": "tosca"}}, "exactly one"),
    ({"hosts": ["Si"], "broadening": {"fwhm_mev": -1}}, "must be > 0"),
    ({"hosts": ["Si"], "grid": {"n_bins": 1}}, "invalid energy grid"),
    ({"hosts": ["Si"], "supercell_atoms": [500, 400]}, "expected min <= max"),
    ({"samples_per_host": 3}, "'hosts' is required"),
    ({"hosts": {}}, "names no host"),
    ({"hosts": ["Si"], "sampler": {"pools": ["Ge"]}}, "'sampler.pools': expected a mapping"),
    ({"hosts": ["Si"], "sampler": {"pools": {"Si": ["Xe"]}}}, "'sampler.pools.Si': 'Xe'"),
    ({"hosts": ["Si"], "sampler": {"pools": {"Si": ["Ge@Si@Si"]}}}, "expected El or El@Site"),
    ({"hosts": ["Si"], "sampler": {"pools": {"Si": []}}}, "at least one dopant"),
    ({"hosts": ["Si"], "sampler": {"isovalent_ionic": "maybe"}}, "sampler.isovalent_ionic"),
    ({"hosts": ["Si"], "placement_attempts": 0}, "'placement_attempts': must be >= 1"),
    ({"hosts": {"names": ["Si"], "order": "fastest"}}, "'hosts.order': expected one of listed, cheapest"),
])
def test_config_errors_are_one_line_and_name_the_key(data, fragment):
    with pytest.raises(DefectnetError) as exc:
        GenerateConfig.from_dict(data)
    assert fragment in str(exc.value)
    assert "\n" not in str(exc.value)


def test_config_round_trips_and_extent_keys_do_not_change_identity(emt, tmp_path):
    cfg = emt.config({"names": ["Si", "GaAs"], "filter": "element=Ga"})
    again = GenerateConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    bigger = emt.config({"names": ["Si"]}, samples_per_host=100, samples_per_task=1, task_timeout_s=5,
                        placement_attempts=4)
    assert bigger.identity_hash() == cfg.identity_hash()
    assert emt.config({"names": ["Si"]}, seed=8).identity_hash() != cfg.identity_hash()
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**emt.base, "hosts": ["Si"], "tier": "nope"}))
    with pytest.raises(DefectnetError, match=r"c\.yaml: config key 'tier'"):
        load_config(path)
    path.write_text("hosts: [Si\n")
    with pytest.raises(DefectnetError, match=r"c\.yaml:\d+: not valid YAML"):
        load_config(path)


def test_host_list_shorthand_splits_names_and_files(emt):
    sel = emt.config(["Si", "GaN-wurtzite", "my/GaAs.cif"]).hosts
    assert sel.names == ("Si", "GaN-wurtzite") and sel.files == ("my/GaAs.cif",)



def test_cheapest_order_sorts_hosts_by_force_constant_cell_size(emt):
    from defectnet.data.plan import resolve_hosts
    from defectnet.phonons.host import HostSettings, fc_cell_atoms

    names = ["GaN", "Si", "CaF2", "MgO"]  # wurtzite, diamond, fluorite, a small rocksalt
    listed = [h.name for h in resolve_hosts(emt.config({"names": names}).hosts)]
    hosts = resolve_hosts(emt.config({"names": names, "order": "cheapest"}).hosts)
    sizes = [fc_cell_atoms(h.atoms, HostSettings()) for h in hosts]
    assert listed == names and sorted(h.name for h in hosts) == sorted(names)
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert hosts[0].name == "Si" and sizes[0] == 64  # 2×2×2 conventional cells of 8 atoms


def test_per_family_keeps_the_first_hosts_of_each_family_counting_those_in_the_data(emt):
    from defectnet.data.plan import families_capped, resolve_hosts

    names = ["Si", "Ge", "GaAs", "C", "GaP", "MgO", "InP"]  # diamond ×3, zincblende ×3, rocksalt
    one = resolve_hosts(emt.config({"names": names, "per_family": 1}).hosts)
    assert [h.name for h in one] == ["Si", "GaAs", "MgO"]
    two = resolve_hosts(emt.config({"names": names, "per_family": 2}).hosts)
    assert [h.name for h in two] == ["Si", "Ge", "GaAs", "GaP", "MgO"]
    every = resolve_hosts(emt.config({"names": names}).hosts)
    # diamond already held twice by the data: none more; a resumed store's host is never dropped
    capped = families_capped(every, 2, held={"si", "ge"}, keep=("C",))
    assert [h.name for h in capped] == ["GaAs", "C", "GaP", "MgO"]


def test_every_example_generation_config_is_valid():
    from pathlib import Path

    paths = sorted((Path(__file__).parents[2] / "examples").glob("generate-*.yaml"))
    assert len(paths) >= 4
    for path in paths:
        cfg = load_config(path)
        assert cfg.samples_per_host >= 1 and not cfg.hosts.is_empty(), path.name
    full = load_config(paths[0].with_name("generate-validation.yaml"))
    assert full.tier == "full" and full.supercell_atoms == 64 and full.sampler.conc_range[0] >= 1 / 64  # at least one atom
