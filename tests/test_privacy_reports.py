"""Privacy holds in every table of every report: runs on bases of 1, 25 and 80 customers.

A base under ``min_group_size`` shows no figure at all (no table of numbers, no chart, no key
figure on the index); larger small bases show no group of customers under it, no quantile table
whose groups are under it, and no individual customer anywhere.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cp_toolkit.cli import main
from cp_toolkit.privacy import complementary_suppression
from cp_toolkit.run.pipeline import STAGES
from cp_toolkit.text import t

ROOT = Path(__file__).resolve().parent.parent
MIN_GROUP = 10


def _write_base(folder: Path, customers: int, seed: int = 7) -> Path:
    """Transactions and attributes of ``customers`` customers over two years, and a profile for them."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(customers):
        days = np.sort(rng.choice(700, size=int(rng.integers(1, 15)), replace=False))
        rows += [(f"person{i:04d}", f"o{i}_{j}", str(pd.Timestamp("2019-01-01") + pd.Timedelta(days=int(d))),
                  round(float(rng.gamma(2.0, 20.0)) + 1, 2)) for j, d in enumerate(days)]  # fmt: skip
    pd.DataFrame(rows, columns=["c", "o", "t", "a"]).to_csv(folder / "tx.csv", index=False)
    bands = rng.choice(["18-24", "25-34", "35-44", "45-54", "65+"], size=customers, p=[0.05, 0.3, 0.3, 0.3, 0.05])
    pd.DataFrame({"id": [f"person{i:04d}" for i in range(customers)], "age": bands}).to_csv(
        folder / "customers.csv", index=False
    )
    profile = {
        "dataset": "custom",
        "as_of": "2020-11-30",
        "min_group_size": MIN_GROUP,
        "clv_bootstrap_samples": 3,
        "sources": {
            "transactions": {
                "path": str(folder / "tx.csv"),
                "columns": {"customer_id": "c", "order_id": "o", "ts": "t", "amount": "a"},
            },  # fmt: skip
            "customers": {"path": str(folder / "customers.csv"), "columns": {"customer_id": "id"}},
        },
    }
    path = folder / "small.yaml"
    path.write_text(yaml.safe_dump(profile), encoding="utf-8")
    return path


class _Page(HTMLParser):
    """The visible text, the tables (rows of cell texts) and the images of a report page."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.images = 0
        self._skip = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._skip += 1
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script") and self._skip:
            self._skip -= 1
        elif tag in ("td", "th") and self._cell is not None and self.tables and self.tables[-1]:
            self.tables[-1][-1].append(" ".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)
            if self._cell is not None:
                self._cell.append(data)


def _pages(out: Path) -> dict[str, _Page]:
    pages = {}
    for name in [*(f"{s}.html" for s in STAGES), "index.html"]:
        page = _Page()
        page.feed((out / name).read_text(encoding="utf-8"))
        pages[name] = page
    return pages


@pytest.fixture(scope="module", params=[1, 25, 80], ids=lambda n: f"{n}_customers")
def small_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    folder = tmp_path_factory.mktemp(f"base{request.param}")
    profile = _write_base(folder, request.param)
    out = folder / "run"
    code = main(["run", "--params", str(profile), "--out", str(out), "--notebooks", str(ROOT / "notebooks")])
    assert code == 0
    return request.param, out


def _customer_columns(table: list[list[str]]) -> list[int]:
    """Positions of the header cells that count customers."""
    names = {t("column.customers"), t("predict.column.customers"), t("predict.column.decile_customers")}
    header = next((row for row in table if row), [])
    return [i for i, cell in enumerate(header) if cell in names]


def test_no_individual_customer_appears_in_any_report(small_run: tuple[int, Path]) -> None:
    _, out = small_run
    for name, page in _pages(out).items():
        text = " ".join(page.text)
        assert not re.search(r"\bperson\d{4}\b", text), f"{name}: a raw customer id"
        assert not re.search(r"\bc_[0-9a-f]{16}\b", text), f"{name}: a pseudonymized customer id"


def test_no_table_shows_a_group_under_the_minimum(small_run: tuple[int, Path]) -> None:
    _, out = small_run
    for name, page in _pages(out).items():
        for table in page.tables:
            for column in _customer_columns(table):
                for row in table[1:]:
                    cell = row[column] if column < len(row) else ""
                    number = re.sub(r"[,\s]", "", cell)
                    if number.isdigit():
                        assert int(number) == 0 or int(number) >= MIN_GROUP, f"{name}: a group of {cell} customers"


def test_quantile_tables_need_groups_of_the_minimum(small_run: tuple[int, Path]) -> None:
    customers, out = small_run
    headers = {t("column.clv_decile"), t("predict.column.decile"), t("predict.column.risk_decile")}
    shown = {name for name, page in _pages(out).items() for table in page.tables for row in table[:2] for c in row
             if c in headers}  # fmt: skip
    assert customers >= 10 * MIN_GROUP or not shown, f"decile tables of {customers} customers in {sorted(shown)}"


def test_a_base_under_the_minimum_shows_no_figure(small_run: tuple[int, Path]) -> None:
    customers, out = small_run
    if customers >= MIN_GROUP:
        pytest.skip("the base is large enough to be shown")
    note = t("display.small_base", customers=customers, min_group_size=MIN_GROUP)
    for name, page in _pages(out).items():
        text = " ".join(page.text)
        assert page.images == 0, f"{name}: a chart of {customers} customer(s)"
        numbers = [c for table in page.tables for row in table[1:] for c in row if re.search(r"\d", c)]
        if name not in ("01_ingest.html", "index.html"):  # the data accounting counts rows, not people
            assert not numbers, f"{name}: figures {numbers[:5]}"
            assert note in text, f"{name}: does not say why nothing is shown"
    assert note in " ".join(_pages(out)["index.html"].text)


def test_a_published_total_never_gives_a_hidden_cell_away() -> None:
    """The issue's case: a cell of 5 beside one of 18 in a segment whose total (23) is published."""
    counts = pd.DataFrame([[5, 18, 40], [30, 30, 40]], index=[5, 4], columns=[1, 2, 3])
    segments = [[(5, 1), (5, 2)], [(5, 3), (4, 3)], [(4, 1), (4, 2)]]
    rows = [[(r, c) for c in counts.columns] for r in counts.index]
    columns = [[(r, c) for r in counts.index] for c in counts.columns]
    hidden = complementary_suppression(counts, counts < MIN_GROUP, segments + rows + columns)
    assert hidden.loc[5, 2] and hidden.loc[5, 1]  # 18 hidden with the 5 (segment total)
    for cells in segments + rows + columns:
        assert sum(hidden.loc[c] for c in cells) != 1  # no total leaves a single hidden cell


def test_persona_artifacts_describe_no_small_group(small_run: tuple[int, Path]) -> None:
    """personas.json: no persona under the minimum (none at all for a base under it), and no
    count on a card between 1 and the minimum - 1, nor one that leaves such a remainder."""
    customers, out = small_run
    data = json.loads((out / "data" / "personas.json").read_text(encoding="utf-8"))
    if customers < MIN_GROUP:
        assert data["cards"] == []
    for card in data["cards"]:
        members = card["customers"]
        counts = [card["risk"]["high_risk_customers"], card["coverage"]["attributes_known"],
                  *(a["customers"] for a in card["actions"]), *(tr["known"] for tr in card["traits"])]  # fmt: skip
        assert members >= MIN_GROUP
        for count in (c for c in counts if c is not None):
            assert not 0 < count < MIN_GROUP and not 0 < members - count < MIN_GROUP, (card["key"], count)
