"""Faults an unattended run survives: each ends with a clear error, a failed run kept as
``<name>.failed`` (or nothing written when refused up front), and the earlier run of that name
untouched. Also: reuse of earlier stages (``--only``, ``--from``), the lock, and ``cp-toolkit status``.

Runs use the stub notebooks of ``test_run_safety`` (the real parameter cells, a few lines of body),
or the real stage 01 where the fault is in the data.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cp_toolkit.cli import main
from cp_toolkit.run.lock import RunLock, lock_path
from cp_toolkit.run.pipeline import STAGES

from .test_run_safety import (
    RECORD,
    ROOT,
    SLEEP,
    _gone,
    _start,
    _wait_for_kernel,
    cli,
    manifest,
    params_file,
    stub_notebooks,
)

#: Stage 01 for real (the data's faults), the other stages stubs.
INGEST = """from cp_toolkit.ingest import run_stage
from cp_toolkit.run.artifacts import RunFolder
run_stage(RunFolder(run_dir), dataset=dataset, sources=sources, as_of=as_of)"""


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a folder with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def csv_params(tmp_path: Path, source: Path, kind: str = "csv") -> Path:
    columns = "{customer_id: customer, order_id: order, ts: day, amount: amount}"
    return params_file(
        tmp_path,
        f"dataset: custom\nas_of: '2024-03-31'\nsources:\n  transactions:\n"
        f"    path: {source}\n    columns: {columns}\n",
    )


def sales(path: Path, rows: int = 40) -> Path:
    lines = ["customer,order,day,amount"]
    lines += [f"c{i % 13},{i},2024-0{1 + i % 3}-{1 + i % 27:02d},{5 + i % 7}.5" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One finished run of the stubs, copied by :func:`good_run` (stub runs take seconds each)."""
    root = tmp_path_factory.mktemp("template")
    notebooks, out = stub_notebooks(root / "nb"), root / "run"
    assert cli("--params", params_file(root), "--out", out, "--notebooks", notebooks) == 0
    return out, notebooks


@pytest.fixture()
def good_run(template: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    """A finished run of the stubs in tmp_path/run: (run folder, notebooks, its files)."""
    out = Path(shutil.copytree(template[0], tmp_path / "run"))
    return out, Path(shutil.copytree(template[1], tmp_path / "nb")), snapshot(out)


# -- the fault table of issue 15 ----------------------------------------------------------------
def test_a_missing_input_is_refused_before_anything_is_written(tmp_path: Path, capsys) -> None:
    source = sales(tmp_path / "sales.csv")
    notebooks = stub_notebooks(tmp_path / "nb", {"01_ingest": INGEST})
    params, out = csv_params(tmp_path, source), tmp_path / "run"
    assert cli("--params", params, "--out", out, "--notebooks", notebooks) == 0
    before = snapshot(out)
    source.unlink()
    assert cli("--params", params, "--out", out, "--notebooks", notebooks) == 2
    err = capsys.readouterr().err
    assert "1 problem(s), nothing was run" in err and f"{source} does not exist; check 'path'" in err
    assert snapshot(out) == before and not (tmp_path / "run.failed").exists()


def test_a_corrupt_parquet_file_fails_stage_01_and_keeps_the_earlier_run(tmp_path: Path, capsys) -> None:
    import pandas as pd

    source = tmp_path / "sales.parquet"
    pd.read_csv(sales(tmp_path / "sales.csv")).to_parquet(source)
    notebooks = stub_notebooks(tmp_path / "nb", {"01_ingest": INGEST})
    params, out = csv_params(tmp_path, source), tmp_path / "run"
    assert cli("--params", params, "--out", out, "--notebooks", notebooks) == 0
    before = snapshot(out)
    source.write_bytes(source.read_bytes()[:200])  # cut short, as by a failed copy
    assert cli("--params", params, "--out", out, "--notebooks", notebooks) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("cp-toolkit: stage 01_ingest failed") and str(source) in err[0]
    failed = tmp_path / "run.failed"
    assert manifest(failed)["status"] == "failed" and snapshot(out) == before
    assert "01 · The data failed" in (failed / "01_ingest.html").read_text(encoding="utf-8")
    assert len(err) == 3 and "is unchanged" in err[2]  # no --from hint: nothing ran before stage 01


def test_a_stage_that_raises_keeps_the_earlier_run(good_run, tmp_path: Path, capsys) -> None:
    out, _, before = good_run
    broken = stub_notebooks(tmp_path / "broken", {"04_prediction": "raise ValueError('the model diverged')"})
    assert cli("--params", params_file(tmp_path), "--out", out, "--notebooks", broken) == 1
    err = capsys.readouterr().err.splitlines()
    assert "stage 04_prediction failed in cell 2" in err[0] and "ValueError: the model diverged" in err[0]
    assert err[2] == f"cp-toolkit: the previous run {out.absolute()} is unchanged"
    assert snapshot(out) == before
    failed = manifest(tmp_path / "run.failed")
    assert [s["status"] for s in failed["stages"]] == ["ok", "ok", "ok", "failed"]
    assert failed["error"].startswith("stage 04_prediction failed")


def test_a_killed_kernel_is_a_clear_error_not_a_hang(good_run, tmp_path: Path, capsys) -> None:
    out, _, before = good_run
    killed = stub_notebooks(
        tmp_path / "killed", {"03_segmentation": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"}
    )
    start = time.monotonic()
    assert cli("--params", params_file(tmp_path), "--out", out, "--notebooks", killed) == 1
    assert time.monotonic() - start < 120
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("cp-toolkit: stage 03_segmentation: the notebook's kernel died (out of memory, or killed)")
    assert ".partial" not in "".join(err)  # paths name where the failed run is kept
    assert snapshot(out) == before and manifest(tmp_path / "run.failed")["stages"][-1]["status"] == "failed"


def test_a_cell_over_the_timeout_is_stopped(good_run, tmp_path: Path, capsys) -> None:
    out, _, before = good_run
    slow = stub_notebooks(tmp_path / "slow", {"02_eda": "import time\ntime.sleep(600)"})
    params = params_file(tmp_path, 'dataset: cdnow\nas_of: "1998-06-30"\ncell_timeout: 3\n')
    start = time.monotonic()
    assert cli("--params", params, "--out", out, "--notebooks", slow) == 1
    assert time.monotonic() - start < 90
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        "cp-toolkit: stage 02_eda: a cell ran longer than cell_timeout (3 s) and was stopped ('import time'); "
        "raise cell_timeout in the parameters when the data are this large"
    )
    assert snapshot(out) == before and manifest(tmp_path / "run.failed")["status"] == "failed"


def test_two_concurrent_runs_do_not_mix(good_run, tmp_path: Path) -> None:
    out, _, before = good_run
    first = _start(tmp_path, out, stub_notebooks(tmp_path / "sleepy", {"02_eda": SLEEP}))
    try:
        _wait_for_kernel(tmp_path, first)
        second = subprocess.run(
            [sys.executable, "-m", "cp_toolkit.cli", "run", "--params", params_file(tmp_path), "--out", out]
            + ["--notebooks", tmp_path / "nb", "--wait", "1"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=120,
        )
        assert second.returncode == 75
        assert f"is being written by another run (pid {first.pid} on host {socket.gethostname()}, started " in (
            second.stderr
        )
        assert "after waiting 1 s" in second.stderr and second.stderr.count("\n") == 1
        assert snapshot(out) == before and manifest(tmp_path / ".run.partial")["status"] == "running"
    finally:
        first.terminate()
        first.communicate(timeout=60)
    assert first.returncode == 143 and snapshot(out) == before


def test_an_interrupted_run_then_a_rerun(good_run, tmp_path: Path) -> None:
    out, notebooks, before = good_run
    proc = _start(tmp_path, out, stub_notebooks(tmp_path / "sleepy", {"01_ingest": SLEEP}))
    kernel = _wait_for_kernel(tmp_path, proc)
    proc.terminate()
    proc.communicate(timeout=60)
    assert proc.returncode == 143 and _gone(kernel) and snapshot(out) == before
    assert manifest(tmp_path / "run.failed")["status"] == "interrupted"
    assert cli("--params", params_file(tmp_path), "--out", out, "--notebooks", notebooks) == 0
    assert manifest(out)["status"] == "ok" and not (tmp_path / "run.failed").exists()
    assert not (tmp_path / ".run.partial").exists() and not (tmp_path / ".run.old").exists()
    assert lock_path(out).read_text() == ""  # released


def test_a_run_killed_outright_leaves_a_stale_lock_that_the_next_run_takes_over(
    good_run, tmp_path: Path, capsys
) -> None:
    out, notebooks, _ = good_run
    proc = _start(tmp_path, out, stub_notebooks(tmp_path / "sleepy", {"01_ingest": SLEEP}))
    kernel = _wait_for_kernel(tmp_path, proc)
    os.killpg(proc.pid, 9)  # the runner and its kernel, with no chance to clean up
    proc.communicate(timeout=60)
    assert json.loads(lock_path(out).read_text())["pid"] == proc.pid
    for _ in range(100):  # the orphaned kernel notices its parent is gone (ipykernel's parent poller)
        if _gone(kernel):
            break
        time.sleep(0.1)
    assert _gone(kernel)
    assert cli("--params", params_file(tmp_path), "--out", out, "--notebooks", notebooks) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith(f"cp-toolkit: took over the lock of a run that is gone (pid {proc.pid} on host ")
    assert manifest(out)["status"] == "ok" and not (tmp_path / ".run.partial").exists()


def test_the_lock_names_its_holder(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    with RunLock(out) as lock:
        holder = json.loads(lock.path.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        assert (
            cli("--params", params_file(tmp_path), "--out", out, "--notebooks", stub_notebooks(tmp_path / "nb")) == 75
        )
    err = capsys.readouterr().err
    assert f"is being written by another run (pid {os.getpid()} on host" in err and "--wait SECONDS" in err
    assert not out.exists() and lock_path(out).read_text() == ""


# -- reuse of earlier stages ------------------------------------------------------------------
def _states(out: Path) -> list[str]:
    return [s["status"] for s in manifest(out)["stages"]]


def test_only_reuses_what_still_matches(good_run, tmp_path: Path, capsys) -> None:
    out, notebooks, _ = good_run
    params = params_file(tmp_path)
    assert cli("--params", params, "--out", out, "--notebooks", notebooks, "--only", "05_clv") == 0
    assert _states(out) == ["reused", "reused", "reused", "reused", "ok", "reused"]  # nothing changed for 06 either
    assert manifest(out)["status"] == "ok"

    # a parameter of stage 05 only: 06 reads 05's output, so it is stale and the run partial
    changed = params_file(tmp_path, 'dataset: cdnow\nas_of: "1998-06-30"\nclv_horizon_months: 6\n')
    assert cli("--params", changed, "--out", out, "--notebooks", notebooks, "--only", "05_clv") == 0
    assert _states(out) == ["reused", "reused", "reused", "reused", "ok", "stale"]
    assert manifest(out)["status"] == "partial" and not (out / "06_persona.html").exists()
    out_lines = capsys.readouterr().out
    assert "not run: its parameters changed: clv_horizon_months" not in out_lines  # 06 does not take it
    assert (
        "not run: an earlier stage it reads (01_ingest, 03_segmentation, 04_prediction, 05_clv) runs again" in out_lines
    )

    # a parameter of stage 03: --only 05 refuses to build on it, --from 03 runs 03 and after
    seg = params_file(tmp_path, 'dataset: cdnow\nas_of: "1998-06-30"\nclv_horizon_months: 6\nnew_customer_days: 30\n')
    assert cli("--params", seg, "--out", out, "--notebooks", notebooks, "--only", "05_clv") == 2
    err = capsys.readouterr().err
    assert (
        "cannot reuse the earlier stages of" in err
        and "03_segmentation: its parameters changed: new_customer_days" in err
    )
    assert "(--from 03_segmentation)" in err and manifest(out)["status"] == "partial"
    assert cli("--params", seg, "--out", out, "--notebooks", notebooks, "--from", "03_segmentation") == 0
    assert _states(out) == ["reused", "reused", "ok", "ok", "ok", "ok"] and manifest(out)["status"] == "ok"


def test_only_without_an_earlier_run_is_refused(tmp_path: Path, capsys) -> None:
    notebooks = stub_notebooks(tmp_path / "nb")
    assert (
        cli("--params", params_file(tmp_path), "--out", tmp_path / "run", "--notebooks", notebooks, "--only", "05_clv")
        == 2
    )
    assert "there is no earlier run in" in capsys.readouterr().err and not (tmp_path / "run").exists()
    assert cli("--params", params_file(tmp_path), "--out", tmp_path / "run", "--only", "05_cl") == 2
    assert "unknown stage '05_cl'; the stages are 01_ingest, " in capsys.readouterr().err


def test_status_says_why_a_stage_would_run_again(good_run, tmp_path: Path, capsys) -> None:
    out, notebooks, _ = good_run
    assert main(["status", str(out), "--notebooks", str(notebooks)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{out.absolute()}: ok (as_of 1998-06-30, started ")
    assert [line.split()[:3] for line in lines[1:]] == [[s, "ok", "up"] for s in STAGES]
    changed = params_file(tmp_path, 'dataset: cdnow\nas_of: "1998-06-30"\nclv_horizon_months: 6\n')
    assert main(["status", str(out), "--params", str(changed), "--notebooks", str(notebooks)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[5].split()[:2] == ["05_clv", "ok"]
        and "would run again: its parameters changed: clv_horizon_months" in lines[5]
    )
    assert "runs again" in lines[6] and "up to date" in lines[4]
    (notebooks / "02_eda.ipynb").write_text((notebooks / "02_eda.ipynb").read_text().replace("stub", "stub!"))
    assert main(["status", str(out), "--notebooks", str(notebooks)]) == 0
    assert "02_eda           ok          would run again: its notebook changed" in capsys.readouterr().out


def test_a_rerun_keeps_files_no_run_wrote_with_force(good_run, tmp_path: Path) -> None:
    out, notebooks, _ = good_run
    (out / "my notes.txt").write_text("mine", encoding="utf-8")
    (out / "empty").mkdir()
    assert cli("--params", params_file(tmp_path), "--out", out, "--notebooks", notebooks, "--force") == 0
    assert (out / "my notes.txt").read_text(encoding="utf-8") == "mine" and (out / "empty").is_dir()
    assert "my notes.txt" not in manifest(out)["files"]


# -- what the review of issue 15 found -------------------------------------------------------
def test_a_publish_cut_short_puts_the_previous_run_back(good_run, tmp_path: Path, capsys, monkeypatch) -> None:
    import errno

    from cp_toolkit.run import workspace

    out, notebooks, before = good_run
    real = os.replace

    def full_disk(src, dst):  # the work folder cannot take the target's name
        if Path(src).name == ".run.partial" and Path(dst) == out:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(workspace.os, "replace", full_disk)
    assert cli("--params", params_file(tmp_path), "--out", out, "--notebooks", notebooks) == 2
    err = capsys.readouterr().err
    assert "cannot publish the run as" in err and "No space left on device" in err
    monkeypatch.setattr(workspace.os, "replace", real)
    assert snapshot(out) == before and not (tmp_path / ".run.old").exists()
    kept = manifest(tmp_path / "run.failed")
    assert kept["status"] == "failed" and "No space left on device" in kept["error"]
    assert [s["status"] for s in kept["stages"]] == ["ok"] * 6  # every stage ran; only publishing failed


def test_a_run_killed_while_publishing_is_put_back_by_the_next_run(good_run, tmp_path: Path) -> None:
    out, notebooks, before = good_run
    os.replace(out, tmp_path / ".run.old")  # killed between the two renames of a publish
    params = params_file(tmp_path)
    assert cli("--params", params, "--out", out, "--notebooks", notebooks, "--only", "06_persona") == 0
    assert _states(out) == ["reused"] * 5 + ["ok"] and not (tmp_path / ".run.old").exists()
    assert snapshot(out)["data/personas.md"] == before["data/personas.md"]


def test_a_file_put_in_the_target_during_a_run_is_kept(good_run, tmp_path: Path) -> None:
    out, _, _ = good_run
    drop = f"from pathlib import Path\n(Path({str(out)!r}) / 'added.txt').write_text('mine')\n" + RECORD.format(
        stage="03_segmentation", write_md=False, notes=""
    )
    notebooks = stub_notebooks(tmp_path / "dropping", {"03_segmentation": drop})
    assert cli("--params", params_file(tmp_path), "--out", out, "--notebooks", notebooks) == 0
    assert (out / "added.txt").read_text() == "mine" and "added.txt" not in manifest(out)["files"]


def test_without_a_key_a_rerun_stage_01_makes_every_later_stage_stale(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("CP_TOOLKIT_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("CP_TOOLKIT_PSEUDONYM_KEY_FILE", raising=False)
    notebooks, out, params = stub_notebooks(tmp_path / "nb"), tmp_path / "run", params_file(tmp_path)
    assert cli("--params", params, "--out", out, "--notebooks", notebooks) == 0
    assert cli("--params", params, "--out", out, "--notebooks", notebooks, "--from", "03_segmentation") == 0
    assert _states(out) == ["reused", "reused", "ok", "ok", "ok", "ok"]  # stage 01 with its own key is reusable
    assert cli("--params", params, "--out", out, "--notebooks", notebooks, "--only", "01_ingest") == 0
    assert _states(out) == ["ok", "stale", "stale", "stale", "stale", "stale"]  # a new key: nothing after it fits
    assert manifest(out)["status"] == "partial"


def test_an_edited_exclusion_list_is_a_changed_input(tmp_path: Path, capsys) -> None:
    source, excluded = sales(tmp_path / "sales.csv"), tmp_path / "staff.txt"
    excluded.write_text("c1\n", encoding="utf-8")
    params = params_file(
        tmp_path,
        f"dataset: custom\nas_of: '2024-03-31'\nsources:\n  transactions:\n    path: {source}\n"
        f"    exclude_customers_file: {excluded}\n"
        "    columns: {customer_id: customer, order_id: order, ts: day, amount: amount}\n",
    )
    notebooks, out = stub_notebooks(tmp_path / "nb"), tmp_path / "run"
    assert cli("--params", params, "--out", out, "--notebooks", notebooks) == 0
    excluded.write_text("c1\nc2\n", encoding="utf-8")
    assert cli("--params", params, "--out", out, "--notebooks", notebooks, "--from", "02_eda") == 2
    assert f"01_ingest: its input files changed: transactions ({excluded})" in capsys.readouterr().err
