"""Run the six notebooks with papermill and assemble ``reports/<run>/``.

The run folder gets, per stage, the executed ``NN_<stage>.ipynb`` and ``NN_<stage>.html``
(code hidden, figures embedded), plus ``index.html`` and ``manifest.json``. A run holds the
folder's lock (:mod:`.lock`), works beside it and publishes it only when every stage succeeded,
else keeps it as ``<run>.failed`` (:mod:`.workspace`). The manifest says "running" before stage
01 and its final status ("ok", "partial", "failed" or "interrupted") is written last, with each
stage's fingerprint (:mod:`.fingerprint`), on which ``--only`` and ``--from`` reuse the earlier
stages; its ``files`` lists what the run wrote, the only files a later run removes
(:mod:`.safety`). Ctrl-C and SIGTERM shut the kernel down and end the run as "interrupted".
"""

from __future__ import annotations

import html
import os
import re
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

import nbformat
import papermill as pm
import zmq
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbconvert import HTMLExporter
from nbconvert.preprocessors import TagRemovePreprocessor
from traitlets import Unicode
from traitlets.config import Config

from ..config import RUNNER_PARAMETERS
from ..errors import CPToolkitError, InterruptedRun, OutputFolderError, ParameterError, StageFailed, StaleUpstream
from ..text import get_language, set_language, t
from . import history
from .artifacts import ARTIFACTS, RunFolder, write_json, write_text
from .console import Console
from .fingerprint import (
    RANDOM_KEY,
    code_version,
    input_fingerprints,
    key_id,
    previous_id,
    rerun_reasons,
    stage_fingerprints,
)
from .lock import RunLock
from .pipeline import STAGES
from .safety import KERNEL_LOG, FolderPlan, folder_error, input_files, plan_output_folder, run_outputs
from .workspace import Workspace, read_manifest, stage_files

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


def find_notebooks(notebooks_dir: str | Path) -> dict[str, Path]:
    """Map each stage to its notebook ``<notebooks_dir>/<stage>.ipynb``; error when one is missing."""
    folder = Path(notebooks_dir)
    found = {stage: folder / f"{stage}.ipynb" for stage in STAGES}
    missing = [str(p) for p in found.values() if not p.is_file()]
    if missing:
        raise ParameterError(f"notebook(s) {missing} not found; run from the project folder or pass --notebooks")
    return found


def route_parameters(params: dict[str, Any], notebooks: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Give each notebook the parameters its ``parameters`` cell declares (the runner's own,
    :data:`~cp_toolkit.config.RUNNER_PARAMETERS`, go to none).

    Raises
    ------
    ParameterError
        When a parameter is declared by no notebook (papermill would only warn).
    """
    declared = {stage: set(pm.inspect_notebook(str(nb))) for stage, nb in notebooks.items()}
    unused = sorted(set(params) - set().union(*declared.values()) - set(RUNNER_PARAMETERS))
    if unused:
        raise ParameterError(f"parameter(s) {unused} are declared in no notebook; remove or rename them")
    return {stage: {k: v for k, v in params.items() if k in names} for stage, names in declared.items()}


#: The tag of a notebook's cells shown in JupyterLab only (its English title): the report's own
#: title and text come from the text table of the report's language.
NOTEBOOK_ONLY = "notebook-only"


_REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>\s*")


#: papermill's own marker cells of a failed notebook (English, pointing at the failing cell): a
#: failed stage's page opens with :func:`failure_banner` in the report's language instead.
PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"

_BODY = re.compile(r"<body[^>]*>")


def export_html(notebook: Path, target: Path, banner: str = "") -> Path:
    """Write the executed notebook as HTML with code cells, prompts and notebook-only cells hidden;
    ``banner`` (HTML) opens the page."""
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    hidden = {NOTEBOOK_ONLY, PAPERMILL_ERROR_TAG}
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags=hidden), enabled=True)
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    body = _REMOTE_SCRIPT.sub("", body)  # require.js and MathJax from a CDN: unused, and offline a console error
    if banner:
        body = _BODY.sub(lambda m: m.group(0) + banner, body, count=1)
    return write_text(target, body)


_BANNER_STYLE = (
    "margin:1em 2em;padding:1em 1.4em;border:2px solid #b00;border-radius:6px;background:#fff4f4;"
    "font-family:sans-serif;max-width:60em"
)


def failure_banner(stage: str, error: CPToolkitError) -> str:
    """The box a failed (or interrupted) stage's page opens with: what happened, in the report's
    language, the error, and what to do."""
    kind = "interrupted" if isinstance(error, InterruptedRun) else "failed"
    name = t(f"run.index.stage.{stage}")
    return (
        f"<div class='cp-failure' role='alert' style='{_BANNER_STYLE}'>"
        f"<h2 style='color:#b00;margin-top:0'>{html.escape(t(f'run.failure.{kind}', stage=name))}</h2>"
        f"<p><code style='white-space:pre-wrap'>{html.escape(str(error))}</code></p>"
        f"<p>{html.escape(t(f'run.failure.todo_{kind}', stage=stage))}</p></div>"
    )


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
    return (
        f"<div class='kpis'>{''.join(cards)}</div><p class='muted'>{_compared_with(run, previous)}</p>" if cards else ""
    )


def _compared_with(run: RunFolder, previous: RunFolder | None) -> str:
    """The sentence naming the run compared with, its name a link to its index (HTML)."""
    if previous is None:
        return html.escape(t("run.index.no_previous"))
    marker = "\x00"
    sentence = html.escape(t("run.index.compared_with", run=marker))
    href = html.escape(os.path.relpath(previous.path / "index.html", run.path))
    return sentence.replace(marker, f'<a href="{href}">{html.escape(previous.path.name)}</a>')


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


def _timeout_error(stage: str, err: CellTimeoutError, timeout: int | None) -> StageFailed:
    """The error of a cell stopped by ``cell_timeout``, naming its first line."""
    preview = str(err).split("-------------------")
    first = preview[1].strip().splitlines()[0] if len(preview) > 1 and preview[1].strip() else ""
    return StageFailed(
        f"stage {stage}: a cell ran longer than cell_timeout ({timeout} s) and was stopped"
        + (f" ({first[:120]!r})" if first else "")
        + "; raise cell_timeout in the parameters when the data are this large"
    )


def run_stage_notebook(
    stage: str,
    notebook: Path,
    run: RunFolder,
    params: dict[str, Any],
    kernel: str,
    progress_bar: bool | dict[str, Any] = False,
    timeout: int | None = None,
) -> None:
    """Execute one notebook into the run folder and export its HTML (also when it fails: the page
    then opens with :func:`failure_banner`).

    Raises
    ------
    StageFailed, OutputFolderError
        When a cell raises (:func:`stage_error`), a cell runs longer than ``timeout`` seconds, or the
        kernel died or could not be started.
    Interrupted
        When the run or the kernel was interrupted.
    """
    executed = run.path / f"{stage}.ipynb"
    failure: CPToolkitError | Interrupted | None = None
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
            execution_timeout=timeout,
        )
    except pm.PapermillExecutionError as err:
        failure = Interrupted(signal.SIGINT) if err.ename == "KeyboardInterrupt" else stage_error(stage, err, run)
    except CellTimeoutError as err:
        failure = _timeout_error(stage, err, timeout)
    except DeadKernelError:
        log = run.path / KERNEL_LOG
        see = f"; its own output is in {log}" if log.is_file() and log.stat().st_size else ""
        failure = StageFailed(f"stage {stage}: the notebook's kernel died (out of memory, or killed){see}")
    except Interrupted as err:
        failure = err
    except (CPToolkitError, OSError):
        raise
    except Exception as err:  # the kernel could not start or answer: not an error of a cell
        failure = StageFailed(f"stage {stage}: the notebook could not be run ({type(err).__name__}: {err})")
    if executed.is_file():
        error = failure.error(stage) if isinstance(failure, Interrupted) else failure
        export_html(executed, run.path / f"{stage}.html", failure_banner(stage, error) if error else "")
    if failure is not None:
        raise failure


def _publish(run: RunFolder, manifest: dict[str, Any], final: bool = False) -> None:
    """Write the manifest and ``index.html``; the final status is written last (the manifest
    after the index), a running status first (the manifest before the index)."""
    title = t("run.index.title", run=manifest.get("name", run.path.name))
    if final:
        write_index(run, manifest["stages"], title, manifest["status"])
        write_json(run.path / "manifest.json", manifest)
    else:
        write_json(run.path / "manifest.json", manifest)
        write_index(run, manifest["stages"], title, manifest["status"])


def _run_stage(
    run: RunFolder,
    stage: str,
    notebook: Path,
    params: dict[str, Any],
    kernel: str,
    console: Console,
    label: str,
    timeout: int | None,
) -> tuple[dict[str, Any], CPToolkitError | None]:
    """Run one stage: its manifest entry and the error that ended it, if any."""
    t0 = time.perf_counter()
    failure: CPToolkitError | None = None
    try:
        run_stage_notebook(stage, notebook, run, params, kernel, console.progress_bar(label), timeout)
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


def _reused(
    work: Workspace, source: Path | None, stage: str, current: dict[str, Any], console: Console, label: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """A stage not run: copied from ``source`` when every part of its fingerprint matches there
    (status "reused", with its recorded fingerprint), else "stale" with the reasons it would have
    to run again (and the fingerprint it would have)."""
    recorded = read_manifest(source) if source else {}
    reasons = rerun_reasons(stage, recorded, current) if source else ["there is no earlier run to take it from"]
    entry = {"stage": stage, "html": f"{stage}.html", "notebook": f"{stage}.ipynb", "seconds": 0.0}
    if reasons:
        entry |= {"status": "stale", "headline": "; ".join(reasons)}
        console.stage(label, "stale", 0.0, t("run.console.stale", reasons=entry["headline"]))
        return entry, current["fingerprints"][stage]
    assert source is not None
    work.copy_in(source, stage_files(stage))
    before = next(s for s in recorded["stages"] if s["stage"] == stage)
    entry |= {k: before[k] for k in ("headline", "notes") if k in before}
    entry |= {"status": "reused", "reused_from": str(source)}
    console.stage(label, "reused", 0.0, t("run.console.reused", run=source.name))
    return entry, before["fingerprint"]


def _finish(run: RunFolder, manifest: dict[str, Any], failure: CPToolkitError | None) -> CPToolkitError | None:
    """Write the final index and manifest (best effort when the run already failed); returns the
    error the run ends with."""
    states = {s["status"] for s in manifest["stages"]}
    if failure is not None:
        status = "interrupted" if isinstance(failure, InterruptedRun) else "failed"
    else:
        status = "partial" if "stale" in states else "ok"
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
    return failure


def select_stages(only: str | None = None, start: str | None = None) -> list[str]:
    """The stages a run executes: all, ``only`` one, or ``start`` and the stages after it.

    Raises
    ------
    ParameterError
        For an unknown stage name, or both options.
    """
    for name in (only, start):
        if name is not None and name not in STAGES:
            raise ParameterError(f"unknown stage {name!r}; the stages are {', '.join(STAGES)}")
    if only and start:
        raise ParameterError("give --only or --from, not both")
    if only:
        return [only]
    return list(STAGES[STAGES.index(start) :]) if start else list(STAGES)


def recorded_fingerprints(manifest: dict[str, Any], stages: list[str]) -> dict[str, str]:
    """The fingerprints a recorded run's ``stages`` have (those it recorded)."""
    found = {s["stage"]: s.get("fingerprint") for s in manifest.get("stages", [])}
    return {s: found[s]["fingerprint"] for s in stages if isinstance(found.get(s), dict)}


def with_chain(current: dict[str, Any], actual: dict[str, str], key: str | None = None) -> dict[str, Any]:
    """``current`` with each stage's fingerprint made on the ``actual`` fingerprints of the stages
    already in the run (reused ones keep their recorded fingerprint) and stage 01's ``key``."""
    fingerprints = stage_fingerprints(
        current["routed"],
        current["notebooks"],
        current["inputs"],
        key or current["key"],
        current["previous"],
        actual,
    )
    return {**current, "fingerprints": fingerprints}


def stale_stages(recorded: dict[str, Any], current: dict[str, Any], stages: list[str]) -> dict[str, list[str]]:
    """Why each of ``stages`` of a recorded run would run again (empty: it would be reused), judged
    in order as a run would: a stage that would be reused keeps its recorded fingerprint, on which
    the later stages' ``upstream`` part is made (:func:`with_chain`)."""
    chain: dict[str, str] = {}
    out = {}
    for stage in stages:
        out[stage] = rerun_reasons(stage, recorded, with_chain(current, chain))
        if not out[stage]:
            chain |= recorded_fingerprints(recorded, [stage])
    return out


def reuse_source(work: Workspace, selected: list[str], current: dict[str, Any]) -> Path | None:
    """The earlier run of the target (published, else failed) whose stages before ``selected`` can
    be reused: ended ok with every part of their fingerprints as in this run; None when every
    stage runs.

    Raises
    ------
    StaleUpstream
        When no earlier run has them, with the reasons of the published (else the failed) run.
    """
    before = [s for s in STAGES if s < selected[0]]
    if not before:
        return None
    candidates = [f for f in (work.target, work.failed) if (f / "manifest.json").is_file()]
    if not candidates:
        raise StaleUpstream(
            f"there is no earlier run in {work.target} to take stages {', '.join(before)} from; "
            "run all stages (without --only or --from) first"
        )
    problems = {}
    for folder in candidates:
        problems[folder] = stale_stages(read_manifest(folder), current, before)
        if not any(problems[folder].values()):
            return folder
    folder = candidates[0]
    stale = "; ".join(f"{s}: {', '.join(r)}" for s, r in problems[folder].items() if r)
    raise StaleUpstream(
        f"cannot reuse the earlier stages of {folder}: {stale}; run from the first of them "
        f"(--from {next(s for s, r in problems[folder].items() if r)}) or without --only/--from"
    )


def run_report(
    params: dict[str, Any],
    run_dir: str | Path,
    notebooks_dir: str | Path,
    kernel: str = "python3",
    console: Console | None = None,
    force: bool = False,
    stages: list[str] | None = None,
    wait: float = 0.0,
) -> dict[str, Any]:
    """Execute the stages in order into a work folder and publish it as ``run_dir`` when all
    succeeded (:class:`~cp_toolkit.run.workspace.Workspace`), else keep it as ``<run_dir>.failed``.

    Parameters
    ----------
    params : dict
        Complete parameters (:func:`cp_toolkit.config.load_params`).
    run_dir : str or Path
        The run folder to create or replace (:func:`~cp_toolkit.run.safety.plan_output_folder`).
    notebooks_dir : str or Path
        Folder with ``01_ingest.ipynb`` ... ``06_persona.ipynb``.
    kernel : str
        Jupyter kernel name used by papermill.
    console : Console, optional
        Where the one line per stage and the stages' notes go (default: standard output).
    force : bool
        Run in a folder that holds files no run wrote (they are kept).
    stages : list of str, optional
        The stages to run (:func:`select_stages`; default all). The earlier ones are reused from
        the earlier run of ``run_dir`` (:func:`reuse_source`); a later one is reused when its
        fingerprint still matches, else marked stale (the run's status is then "partial").
    wait : float
        Seconds to wait for another run holding ``run_dir`` (:class:`~cp_toolkit.run.lock.RunLock`).

    Returns
    -------
    dict
        The manifest.

    Raises
    ------
    StageFailed
        After keeping the failed run, when a stage fails.
    OutputFolderError
        When the output folder cannot be used (before anything is written) or fails while the run writes.
    InterruptedRun
        After shutting the kernel down and keeping the interrupted run, on Ctrl-C or SIGTERM.
    RunLocked, StaleUpstream
        Before anything is written: another run holds ``run_dir``; a stage to reuse is out of date.
    """
    set_language(params.get("report_language", "en"))
    console = console or Console()
    notebooks = find_notebooks(notebooks_dir)
    check_kernel(kernel)
    target = Path(run_dir).expanduser().absolute()
    with interruptible():
        try:
            with RunLock(target, wait) as lock:
                if lock.taken_over is not None:
                    console.line(t("run.console.took_over", holder=lock.taken_over.describe()))
                return _run_locked(params, Path(run_dir), notebooks, kernel, console, force, stages or list(STAGES))
        except Interrupted as err:
            raise err.error(None) from None


def current_state(params: dict[str, Any], target: Path, notebooks: dict[str, Path]) -> dict[str, Any]:
    """What a run of ``params`` into ``target`` would depend on: its parameters (``previous_run``
    set to :func:`~cp_toolkit.run.history.previous_folder` of the target when not given), the
    parameters each notebook receives, the input fingerprints, the code version, the key and the
    previous run, and each stage's fingerprint were every stage run (:mod:`.fingerprint`)."""
    previous = params.get("previous_run") or history.previous_folder(target)
    params = {**params, "previous_run": str(previous) if previous else None}
    current = {
        "parameters": params,
        "notebooks": notebooks,
        "inputs": input_fingerprints(params),
        "routed": route_parameters({k: v for k, v in params.items() if k != "run_dir"}, notebooks),
        "code": code_version(),
        "key": key_id(),
        "previous": previous_id(previous),
    }
    return with_chain(current, {})


def _run_locked(
    params: dict[str, Any],
    target: Path,
    notebooks: dict[str, Path],
    kernel: str,
    console: Console,
    force: bool,
    selected: list[str],
) -> dict[str, Any]:
    """:func:`run_report` once the lock is held (``target`` as given, for messages)."""
    outputs = run_outputs(notebooks)
    plan = plan_output_folder(target, input_files(params), outputs, force)
    target = plan.folder
    work = Workspace(target)
    work.recover()
    current = current_state(params, target, notebooks)
    params, routed = current["parameters"], current["routed"]
    source = reuse_source(work, selected, current)
    run = work.open()
    manifest: dict[str, Any] = {
        "name": target.name,
        "status": "running",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "parameters": params,
        "versions": current["code"]["libraries"],
        "code": {k: v for k, v in current["code"].items() if k != "libraries"},
        "inputs": current["inputs"],
        "stages": [],
        "files": plan.files(outputs),
    }
    failure: CPToolkitError | None = None
    actual: dict[str, str] = {}  # each stage's fingerprint as it is in this run
    drawn = current["key"] == RANDOM_KEY and STAGES[0] in selected  # stage 01 runs and draws a key of its own
    key = f"{RANDOM_KEY}-{secrets.token_hex(8)}" if drawn else current["key"]
    try:
        _publish(run, manifest)
        if source is not None:
            work.copy_in(source, ["params.json"])
        run.record_params(params)
        for i, (stage, notebook) in enumerate(notebooks.items(), 1):
            label = f"[{i}/{len(notebooks)}] {stage:<15}"
            current = with_chain(current, actual, key)
            if stage in selected:
                entry, failure = _run_stage(
                    run, stage, notebook, routed[stage], kernel, console, label, params.get("cell_timeout")
                )
                fingerprint = current["fingerprints"][stage]
            else:
                entry, fingerprint = _reused(work, source or _published(work), stage, current, console, label)
            actual[stage] = fingerprint["fingerprint"]
            manifest["stages"].append({**entry, "fingerprint": fingerprint})
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
    if failure is None:
        failure = _publish_run(work, run, manifest, plan)
        if failure is None:
            return manifest
    raise _kept_failed(work, manifest, failure)


def _publish_run(work: Workspace, run: RunFolder, manifest: dict[str, Any], plan: FolderPlan) -> CPToolkitError | None:
    """Publish the work folder (:meth:`Workspace.publish`, keeping what no run wrote); the error
    when that fails or is interrupted (the previous run is then back in place)."""
    try:
        work.publish(ours=set(plan.previous))
        return None
    except Interrupted as err:
        failure: CPToolkitError = err.error(None)
    except OutputFolderError as err:
        failure = err
    manifest.update(status="interrupted" if isinstance(failure, InterruptedRun) else "failed", error=str(failure))
    try:
        _publish(run, manifest, final=True)
    except OSError:
        pass  # the folder is kept as failed all the same
    return failure


def _kept_failed(work: Workspace, manifest: dict[str, Any], failure: CPToolkitError) -> CPToolkitError:
    """Keep the work folder as ``<name>.failed`` and give ``failure`` what the console says about it."""
    try:
        kept = work.keep_failed()
    except OutputFolderError as err:  # e.g. the disk is full: the work folder stays where it is
        kept = work.partial
        failure.args = (f"{failure}; {err}",)
    failure.args = tuple(str(a).replace(str(work.partial), str(kept)) for a in failure.args)  # paths as kept
    failed_stage = next((s["stage"] for s in manifest["stages"] if s["status"] in ("failed", "interrupted")), None)
    page = kept / (
        f"{failed_stage}.html" if failed_stage and (kept / f"{failed_stage}.html").is_file() else "index.html"
    )
    failure.report = page  # type: ignore[attr-defined]  # the CLI points at it
    failure.kept = kept  # type: ignore[attr-defined]
    ran_ok = [s["stage"] for s in manifest["stages"] if s["status"] in ("ok", "reused")]
    failure.resume_from = failed_stage if ran_ok else None  # type: ignore[attr-defined]
    return failure


def _published(work: Workspace) -> Path | None:
    """The published run of the target, when there is one (to reuse the stages after ``--only``)."""
    return work.target if (work.target / "manifest.json").is_file() else None
