"""Static checks of the committed notebooks and parameter files."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import papermill as pm
import pytest
import yaml

from cp_toolkit.config import DEFAULTS, RUNNER_PARAMETERS, load_params
from cp_toolkit.run.pipeline import STAGES
from cp_toolkit.run.report import find_notebooks, route_parameters

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PARAM_FILES = sorted((ROOT / "params").glob("*.yaml"))


def test_one_notebook_per_stage() -> None:
    assert [p.stem for p in NOTEBOOKS] == list(STAGES)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_defines_no_function_or_class(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        tree = ast.parse(cell.source)
        defs = [n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        assert not defs, f"{path.name}: code cell {i} defines {defs}; move them into cp_toolkit/"
        assert not any(isinstance(n, ast.Lambda) for n in ast.walk(tree)), f"{path.name}: cell {i} has a lambda"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_layout(path: Path) -> None:
    """Markdown title first, then one parameters cell of plain literals."""
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and nb.cells[1] is tagged[0]
    for node in ast.parse(tagged[0].source).body:
        assert isinstance(node, ast.Assign), f"{path.name}: parameters cell holds only assignments"
        ast.literal_eval(node.value)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_defaults_are_the_default_profile(path: Path) -> None:
    """Run alone, a notebook computes what the default report computes."""
    declared = pm.inspect_notebook(str(path))
    for name, info in declared.items():
        if name != "run_dir":
            assert ast.literal_eval(info["default"]) == DEFAULTS[name], f"{path.name}: default of {name}"


def test_default_yaml_is_the_builtin_default() -> None:
    assert load_params(ROOT / "params" / "default.yaml") == load_params(None)


def test_currency_follows_the_dataset_unless_set(tmp_path: Path) -> None:
    (tmp_path / "sales.csv").write_text("customer_id,ts,amount\n")
    columns = "{customer_id: customer_id, ts: ts, amount: amount}"
    source = f"\nsources: {{transactions: {{path: {tmp_path / 'sales.csv'}, columns: {columns}}}}}"

    def currency(text: str) -> str:  # every profile names a readable transactions file
        (tmp_path / "p.yaml").write_text(text + source)
        return load_params(tmp_path / "p.yaml")["currency"]

    assert load_params(None)["currency"] == "USD" and load_params(ROOT / "params" / "cdnow.yaml")["currency"] == "USD"
    assert currency("dataset: online_retail") == "GBP" and currency("dataset: custom") == "currency units"
    assert currency("dataset: online_retail\ncurrency: EUR") == "EUR"
    assert load_params(None, currency="CNY")["currency"] == "CNY"


@pytest.mark.parametrize("path", PARAM_FILES, ids=lambda p: p.stem)
def test_every_yaml_key_is_declared_by_a_notebook(path: Path) -> None:
    keys = set(yaml.safe_load(path.read_text()) or {})
    notebooks = find_notebooks(ROOT / "notebooks")
    routed = route_parameters(load_params(path), notebooks)
    received = set().union(*(set(p) for p in routed.values()))
    assert keys - set(RUNNER_PARAMETERS) <= received, f"{path.name}: {sorted(keys - received)} reach no notebook"
    for stage, nb in notebooks.items():
        assert set(routed[stage]) <= set(pm.inspect_notebook(str(nb)))


def test_every_default_parameter_is_declared_somewhere() -> None:
    declared = set().union(*(set(pm.inspect_notebook(str(p))) for p in NOTEBOOKS))
    assert set(DEFAULTS) - set(RUNNER_PARAMETERS) <= declared and not set(RUNNER_PARAMETERS) & declared


def _readme_parameter_table() -> dict[str, tuple[str, str]]:
    """``| `name` | `default` | notebooks | meaning |`` rows of the README's parameter table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Parameters", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = (cells[1].strip("`"), cells[2])
    return rows


def test_readme_parameter_table_matches_the_notebooks() -> None:
    table = _readme_parameter_table()
    declared: dict[str, list[str]] = {}
    for path in NOTEBOOKS:
        for name, info in pm.inspect_notebook(str(path)).items():
            declared.setdefault(name, []).append(path.stem[:2])
            assert table[name][0] == info["default"], f"README default of {name}"
    assert set(table) == set(declared) | set(RUNNER_PARAMETERS)
    assert all(table[name][1] == "runner" for name in RUNNER_PARAMETERS)
    for name, stages in declared.items():
        listed = table[name][1]
        assert listed == ", ".join(stages) or (listed == "01–06" and len(stages) == 6), f"README notebooks of {name}"


def test_readme_starts_with_the_two_commands() -> None:
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```[a-zA-Z]*\n(.*?)```", text, re.S).group(1)
    commands = [c for c in block.splitlines() if c.strip() and not c.strip().startswith("#")]
    assert len(commands) == 2 and "cp-toolkit run" in commands[0] and "pytest" in commands[1]


def test_readme_parameter_defaults_are_the_defaults() -> None:
    table = _readme_parameter_table()
    assert set(table) - {"run_dir"} == set(DEFAULTS)
    for name, value in DEFAULTS.items():
        assert ast.literal_eval(table[name][0]) == value, f"README default of {name}"


def test_readme_dataset_row_lists_every_preset() -> None:
    from cp_toolkit.config import PRESET_CURRENCY
    from cp_toolkit.ingest.sources import PRESETS

    meaning = next(
        line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines() if line.startswith("| `dataset`")
    )
    assert set(PRESETS) == set(PRESET_CURRENCY)
    assert all(f"`{name}`" in meaning for name in [*PRESETS, "custom"]), meaning
