"""The ``cp-toolkit run`` command end to end on the CDNOW profile, and its failures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from cp_toolkit.cli import main
from cp_toolkit.run.artifacts import ARTIFACTS
from cp_toolkit.run.pipeline import STAGES

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cdnow_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("reports") / "cdnow"
    code = main(
        [
            "run",
            "--params",
            str(ROOT / "params" / "cdnow.yaml"),
            "--out",
            str(out),
            "--notebooks",
            str(ROOT / "notebooks"),
        ]
    )
    return code, out


def test_run_writes_the_whole_report(cdnow_report) -> None:
    code, out = cdnow_report
    assert code == 0
    for stage in STAGES:
        page = (out / f"{stage}.html").read_text(encoding="utf-8")
        assert (out / f"{stage}.ipynb").is_file()
        assert "data:image/png;base64" in page or stage == "01_ingest", f"{stage}: no figure"
        assert "import cp_toolkit" not in page and "hl-ipython3" not in page, f"{stage}: code is shown"
        assert "Traceback" not in page and 'class="ansi-red-fg"' not in page, f"{stage}: an error is shown"
        text = re.sub(r"base64,[A-Za-z0-9+/=]+", "", page)  # figures are not text
        raw = re.findall(r"\bNaN\b|&lt;NA&gt;|\bNaT\b|dtype:|\{'|UserWarning", text)
        assert not raw, f"{stage}: raw printout {raw}"
    expected = {"campaigns", "category_recommendations"}  # CDNOW has no campaigns and no products
    for name, file in ARTIFACTS.items():
        assert (out / "data" / file).is_file() or name in expected, file
    index = (out / "index.html").read_text(encoding="utf-8")
    assert all(f'href="{stage}.html"' in index for stage in STAGES)


def test_manifest(cdnow_report) -> None:
    _, out = cdnow_report
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "ok" and [s["stage"] for s in manifest["stages"]] == list(STAGES)
    assert all(s["status"] == "ok" and s["seconds"] > 0 and s["headline"] for s in manifest["stages"])
    assert manifest["parameters"]["dataset"] == "cdnow" and manifest["parameters"]["clv_time_unit"] == "weeks"
    assert len(manifest["inputs"]["transactions"]["files"][0]["sha256"]) == 64
    assert manifest["row_counts"]["transactions"] == 69_659 and manifest["row_counts"]["segments"] == 23_570
    assert {"pandas", "lifetimes", "scikit-learn", "papermill"} <= set(manifest["versions"])


def test_no_raw_customer_id_in_reports(cdnow_report) -> None:
    """CDNOW's raw ids are zero-padded 5-digit strings such as 00002; none may appear."""
    _, out = cdnow_report
    written = [
        *out.glob("*.html"),
        *out.glob("*.ipynb"),
        *out.glob("data/*.json"),
        *out.glob("data/*.csv"),
        *out.glob("data/*.md"),
    ]
    assert len(written) >= 16
    images = re.compile(r'data:image/[\w+]+;base64,[A-Za-z0-9+/=]+|"image/png": "[^"]*"')  # base64 can spell 03379
    for path in written:
        text = images.sub("", path.read_text(encoding="utf-8"))
        assert not re.search(r"(?<![\w.])0\d{4}(?![\w.])", text), path.name
    for name in ("segments", "clv", "predictions"):
        import pandas as pd

        ids = pd.read_parquet(out / "data" / ARTIFACTS[name])["customer_id"]
        assert ids.str.fullmatch(r"c_[0-9a-f]{16}").all()


#: Keys of stage summaries and JSON artifacts that record when or how long, not what.
TIMES = {"seconds", "created", "finished", "elapsed", "duration", "started"}


def _without_times(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: _without_times(v) for k, v in obj.items() if k not in TIMES and not k.endswith("_seconds")}
    if isinstance(obj, list):
        return [_without_times(v) for v in obj]
    return obj


_FIGURE = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")


def assert_same_run(first: Path, second: Path) -> None:
    """Two runs wrote the same artifacts (Parquet by value, JSON apart from times, text byte for
    byte), the same stage summaries and figures, and have the same fingerprints."""
    import pandas as pd

    files = sorted(p.relative_to(first) for p in (first / "data").iterdir())
    assert files == sorted(p.relative_to(second) for p in (second / "data").iterdir()) and len(files) >= 15
    for rel in files:
        if rel.suffix == ".parquet":
            pd.testing.assert_frame_equal(pd.read_parquet(first / rel), pd.read_parquet(second / rel), obj=str(rel))
        elif rel.suffix == ".json":
            a, b = (json.loads((run / rel).read_text(encoding="utf-8")) for run in (first, second))
            assert _without_times(a) == _without_times(b), rel
        else:
            assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    for stage in STAGES:
        a, b = (json.loads((run / "stages" / f"{stage}.json").read_text(encoding="utf-8")) for run in (first, second))
        assert _without_times(a) == _without_times(b), stage
        figures = [_FIGURE.findall((run / f"{stage}.html").read_text(encoding="utf-8")) for run in (first, second)]
        assert figures[0] == figures[1] and figures[0], f"{stage}: the figures differ"
    fingerprints = [
        [s["fingerprint"] for s in json.loads((r / "manifest.json").read_text())["stages"]] for r in (first, second)
    ]
    assert fingerprints[0] == fingerprints[1]


def test_a_failed_run_then_resumed_is_the_same_as_a_full_run(
    cdnow_report, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A stage that fails keeps the run as <name>.failed; fixed, ``--from`` reuses the stages that
    ran, and the run is the same as the CDNOW profile run at once (determinism of the stages run
    twice, and of the reused ones)."""
    profile = yaml.safe_load((ROOT / "params" / "cdnow.yaml").read_text())
    params = tmp_path / "bad.yaml"
    # a calibration end before the first purchase: only the data can tell
    params.write_text(yaml.safe_dump({**profile, "clv_calibration_end": "1990-01-01"}))
    code = main(
        ["run", "--params", str(params), "--out", str(tmp_path / "run"), "--notebooks", str(ROOT / "notebooks")]
    )
    captured = capfd.readouterr()
    err = captured.err
    assert code == 1
    assert re.search(
        r"stage 05_clv failed in cell \d+ .*ParameterError: clv_calibration_end 1990-01-01 must lie between the first ",
        err,
    )
    # the statement that raised (from the traceback), not the cell's last line
    assert re.search(r"failed in cell \d+ \('clv = cp\.clv\.run_stage\(run, as_of=as_of, clv_model=clv_model, ", err)
    # the error, where the failed run is kept and how to resume; no kernel or third-party warning, no traceback
    failed = tmp_path / "run.failed"
    assert err.splitlines()[1:] == [
        f"cp-toolkit: the failed run is kept in {failed}; the page of the failing stage is {failed / '05_clv.html'}",
        "cp-toolkit: after fixing the cause, rerun with --from 05_clv to reuse the stages that succeeded",
    ]
    assert "Traceback" not in err
    lines = captured.out.splitlines()
    assert [line.split()[:3] for line in lines[1:]] == [
        ["[1/6]", "01_ingest", "ok"],
        ["[2/6]", "02_eda", "ok"],
        ["[3/6]", "03_segmentation", "ok"],
        ["[4/6]", "04_prediction", "ok"],
        ["[5/6]", "05_clv", "failed"],
    ]
    manifest = json.loads((failed / "manifest.json").read_text())
    assert manifest["status"] == "failed" and [s["status"] for s in manifest["stages"]][-2:] == ["ok", "failed"]
    assert not (failed / "06_persona.html").exists() and not (tmp_path / "run").exists()
    page = (failed / "05_clv.html").read_text(encoding="utf-8")
    assert page.index("05 · Lifetime value failed") < page.index("clv_calibration_end 1990-01-01 must lie between")

    # fixed: --from 05_clv reuses stages 01-04 of the failed run (same inputs, parameters and code)
    params.write_text(yaml.safe_dump(profile))
    args = ["run", "--params", str(params), "--out", str(tmp_path / "run"), "--notebooks", str(ROOT / "notebooks")]
    assert main([*args, "--from", "05_clv"]) == 0
    lines = [line for line in capfd.readouterr().out.splitlines() if line.startswith("[")]
    assert [line.split()[:3] for line in lines] == [
        ["[1/6]", "01_ingest", "reused"],
        ["[2/6]", "02_eda", "reused"],
        ["[3/6]", "03_segmentation", "reused"],
        ["[4/6]", "04_prediction", "reused"],
        ["[5/6]", "05_clv", "ok"],
        ["[6/6]", "06_persona", "ok"],
    ]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "ok" and not failed.exists()
    assert all((tmp_path / "run" / f"{stage}.html").is_file() for stage in STAGES)
    assert str(failed) not in (tmp_path / "run" / "01_ingest.ipynb").read_text(encoding="utf-8")  # relocated
    code, first = cdnow_report
    assert code == 0
    assert_same_run(first, tmp_path / "run")


def test_a_user_error_is_one_line_and_debug_shows_the_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no_notebooks"
    params = tmp_path / "p.yaml"
    params.write_text("dataset: cdnow\n")
    args = ["run", "--params", str(params), "--out", str(tmp_path / "run"), "--notebooks", str(missing)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cp-toolkit: notebook(s) [") and "pass --notebooks" in err
    assert main([*args, "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "ParameterError" in err
    assert err.splitlines()[-1].startswith("cp-toolkit: notebook(s) [")
    assert not (tmp_path / "run").exists()


def test_a_value_outside_the_choices_is_refused_before_any_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = tmp_path / "bad.yaml"
    params.write_text("clv_time_unit: months\nzero_amount: keep\n")
    assert main(["run", "--params", str(params), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "clv_time_unit: 'months' is not one of ['days', 'weeks']" in err
    assert "zero_amount: 'keep' is not one of ['set_aside', 'purchase']" in err
    assert not (tmp_path / "run").exists()


def test_unknown_parameter_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = tmp_path / "typo.yaml"
    params.write_text("horizon_dayz: 30\n")
    assert main(["run", "--params", str(params), "--out", str(tmp_path / "run")]) == 2
    assert "horizon_dayz" in capsys.readouterr().err
