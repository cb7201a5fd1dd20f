"""load_host: a host by library name, candidate name, CIF/POSCAR file, mp-id, Atoms; one-line errors."""

import pytest
from ase.build import bulk

from defectnet.errors import DefectnetError
from defectnet.hosts import get_library, load_host


@pytest.mark.parametrize(
    "text, expected",
    [
        ("GaAs", "GaAs"),
        ("gaas", "GaAs"),
        (" GaAs ", "GaAs"),
        ("GaN-wurtzite", "GaN"),
        ("gan-WURTZITE", "GaN"),
        ("SiC-3C", "SiC"),
        ("TiO2-rutile", "TiO2"),
        ("anatase", "TiO2-anatase"),
    ],
)
def test_load_by_library_name(text, expected):
    assert load_host(text).name == expected


def test_load_candidate_by_name():
    unbuilt = get_library().candidates[0]  # the library's candidates are the ones not built (yet)
    h = load_host(unbuilt.name)
    assert h.source == "prototype" and h == unbuilt and not h.relaxed
    with pytest.raises(DefectnetError):
        load_host(unbuilt.name, candidates=False)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(DefectnetError) as err:
        load_host("GaAss")
    msg = str(err.value)
    assert "'GaAs'" in msg and "did you mean" in msg and "\n" not in msg


def test_load_cif_and_poscar(tmp_path):
    import ase.io

    atoms = bulk("GaAs", "zincblende", a=5.65)
    ase.io.write(tmp_path / "mine.cif", atoms)
    ase.io.write(tmp_path / "POSCAR", atoms, format="vasp")
    for path in (tmp_path / "mine.cif", tmp_path / "POSCAR"):
        h = load_host(str(path))
        assert h.source == "user-file" and h.formula == "GaAs" and h.spacegroup_number == 216
        assert h.oxidation_states == {"Ga": 3, "As": -3}
        assert h.to_atoms().get_volume() == pytest.approx(5.65**3 / 4, rel=1e-4)
    assert load_host(tmp_path / "mine.cif").name == "mine"  # PathLike accepted


def test_broken_cif_is_a_one_line_error_naming_the_file(tmp_path):
    bad = tmp_path / "broken.cif"
    bad.write_text("data_x\n_cell_length_a 5.0\nthis is not a cif loop\n_atom_site_fract_x\n")
    with pytest.raises(DefectnetError) as err:
        load_host(str(bad))
    msg = str(err.value)
    assert "broken.cif" in msg and "expected a CIF or POSCAR" in msg and "\n" not in msg


def test_unknown_element_in_a_file(tmp_path):
    poscar = tmp_path / "POSCAR"
    poscar.write_text("bad\n1.0\n4 0 0\n0 4 0\n0 0 4\nXq Ga\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n")
    with pytest.raises(DefectnetError) as err:
        load_host(str(poscar))
    assert "POSCAR" in str(err.value) and "\n" not in str(err.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DefectnetError, match="no such file"):
        load_host(str(tmp_path / "nope" / "GaAs.cif"))
    with pytest.raises(DefectnetError, match="directory"):
        load_host(str(tmp_path))
    with pytest.raises(DefectnetError, match="empty host name"):
        load_host("  ")


def test_materials_project_needs_key_or_package(monkeypatch):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    with pytest.raises(DefectnetError, match="mp-149") as err:
        load_host("mp-149")
    assert "MP_API_KEY" in str(err.value) or "mp-api" in str(err.value)


def test_atoms_and_host_pass_through():
    h = get_library().get("Si")
    assert load_host(h) is h
    from_atoms = load_host(bulk("Cu", "fcc", a=3.6))
    assert from_atoms.formula == "Cu" and from_atoms.source == "user-file"
