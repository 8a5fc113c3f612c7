"""A series of monthly runs: one broken month leaves the others and the page says so; a rerun runs
only what is not done; a changed input under finished months is flagged, not silently ignored."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cp_toolkit.cli import main
from cp_toolkit.errors import ParameterError
from cp_toolkit.run.series import period_ends

from .test_run_faults import csv_params, sales, snapshot
from .test_run_safety import stub_notebooks

#: Stub stages that record key figures which move with the month, and segment sizes.
FIGURES = {
    "01_ingest": """from cp_toolkit.run.artifacts import RunFolder
run = RunFolder(run_dir)
month = int(as_of[5:7])
run.record_stage("01_ingest", "stub", kpis={"customers": 1000 + 100 * month, "quality_score": 0.9})""",
    "03_segmentation": """from cp_toolkit.run.artifacts import RunFolder
run = RunFolder(run_dir)
run.record_stage("03_segmentation", "stub", segment_sizes={"Loyal": 400 + int(as_of[5:7]), "New": None})""",
    "04_prediction": """from pathlib import Path
from cp_toolkit.run.artifacts import RunFolder
run = RunFolder(run_dir)
assert not (Path(run_dir).parents[1] / f"broken-{as_of}").exists(), "the extract of this month is broken"
run.record_stage("04_prediction", "stub", kpis={"share_at_risk": 0.1})""",
}


@pytest.mark.parametrize(
    ("first", "last", "every", "ends"),
    [
        ("2017-07-31", "2017-12-31", "month", [f"2017-{d}" for d in ("07-31", "08-31", "09-30", "10-31", "11-30")]
         + ["2017-12-31"]),
        ("2017-07-15", "2017-09-30", "month", ["2017-07-31", "2017-08-31", "2017-09-30"]),
        ("2017-01-01", "2017-12-31", "quarter", ["2017-03-31", "2017-06-30", "2017-09-30", "2017-12-31"]),
        ("2017-12-03", "2017-12-31", "week", ["2017-12-03", "2017-12-10", "2017-12-17", "2017-12-24", "2017-12-31"]),
    ],
)  # fmt: skip
def test_period_ends(first: str, last: str, every: str, ends: list[str]) -> None:
    assert period_ends(first, last, every) == ends


@pytest.mark.parametrize(
    ("first", "last", "every", "message"),
    [
        ("2017-12-31", "2017-07-31", "month", "the first date is after the last"),
        ("2017-07-02", "2017-07-20", "month", "holds no month end"),
        ("2017-13-01", "2017-12-31", "month", "give two dates"),
        ("2017-07-31", "2017-12-31", "day", "give one of week, month, quarter"),
    ],
)
def test_period_ends_refuses(first: str, last: str, every: str, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        period_ends(first, last, every)


def _series(tmp_path: Path, params: Path, notebooks: Path, *more: str, last: str = "2024-03-31") -> int:
    args = ["run", "--params", str(params), "--notebooks", str(notebooks), "--out", str(tmp_path / "monthly")]
    return main([*args, "--as-of", f"2024-01-31..{last}", "--every", "month", *more])


TWO = "2024-02-29"  # a series of two months, where two do


def _visible(page: Path) -> str:
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page.read_text(encoding="utf-8"))
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))


def test_a_broken_month_then_a_rerun_of_only_that_month(tmp_path: Path, capsys) -> None:
    notebooks = stub_notebooks(tmp_path / "nb", FIGURES)
    params = csv_params(tmp_path, sales(tmp_path / "sales.csv"))
    (tmp_path / "broken-2024-02-29").touch()
    assert _series(tmp_path, params, notebooks) == 1
    out = capsys.readouterr().out
    folder = tmp_path / "monthly"
    assert "cp-toolkit: period 2024-02-29 failed: stage 04_prediction failed in cell 2" in out
    assert "cp-toolkit: series: 2 ok, 1 failed (3 run now, 0 already done)" in out
    statuses = {p.name: json.loads((p / "manifest.json").read_text())["status"] for p in folder.iterdir() if p.is_dir()}
    assert statuses == {"2024-01-31_params": "ok", "2024-02-29_params.failed": "failed", "2024-03-31_params": "ok"}
    march = json.loads((folder / "2024-03-31_params" / "manifest.json").read_text())
    assert Path(march["parameters"]["previous_run"]).name == "2024-01-31_params"  # the last good month before it

    page = _visible(folder / "index.html")
    assert "3 periods from 31 January 2024 to 31 March 2024: 2 ran to the end, 1 failed." in page
    assert "The run of 29 February 2024 failed: stage 04_prediction failed in cell 2" in page
    assert "the extract of this month is broken" in page and "customers 1,100 → 1,300 (+18.2%)" in page
    assert 'href="2024-02-29_params.failed/04_prediction.html"' in (folder / "index.html").read_text()
    january = snapshot(folder / "2024-01-31_params")

    (tmp_path / "broken-2024-02-29").unlink()  # the fix
    assert _series(tmp_path, params, notebooks) == 0
    out = capsys.readouterr().out
    assert "cp-toolkit: period 2024-01-31 already done; skipped (--force runs it again)\n" in out
    assert "cp-toolkit: period 2024-02-29 into " in out and "period 2024-03-31 into" not in out
    assert "cp-toolkit: series: 3 ok, 0 failed (1 run now, 2 already done)" in out
    # March compared itself with January; now February exists, so March is flagged, not rerun
    assert (
        "period 2024-03-31 already done; skipped, but changed since it ran: "
        "the run it compares with is now 2024-02-29_params (was 2024-01-31_params) (--force runs it again)" in out
    )
    assert snapshot(folder / "2024-01-31_params") == january and not (folder / "2024-02-29_params.failed").exists()
    page = _visible(folder / "index.html")
    assert "3 periods from 31 January 2024 to 31 March 2024: 3 ran to the end." in page
    assert "Changed since it ran: the run it compares with is now 2024-02-29_params (was 2024-01-31_params)" in page


def test_a_changed_input_under_finished_months_is_flagged(tmp_path: Path, capsys) -> None:
    notebooks = stub_notebooks(tmp_path / "nb", FIGURES)
    source = sales(tmp_path / "sales.csv")
    params = csv_params(tmp_path, source)
    assert _series(tmp_path, params, notebooks, last=TWO) == 0
    folder = tmp_path / "monthly"
    before = {p.name: snapshot(p) for p in folder.iterdir() if p.is_dir()}
    sales(source, rows=41)  # one more line in the extract
    capsys.readouterr()
    assert _series(tmp_path, params, notebooks, last=TWO) == 0
    out = capsys.readouterr().out
    assert out.count(f"changed since it ran: its input files changed: transactions ({source})") == 2
    assert {p.name: snapshot(p) for p in folder.iterdir() if p.is_dir()} == before  # nothing rerun
    assert "its input files changed" in _visible(folder / "index.html")
    assert _series(tmp_path, params, notebooks, "--force", last=TWO) == 0
    out = capsys.readouterr().out
    assert "(2 run now, 0 already done)" in out and "changed since it ran" not in out
    assert main(["status", str(folder), "--notebooks", str(notebooks)]) == 0
    status = capsys.readouterr().out
    assert status.startswith(f"series {folder.absolute()}: 2 runs") and "would run again" not in status
