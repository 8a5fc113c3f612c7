"""``import cp_toolkit`` and ``cp-toolkit --help`` stay light; no stage imports another stage's module."""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cp_toolkit"
HEAVY = ("matplotlib", "seaborn", "sklearn", "lifetimes", "papermill", "nbconvert")
#: Stage -> its module or subpackage; everything else in the package is shared or the frame.
STAGE_MODULES = {"ingest", "eda", "segment", "predict", "clv", "persona"}


def _loaded_after(statement: str) -> list[str]:
    code = f"import sys; {statement}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return [m for m in out.strip().split(",") if m]


@pytest.mark.parametrize("statement", ["import cp_toolkit", "import cp_toolkit.cli", "import cp_toolkit.config"])
def test_import_loads_no_heavy_library(statement: str) -> None:
    assert _loaded_after(statement) == []


def test_attribute_access_imports_on_demand() -> None:
    assert _loaded_after("import cp_toolkit; cp_toolkit.RFM_SEGMENTS") == ["sklearn"]  # segment holds clusters
    assert "lifetimes" in _loaded_after("import cp_toolkit; cp_toolkit.clv.CLVModel")


def test_help_answers_in_under_a_second() -> None:
    command = [sys.executable, "-m", "cp_toolkit.cli", "--help"]
    subprocess.run(command, capture_output=True, check=True)  # warm the file cache
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    assert time.perf_counter() - start < 1.0
    assert "cp-toolkit" in done.stdout and "run" in done.stdout


def _stage_of(module: Path) -> str | None:
    top = module.relative_to(PACKAGE).parts[0].removesuffix(".py")
    return top if top in STAGE_MODULES else None


#: Model libraries of a stage that other stages may use: stage 04's baselines are stage 05's
#: BG/NBD and Gamma-Gamma (its customer summary and fitted models), stage 06 clusters with stage
#: 03's estimator and bands risk as stage 04 does; never a stage's stage code.
LIBRARIES = {
    ("clv", "models"),
    ("clv", "summary"),
    ("predict", "operating"),  # the churn-risk bands, which persona playbooks use too
    ("segment", "cluster"),  # the behavioural clustering estimator, which personas use too
    ("segment", "tags"),  # tag names in words
}


def _imported_stages(module: Path) -> set[str]:
    """Stages a module imports (relative or absolute imports of ``cp_toolkit.<stage>``), apart
    from the :data:`LIBRARIES`."""
    found = set()
    depth = len(module.relative_to(PACKAGE).parts) - 1
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and (node.module or "").startswith("cp_toolkit."):
                parts = node.module.split(".")[1:]
            elif node.level == depth + 1:  # relative to the package root
                parts = (node.module or "").split(".") if node.module else [a.name for a in node.names]
            else:
                continue
            if tuple(parts[:2]) in LIBRARIES:
                continue
            found |= {p for p in parts[:1] if p in STAGE_MODULES}
            if not node.module:
                found |= {a.name for a in node.names if a.name in STAGE_MODULES}
    return found


def test_no_stage_imports_another_stage() -> None:
    offenders = {
        str(m.relative_to(PACKAGE)): sorted(others)
        for m in PACKAGE.rglob("*.py")
        if (own := _stage_of(m)) and (others := _imported_stages(m) - {own})
    }
    assert offenders == {}


def test_only_the_registry_imports_every_stage() -> None:
    assert _imported_stages(PACKAGE / "run" / "pipeline.py") == STAGE_MODULES
    shared = [m for m in PACKAGE.rglob("*.py") if _stage_of(m) is None and m.parent == PACKAGE]
    found = {str(m.name): sorted(_imported_stages(m)) for m in shared if _imported_stages(m)}
    # the parameter check reads the vocabulary of source descriptions (presets, keys) from ingest,
    # and checks a persona playbook by the rules stage 06 loads it with
    assert found == {"params.py": ["ingest", "persona"]}
