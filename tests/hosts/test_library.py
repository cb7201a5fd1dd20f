"""Host library: integrity of the shipped data, records, filtering, formatting."""

from collections import Counter

import numpy as np
import pytest

from defectnet.elements import check_element
from defectnet.errors import DefectnetError
from defectnet.hosts import (
    Host,
    format_host,
    format_table,
    get_library,
    list_hosts,
)
from defectnet.hosts.library import HARD_CHECKS, read_hosts, write_hosts

# the systems the issue names; all must be loadable by their plain name
REQUIRED = [
    "Si",
    "Ge",
    "C",
    "SiC",
    "GaAs",
    "AlAs",
    "GaN",
    "AlN",
    "InP",
    "ZnO",
    "ZnS",
    "CdTe",
    "GaP",
    "InAs",
    "GaSb",
    "AlSb",
    "InSb",
    "InN",
    "BN",
    "ZnSe",
    "ZnTe",
    "CdSe",
    "CdS",
    "MgO",
    "CaO",
    "NaCl",
    "KCl",
    "LiF",
    "CaF2",
    "TiO2",
    "TiO2-anatase",
    "SnO2",
    "Al2O3",
    "SrTiO3",
    "BaTiO3",
    "ZrO2",
    "CeO2",
    "AgGaS2",
    "CuInSe2",
    "CuGaSe2",
    "Cu2ZnSnS4",
    "MgB2",
    "PbTe",
    "Bi2Te3",
    "MoS2",
]


@pytest.fixture(scope="module")
def lib():
    return get_library()


# ----------------------------------------------------------------------------- integrity
def _charge(host: Host) -> int:
    counts = Counter(host.species)
    return sum(host.oxidation_states[el] * n for el, n in counts.items())


@pytest.mark.parametrize("which", ["hosts", "candidates"])
def test_names_unique_case_insensitively(lib, which):
    pool = getattr(lib, which)
    names = [n.lower() for h in pool for n in h.all_names]
    dupes = [n for n, c in Counter(names).items() if c > 1]
    assert not dupes


def test_no_candidate_duplicates_a_host_structure(lib):
    from defectnet.hosts.candidates import structure_key

    keys = Counter(structure_key(h) for h in lib.hosts + lib.candidates)
    assert max(keys.values()) == 1


@pytest.mark.parametrize("which", ["hosts", "candidates"])
def test_every_record_parses_and_is_consistent(lib, which):
    for h in getattr(lib, which):
        atoms = h.to_atoms()
        assert len(atoms) == h.n_atoms == len(h.species) > 0
        assert set(h.elements) == set(h.species)
        for el in h.elements:
            check_element(el)
        assert np.all((h.positions >= 0) & (h.positions < 1))
        assert atoms.get_volume() > 1.0
        assert h.spacegroup_number > 0
        assert h.source in ("curated", "prototype")
        # flags present: every record says whether it was relaxed and what was checked
        assert "checks" in h.provenance and "relaxed" in h.provenance
        assert "charge_balanced" in h.checks


@pytest.mark.parametrize("which", ["hosts", "candidates"])
def test_charge_balanced_where_claimed(lib, which):
    for h in getattr(lib, which):
        if h.oxidation_states is None:
            assert h.source == "curated", f"{h.name}: prototype candidates are charge balanced by construction"
            continue
        assert set(h.oxidation_states) == set(h.elements), h.name
        assert _charge(h) == 0, h.name
        assert h.checks["charge_balanced"] is True


def test_built_hosts_carry_all_stability_flags(lib):
    for h in lib.hosts:
        if h.provenance.get("status") == "built":  # curated hosts keep their experimental structure
            for check in HARD_CHECKS:
                assert check in h.checks, (h.name, check)
            if h.checks["dynamically_stable"] is not None:  # None: an earlier check stopped the build
                assert "min_frequency_mev" in h.provenance and "n_imaginary" in h.provenance
            assert h.provenance["potential"]["name"]
            if h.source == "prototype":
                assert h.relaxed and all(h.checks[c] for c in HARD_CHECKS), h.name
        else:
            assert h.source == "curated"  # only curated hosts ship unrelaxed


def test_curated_hosts_cover_the_systems_users_ask_about(lib):
    for name in REQUIRED:
        h = lib.get(name)
        assert h.name == name and h.source == "curated"
        assert h.reference


def test_candidates_cover_all_arities_and_enough_of_them(lib):
    arity = Counter(h.arity for h in lib.candidates)
    assert {2, 3, 4, 5} <= set(arity)
    assert len(lib.candidates) >= 3000
    assert max(h.n_atoms for h in lib.candidates) <= 20


def test_library_is_small():
    from defectnet.hosts.library import CANDIDATES_FILE, LIBRARY_FILE, data_path

    total = sum(data_path(f).stat().st_size for f in (LIBRARY_FILE, CANDIDATES_FILE))
    assert total < 4 * 2**20


def test_curated_lattice_constants_are_the_experimental_ones(lib):
    # primitive fcc cell volume = a³/4 (Madelung: GaAs a = 5.6533 Å, Si 5.4310 Å)
    assert lib.get("GaAs").to_atoms().get_volume() == pytest.approx(5.6533**3 / 4, rel=1e-5)
    assert lib.get("Si").to_atoms().get_volume() == pytest.approx(5.4310**3 / 4, rel=1e-5)
    gan = lib.get("GaN").to_atoms().cell.cellpar()
    assert gan[0] == pytest.approx(3.1890, abs=1e-4) and gan[2] == pytest.approx(5.1855, abs=1e-4)


@pytest.mark.parametrize(
    "name, number",
    [
        ("Si", 227),
        ("GaAs", 216),
        ("GaN", 186),
        ("NaCl", 225),
        ("CsI", 221),
        ("TiO2", 136),
        ("TiO2-anatase", 141),
        ("Al2O3", 167),
        ("SrTiO3", 221),
        ("CuInSe2", 122),
        ("Cu2ZnSnS4", 82),
        ("MgB2", 191),
        ("Bi2Te3", 166),
        ("MoS2", 194),
        ("Ga2O3", 12),
        ("MgAl2O4", 227),
        ("LiNbO3", 161),
        ("SiC-4H", 186),
        ("SnSe", 62),
    ],
)
def test_curated_space_groups(lib, name, number):
    assert lib.get(name).spacegroup_number == number


# ----------------------------------------------------------------------------- Host record
def test_host_round_trip_and_frozen(lib):
    h = lib.get("CuInSe2")
    again = Host.from_dict(h.to_dict())
    assert again == h and hash(again) == hash(h)
    with pytest.raises(AttributeError):
        h.name = "x"
    with pytest.raises(ValueError):
        h.positions[0, 0] = 0.5  # arrays are read-only


def test_host_file_round_trip(tmp_path, lib):
    hosts = [lib.get("GaAs"), lib.get("ZnO")]
    path = write_hosts(tmp_path / "h.json.gz", hosts, meta={"x": 1})
    back, meta = read_hosts(path)
    assert back == hosts and meta == {"x": 1}
    with pytest.raises(DefectnetError, match="duplicate host names"):
        write_hosts(tmp_path / "d.json.gz", [hosts[0], hosts[0]])


def test_host_record_rejects_unknown_keys(lib):
    d = lib.get("Si").to_dict() | {"colour": "grey"}
    with pytest.raises(DefectnetError, match="unknown keys"):
        Host.from_dict(d)


def test_non_periodic_structure_is_rejected():
    from ase import Atoms

    with pytest.raises(DefectnetError, match="3D periodic"):
        Host.from_atoms(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7]]), name="h2")


# ----------------------------------------------------------------------------- list / format
def test_list_hosts_filters():
    assert len(list_hosts()) == len(get_library())
    gallium = list_hosts("element=Ga arity=2")
    assert gallium and all("Ga" in h.elements and h.arity == 2 for h in gallium)
    assert {"GaAs", "GaN", "GaP", "GaSb"} <= {h.name for h in gallium}
    assert all(h.source == "curated" for h in list_hosts("curated"))
    assert {h.name for h in list_hosts("spacegroup=186 curated")} >= {"GaN", "ZnO", "SiC-4H"}
    assert {h.name for h in list_hosts("spacegroup=F-43m")} >= {"GaAs", "ZnS"}
    assert all(h.arity == 4 for h in list_hosts("quaternary", candidates=True))
    oxides = list_hosts("O !curated", candidates=True)
    assert oxides and all("O" in h.elements and h.source != "curated" for h in oxides)
    assert list_hosts("name~gan") and all("gan" in " ".join(h.all_names).lower() for h in list_hosts("name~gan"))
    assert all(h.n_atoms <= 4 for h in list_hosts("n_atoms<=4"))
    assert list_hosts("prototype=perovskite|spinel", candidates=True)


@pytest.mark.parametrize(
    "expr, match",
    [
        ("colour=red", "unknown host filter field"),
        ("element=Xx", "unknown element"),
        ("arity=two", "needs a number"),
        ("relaxed=maybe", "true or false"),
        ("element<Ga", "does not apply"),
    ],
)
def test_bad_filters_are_one_line_errors(expr, match):
    with pytest.raises(DefectnetError, match=match) as err:
        list_hosts(expr)
    assert "\n" not in str(err.value)


def test_format_host_and_table(lib):
    text = format_host(lib.get("GaN"))
    assert text.startswith("GaN") and "P6_3mc" in text and "Ga+3, N-3" in text and "wurtzite" in text
    table = format_table(list_hosts("element=Ga arity=2"))
    assert table.splitlines()[0].startswith("name") and "GaAs" in table
