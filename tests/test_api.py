"""The public Python API at the package root: each name is the documented object, listed by
``dir(defectnet)``, and ``import defectnet`` stays light (no torch)."""

import inspect
import subprocess
import sys

import pytest

import defectnet

#: Root name -> the object it is documented as (docs/api.md), ``module:name``.
ROOT_API = dict(line.split(" = ") for line in """
Host = defectnet.host:Host
Prediction = defectnet.analysis.result:Prediction
read_spectrum = defectnet.io:read_spectrum
predict_defects = defectnet.predict:predict_defects
PredictConfig = defectnet.analysis.config:PredictConfig
load_model = defectnet.model.checkpoint:load_model
SignatureBasis = defectnet.signatures:SignatureBasis
BasisConfig = defectnet.signatures:BasisConfig
basis = defectnet.unmix:signature_basis
run_generate = defectnet.data.generate:run_generate
GenerateConfig = defectnet.data.config:GenerateConfig
train_from_files = defectnet.model.train:train_from_files
TrainConfig = defectnet.model.config:TrainConfig
""".strip().splitlines())


@pytest.mark.parametrize("name", sorted(ROOT_API))
def test_root_name_is_the_documented_object(name):
    import pkgutil

    assert getattr(defectnet, name) is pkgutil.resolve_name(ROOT_API[name])


def test_predict_is_predict_defects_by_another_name():
    """``defectnet.predict`` is the module defectnet.predict (a submodule import would replace anything
    else), called as predict_defects with its signature."""
    import defectnet.predict as module
    from defectnet.predict import predict_defects

    assert defectnet.predict is module and callable(defectnet.predict)
    assert inspect.signature(defectnet.predict) == inspect.signature(predict_defects)
    assert defectnet.basis is not module  # the submodule import left the other root names alone


def test_predict_call_gives_the_answer_of_predict_defects():
    ex = "examples/gaas-si-zn/"
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    kw = dict(pristine=str(root / ex / "pristine.csv"), candidates=["Si", "Zn", "Be", "C"])
    a = defectnet.predict("GaAs", str(root / ex / "doped.csv"), **kw)
    b = defectnet.predict_defects("GaAs", str(root / ex / "doped.csv"), **kw)
    assert a.table() == b.table()


def test_dir_lists_the_root_api():
    listed = dir(defectnet)
    for name in [*ROOT_API, "predict", "__version__"]:
        assert name in listed, name
    assert set(ROOT_API) | {"predict"} <= set(defectnet.__all__)


def test_unknown_root_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        defectnet.nope  # noqa: B018


def test_import_defectnet_does_not_import_torch():
    code = "import sys, defectnet; dir(defectnet); print(sorted(m for m in ('torch', 'phonopy', 'ase') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
