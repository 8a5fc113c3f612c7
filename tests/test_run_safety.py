"""A run never harms what it did not write, ends every way with one line and a truthful
manifest, and prints one line per stage with the notes that matter.

Most runs use stub notebooks: the real notebooks' parameter cells followed by a few lines that
record a stage summary (or sleep, or raise), so that each run takes seconds.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import nbformat
import pytest

from cp_toolkit.cli import main
from cp_toolkit.errors import CPToolkitWarning, OutputFolderError
from cp_toolkit.run.artifacts import RunFolder
from cp_toolkit.run.console import Console
from cp_toolkit.run.pipeline import STAGES, stage
from cp_toolkit.run.report import failed_statement, run_report
from cp_toolkit.run.safety import plan_output_folder, run_outputs

ROOT = Path(__file__).resolve().parent.parent
CDNOW = 'dataset: cdnow\nas_of: "1998-06-30"\n'  # bundled data: no input file in any folder

#: A stub stage: records its summary (and stage 06 writes personas.md, so that a rerun can drop it).
RECORD = """from cp_toolkit.run.artifacts import RunFolder
run = RunFolder(run_dir)
if "{stage}" == "06_persona" and {write_md}:
    run.save("personas_md", "# stub")
run.record_stage("{stage}", "stub {stage} done"{notes})"""

#: A stub stage that opens a staging folder, says where it is, and waits to be killed.
SLEEP = """import os, time
from cp_toolkit.run.artifacts import RunFolder
run = RunFolder(run_dir)
with run.staging("ingest") as tmp:
    (tmp / "ingest.duckdb").write_text("staging")
    (run.path / ".." / "kernel.pid").write_text(str(os.getpid()))
    time.sleep(120)"""


def stub_notebooks(folder: Path, bodies: dict[str, str] | None = None, write_md: bool = True) -> Path:
    """Notebooks with the real parameter cells and a stub body (``bodies[stage]`` where given)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in STAGES:
        real = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        params = [c for c in real.cells if "parameters" in c.metadata.get("tags", [])]
        body = (bodies or {}).get(name) or RECORD.format(stage=name, write_md=write_md, notes="")
        real.cells = [*params, *(nbformat.v4.new_code_cell(part) for part in body.split("\n\n\n"))]
        nbformat.write(real, folder / f"{name}.ipynb")
    return folder


def params_file(folder: Path, text: str = CDNOW) -> Path:
    path = folder / "params.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def cli(*args: str | Path) -> int:
    return main(["run", *(str(a) for a in args)])


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stub_notebooks(tmp_path_factory.mktemp("stubs"))


# -- the output folder ------------------------------------------------------------------------
def test_an_output_folder_holding_the_input_is_refused(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    sales = tmp_path / "shop" / "data" / "sales.csv"
    sales.parent.mkdir(parents=True)
    sales.write_text("customer,order,day,amount\na,1,2024-01-02,10.5\nb,2,2024-01-03,7\n", encoding="utf-8")
    before = sales.read_bytes()
    params = params_file(
        tmp_path,
        "dataset: custom\nas_of: '2024-01-31'\nsources:\n  transactions:\n    path: shop/data/sales.csv\n"
        "    columns: {customer_id: customer, order_id: order, ts: day, amount: amount}\n",
    )
    for force in ([], ["--force"]):
        assert cli("--params", params, "--out", "shop", *force) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert "output folder shop holds input(s) of this run" in err and str(sales) in err
    assert sales.read_bytes() == before
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "shop").rglob("*")) == [
        "shop/data",
        "shop/data/sales.csv",
    ]


def test_files_no_run_wrote_are_refused_and_kept(tmp_path: Path, stubs: Path, capsys) -> None:
    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    (out / "data" / "orders.parquet").write_text("not ours", encoding="utf-8")
    assert cli("--params", params_file(tmp_path), "--out", out, "--notebooks", stubs) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "holds file(s) that no run of cp-toolkit wrote (data/orders.parquet, notes.txt)" in err
    assert "--force" in err and not (out / "manifest.json").exists()

    # --force runs beside foreign files, never over them: one where the run writes is still refused
    assert cli("--params", params_file(tmp_path), "--out", out, "--notebooks", stubs, "--force") == 2
    err = capsys.readouterr().err
    assert "where this run writes (data/orders.parquet)" in err and err.count("\n") == 1
    assert (out / "data" / "orders.parquet").read_text(encoding="utf-8") == "not ours"
    (out / "data" / "orders.parquet").rename(tmp_path / "orders.parquet")

    assert cli("--params", params_file(tmp_path), "--out", out, "--notebooks", stubs, "--force") == 0
    written = manifest(out)
    assert written["status"] == "ok" and "notes.txt" not in written["files"]  # never the run's to delete
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_rerun_removes_only_the_files_the_earlier_run_wrote(tmp_path: Path, stubs: Path, capsys) -> None:
    out, params = tmp_path / "run", params_file(tmp_path)
    assert cli("--params", params, "--out", out, "--notebooks", stubs) == 0
    first = manifest(out)
    assert first["status"] == "ok" and [s["status"] for s in first["stages"]] == ["ok"] * 6
    assert "data/personas.md" in first["files"] and "manifest.json" in first["files"]
    assert set(first["files"]) <= run_outputs(STAGES)
    (out / "data" / "extra").mkdir()  # an empty sub-folder: no IsADirectoryError, and it stays

    fewer = stub_notebooks(tmp_path / "fewer", write_md=False)
    assert cli("--params", params, "--out", out, "--notebooks", fewer) == 0
    second = manifest(out)
    assert second["status"] == "ok" and second["created"] >= first["created"]
    assert not (out / "data" / "personas.md").exists()  # the first run's, not written again
    assert "data/personas.md" not in second["files"] and (out / "data" / "extra").is_dir()
    assert all((out / f).is_file() for f in second["files"])
    capsys.readouterr()


def test_a_manifest_of_an_older_version_counts_for_the_files_a_run_writes(tmp_path: Path) -> None:
    """Manifests written before runs listed their files: the known output names are the run's."""
    (tmp_path / "data" / "keep").mkdir(parents=True)
    (tmp_path / "manifest.json").write_text(json.dumps({"parameters": {}, "stages": []}), encoding="utf-8")
    (tmp_path / "data" / "segments.parquet").write_bytes(b"old")
    (tmp_path / "05_clv.html").write_text("old", encoding="utf-8")
    plan = plan_output_folder(tmp_path, [], run_outputs(STAGES))
    assert plan.previous == ["05_clv.html", "data/segments.parquet", "manifest.json"]
    (tmp_path / "data" / "keep" / "mine.csv").write_text("x", encoding="utf-8")
    with pytest.raises(OutputFolderError, match=r"no run of cp-toolkit wrote \(data/keep/mine.csv\)"):
        plan_output_folder(tmp_path, [], run_outputs(STAGES))


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("/proc/cp-toolkit/run", "cannot create the output folder /proc/cp-toolkit/run: "),
        ("FILE", "is a file, not a folder"),
    ],
)
def test_an_invalid_output_folder_ends_with_one_line(tmp_path: Path, stubs: Path, capsys, out, message) -> None:
    if out == "FILE":
        out = tmp_path / "report.txt"
        out.write_text("a file", encoding="utf-8")
    assert cli("--params", params_file(tmp_path), "--out", out, "--notebooks", stubs) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "partial report" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_parent_ends_with_one_line(tmp_path: Path, stubs: Path, capsys) -> None:
    parent = tmp_path / "locked"
    parent.mkdir(mode=0o555)
    assert cli("--params", params_file(tmp_path), "--out", parent / "run", "--notebooks", stubs) == 2
    assert "cannot create the output folder" in capsys.readouterr().err


def test_a_full_disk_inside_a_stage_is_an_output_folder_error(tmp_path: Path, capsys) -> None:
    full = "raise OSError(28, 'No space left on device', run_dir + '/data/orders.parquet')"
    notebooks = stub_notebooks(tmp_path / "nb", {"02_eda": full})
    out = tmp_path / "run"
    assert cli("--params", params_file(tmp_path), "--out", out, "--notebooks", notebooks) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith('cp-toolkit: stage 02_eda failed in cell 2 ("raise OSError(28, ')
    assert "OSError: [Errno 28] No space left on device: " in err[0]
    assert err[0].endswith("orders.parquet'; free space or choose a folder you can write to with --out")
    failed = tmp_path / "run.failed"
    assert err[1:] == [
        f"cp-toolkit: the failed run is kept in {failed}; the page of the failing stage is {failed / '02_eda.html'}",
        "cp-toolkit: after fixing the cause, rerun with --from 02_eda to reuse the stages that succeeded",
    ]
    assert manifest(failed)["status"] == "failed" and not out.exists()


# -- a failed stage ---------------------------------------------------------------------------
FAIL = """from cp_toolkit.run.artifacts import RunFolder
run = RunFolder(run_dir)


name = "no_such_artifact"
path = run.file(
    name
)
print(path)"""


def test_a_failed_stage_names_the_statement_that_raised(tmp_path: Path, capfd) -> None:
    notebooks = stub_notebooks(tmp_path / "nb", {"03_segmentation": FAIL})
    out = tmp_path / "run"
    assert cli("--params", params_file(tmp_path), "--out", out, "--notebooks", notebooks) == 1
    captured = capfd.readouterr()
    err = captured.err.splitlines()
    assert err[0].startswith(
        "cp-toolkit: stage 03_segmentation failed in cell 3 ('path = run.file(name)'): "
        "KeyError: \"unknown artifact 'no_such_artifact'; known: ['audience', "
    )
    failed = tmp_path / "run.failed"
    assert err[1:] == [  # no kernel warning either
        f"cp-toolkit: the failed run is kept in {failed}; the page of the failing stage is "
        f"{failed / '03_segmentation.html'}",
        "cp-toolkit: after fixing the cause, rerun with --from 03_segmentation to reuse the stages that succeeded",
    ]
    lines = captured.out.splitlines()[1:]
    assert [line.split()[:3] for line in lines] == [
        ["[1/6]", "01_ingest", "ok"],
        ["[2/6]", "02_eda", "ok"],
        ["[3/6]", "03_segmentation", "failed"],
    ]
    written = manifest(failed)
    assert written["status"] == "failed" and [s["status"] for s in written["stages"]] == ["ok", "ok", "failed"]
    assert "03_segmentation.html" in written["files"] and not (failed / "04_prediction.html").exists()
    assert "Run status: <span class='failed'>failed</span>" in (failed / "index.html").read_text(encoding="utf-8")
    page = (failed / "03_segmentation.html").read_text(encoding="utf-8")
    assert page.index("03 · Segments failed") < page.index("KeyError") and "An Exception was encountered" not in page
    assert "--from 03_segmentation reuses the stages that succeeded" in page
    assert not out.exists() and not (tmp_path / ".run.partial").exists()

    assert cli("--params", params_file(tmp_path), "--out", out, "--notebooks", notebooks, "--debug") == 1
    assert "Traceback (most recent call last)" in capfd.readouterr().err


def test_failed_statement_from_ipython_tracebacks() -> None:
    """The ``---->`` line of the cell's frame (a real IPython 8 traceback), not a frame inside a function."""
    traceback = [
        "\x1b[31m-----------------\x1b[39m",
        "\x1b[31mZeroDivisionError\x1b[39m                         Traceback (most recent call last)",
        "\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[3]\x1b[39m\x1b[32m, line 5\x1b[39m\n"
        "\x1b[32m      1\x1b[39m \x1b[38;5;28;01mdef\x1b[39;00m f():\n"
        "\x1b[32m      4\x1b[39m z = \x1b[32m3\x1b[39m\n"
        "\x1b[32m----> \x1b[39m\x1b[32m5\x1b[39m f()\n"
        "\x1b[32m      6\x1b[39m w = \x1b[32m5\x1b[39m\n",
        "\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[3]\x1b[39m\x1b[32m, line 2\x1b[39m, in \x1b[36mf\x1b[39m()\n"
        "\x1b[32m----> \x1b[39m\x1b[32m2\x1b[39m     \x1b[38;5;28;01mreturn\x1b[39;00m "
        "\x1b[32m1\x1b[39m/\x1b[32m0\x1b[39m\n",
        "\x1b[31mZeroDivisionError\x1b[39m: division by zero",
    ]
    assert failed_statement(traceback, "def f():\n    return 1/0\n\nz = 3\nf()\nw = 5") == "f()"
    multi = ["Cell In[4], line 2\n      1 x = 1\n----> 2 r = cp.clv.run_stage(\n      3     run,\n      4     seed=1,\n"
             "      5 )\n      6 label = card['purchase_model']\n"]  # fmt: skip
    assert failed_statement(multi) == "r = cp.clv.run_stage(run, seed=1,)"
    assert failed_statement([], "x = 1\nlabel = card['m']\n\n") == "label = card['m']"  # no cell frame


# -- interrupts -------------------------------------------------------------------------------
def _start(tmp_path: Path, out: Path, notebooks: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CP_TOOLKIT_PSEUDONYM_KEY": "test"}
    return subprocess.Popen(
        [sys.executable, "-m", "cp_toolkit.cli", "run", "--params", params_file(tmp_path), "--out", out]
        + ["--notebooks", notebooks],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )


def _wait_for_kernel(tmp_path: Path, proc: subprocess.Popen) -> int:
    marker = tmp_path / "kernel.pid"
    for _ in range(300):
        if marker.is_file() and marker.read_text():
            return int(marker.read_text())
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("the sleeping stage did not start")


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie has exited


def test_ctrl_c_ends_the_run_as_interrupted(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _start(tmp_path, out, stub_notebooks(tmp_path / "nb", {"01_ingest": SLEEP}))
    kernel = _wait_for_kernel(tmp_path, proc)
    work = tmp_path / ".run.partial"
    assert list(work.glob(".ingest-*/ingest.duckdb")) and manifest(work)["status"] == "running"
    assert not out.exists()  # the run works beside its target
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    failed = tmp_path / "run.failed"
    assert stderr.splitlines() == [
        "cp-toolkit: run interrupted by Ctrl-C (SIGINT) during stage 01_ingest; the kernel was shut down",
        f"cp-toolkit: the failed run is kept in {failed}; the page of the failing stage is {failed / '01_ingest.html'}",
    ]
    written = manifest(failed)
    assert written["status"] == "interrupted" and [s["status"] for s in written["stages"]] == ["interrupted"]
    assert not list(failed.glob(".ingest-*")) and _gone(kernel) and not work.exists() and not out.exists()
    assert "Run status: <span class='interrupted'>" in (failed / "index.html").read_text(encoding="utf-8")
    assert "01 · The data was interrupted" in (failed / "01_ingest.html").read_text(encoding="utf-8")


def test_sigterm_during_a_rerun_leaves_the_previous_run_untouched(tmp_path: Path, stubs: Path) -> None:
    out = tmp_path / "run"
    assert cli("--params", params_file(tmp_path), "--out", out, "--notebooks", stubs) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    proc = _start(tmp_path, out, stub_notebooks(tmp_path / "nb", {"02_eda": SLEEP}))
    kernel = _wait_for_kernel(tmp_path, proc)
    work = tmp_path / ".run.partial"
    assert manifest(work)["status"] == "running" and manifest(out)["status"] == "ok"
    assert not (work / "06_persona.html").exists() and not (work / "stages" / "06_persona.json").exists()
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert stderr.splitlines()[0] == (
        "cp-toolkit: run interrupted by SIGTERM during stage 02_eda; the kernel was shut down"
    )
    assert [line.split()[:3] for line in stdout.splitlines()[1:]] == [
        ["[1/6]", "01_ingest", "ok"],
        ["[2/6]", "02_eda", "interrupted"],
    ]
    failed = tmp_path / "run.failed"
    written = manifest(failed)
    assert written["status"] == "interrupted"
    assert [(s["stage"], s["status"]) for s in written["stages"]] == [("01_ingest", "ok"), ("02_eda", "interrupted")]
    index = (failed / "index.html").read_text(encoding="utf-8")
    assert "03_segmentation" not in index and "<td class='ok'>ok</td>" in index
    assert not list(failed.glob(".ingest-*")) and _gone(kernel) and not work.exists()
    assert not any((failed / f"{s}.html").exists() for s in STAGES[2:])
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # untouched


# -- console ----------------------------------------------------------------------------------
def test_a_terminal_gets_one_rewritten_line_per_stage_and_the_notes(tmp_path: Path) -> None:
    note = "No pseudonymization key: set CP_TOOLKIT_PSEUDONYM_KEY"
    notebooks = stub_notebooks(
        tmp_path / "nb",
        {"01_ingest": RECORD.format(stage="01_ingest", write_md=False, notes=f", notes=[{note!r}]")},
    )
    screen = io.StringIO()
    params = {"dataset": "cdnow", "as_of": "1998-06-30", "sources": {}}
    run_report(params, tmp_path / "run", notebooks, console=Console(screen, tty=True))
    lines = screen.getvalue().split("\n")
    assert len(lines) == 6 + 1 + 1  # six stage lines, one note, and the end of the last line
    assert "cells" in lines[0] and "\r" in lines[0]  # the progress bar, rewritten in place
    final = [line.rsplit("\r", 1)[-1] for line in lines[:-1]]
    assert final[0].split()[:3] == ["[1/6]", "01_ingest", "ok"] and final[0].endswith("stub 01_ingest done")
    assert final[1] == f"      note: {note}"
    assert final[-1].split()[:3] == ["[6/6]", "06_persona", "ok"]


def test_the_toolkits_warnings_become_notes_of_the_stage(tmp_path: Path) -> None:
    run = RunFolder(tmp_path)

    @stage("04_prediction")
    def run_stage(run: RunFolder) -> None:
        warnings.warn("the churn model fell back to the recency baseline", CPToolkitWarning, stacklevel=1)
        warnings.warn("a third-party remark", UserWarning, stacklevel=1)
        run.record_stage("04_prediction", "done", notes=["recorded by the stage"])

    with pytest.warns(UserWarning):
        run_stage(run)
    assert run.stage_summary("04_prediction")["notes"] == [
        "recorded by the stage",
        "the churn model fell back to the recency baseline",
    ]


def test_ingest_without_a_key_notes_it_for_the_console(tmp_path: Path, monkeypatch) -> None:
    from cp_toolkit.ingest import run_stage

    monkeypatch.delenv("CP_TOOLKIT_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("CP_TOOLKIT_PSEUDONYM_KEY_FILE", raising=False)
    run = RunFolder(tmp_path / "run")
    sales = tmp_path / "sales.csv"
    sales.write_text("customer,day,amount\na,2024-01-02,10.5\nb,2024-01-03,7\na,2024-01-09,3\n", encoding="utf-8")
    source = {"path": str(sales), "columns": {"customer_id": "customer", "ts": "day", "amount": "amount"}}
    with pytest.warns(CPToolkitWarning, match="No pseudonymization key"):
        run_stage(run, dataset="custom", sources={"transactions": source}, as_of="2024-01-31")
    notes = run.stage_summary("01_ingest")["notes"]
    assert len(notes) == 1 and notes[0].startswith("No pseudonymization key: set CP_TOOLKIT_PSEUDONYM_KEY")
    assert not list(run.path.glob(".ingest-*"))
