"""The documentation: README shape, the README's Python quickstart, the CLI reference
generated from the parser, and the mkdocs site built with warnings as errors."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _gen_cli():
    spec = importlib.util.spec_from_file_location("gen_cli", ROOT / "docs" / "gen_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_is_short_and_starts_with_the_two_commands():
    lines = README.read_text().splitlines()
    assert len(lines) <= 150
    assert lines[2] == "```bash" and lines[5] == "```"
    assert lines[3].startswith("pip install -e . && defectnet predict --host GaAs ")
    assert lines[4] == 'pip install -e ".[test]" && python -m pytest'


def test_readme_python_quickstart_runs(tmp_path, monkeypatch):
    """The README's Python block, run as a user would from the repository root."""
    block = re.search(r"## Python quickstart\n+```python\n(.*?)```", README.read_text(), re.S)
    assert block, "README has no Python quickstart block"
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    exec(compile(block.group(1), str(README), "exec"), {"__name__": "readme"})
    assert (tmp_path / "runs" / "gaas.json").is_file() and (tmp_path / "runs" / "gaas.png").is_file()


def _run_api_block(heading: str) -> dict:
    """Run the first Python block after ``heading`` (a regex) of docs/api.md; returns its names."""
    block = re.search(heading + r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S)
    assert block, f"docs/api.md has no block after {heading!r}"
    scope = {"__name__": "api_docs"}
    exec(compile(block.group(1), "docs/api.md", "exec"), scope)
    return scope


def test_api_host_quickstart_runs(tmp_path, monkeypatch):
    """The `Host` block of docs/api.md, as written (EMT Cu: seconds)."""
    monkeypatch.chdir(tmp_path)
    scope = _run_api_block(r"## The engine: `Host`\n.*?")
    assert scope["basis"].elements == ("Ag", "Ni") and scope["delta"].shape == (scope["config"].grid.n_bins,)
    assert (tmp_path / "runs" / "cu.npz").is_file()


def test_cli_reference_is_up_to_date():
    committed = (ROOT / "docs" / "cli.md").read_text()
    fresh = _gen_cli().render()
    made_with = re.search(r"\(Python (\d+\.\d+)\)", committed)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if fresh != committed and made_with and made_with.group(1) != running:
        pytest.skip(f"docs/cli.md was generated with Python {made_with.group(1)}, whose argparse formats "
                    f"help differently from {running}'s; regenerate it with python docs/gen_cli.py")
    assert fresh == committed, "docs/cli.md is stale: run python docs/gen_cli.py and commit it"
    for name in ("predict", "simulate", "basis", "recommend", "hosts", "generate", "dataset", "train",
                 "evaluate", "finetune"):
        assert f"\n## defectnet {name}\n" in committed, name


def test_docs_site_builds_with_warnings_as_errors(tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(site)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    for page in ("predict", "basis", "simulate", "hosts", "generate", "train", "accuracy", "api", "cli"):
        assert (site / page / "index.html").is_file(), page
    assert not list(site.rglob("*.py")), "scripts in docs/ must not be published as pages"


def test_api_root_block_runs(tmp_path, monkeypatch):
    """The first block of docs/api.md's root API section, as written, from the repository root."""
    monkeypatch.chdir(ROOT)
    scope = _run_api_block(r"## The root API, one line each\n+")
    assert set(scope["p"].detected) == {"Si"} and scope["basis"].elements == ("Si", "Zn", "Be", "C")
