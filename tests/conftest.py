"""Shared fixtures. A fixed pseudonymization key makes every run deterministic; notebook
kernels started by nbval inherit it from this process's environment."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("CP_TOOLKIT_PSEUDONYM_KEY", "cp-toolkit-test-key")

from cp_toolkit import RunFolder, ensure  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KEY = b"cp-toolkit-test-key"


@pytest.fixture(scope="session")
def cj_run(tmp_path_factory: pytest.TempPathFactory) -> RunFolder:
    """A run folder with every artifact of the default profile (built without notebooks)."""
    run = RunFolder(tmp_path_factory.mktemp("cj_run"))
    ensure(run, "personas")
    return run


def orders_frame(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    """Orders from (customer_id, day, amount) tuples; one line per order."""
    df = pd.DataFrame(rows, columns=["customer_id", "ts", "amount"])
    df["ts"] = pd.to_datetime(df["ts"])
    df["order_id"] = [f"o{i}" for i in range(len(df))]
    df["n_lines"] = 1
    return df
