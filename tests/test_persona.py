"""Personas: planted behaviour recovered, distinctive traits only, no small group, the playbook's
choices and its checks, the deck's artifacts (schema, audience, Markdown)."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from cp_toolkit.errors import ParameterError
from cp_toolkit.persona import AUDIENCE_COLUMNS, assign_personas, choose_actions, distinctive_traits, load_playbook
from cp_toolkit.persona.basis import merge_small_cells
from cp_toolkit.persona.playbook import ALL_RISKS, INTENT_RISKS, VALUE_BANDS
from cp_toolkit.persona.traits import Trait

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "cp_toolkit" / "persona" / "personas.schema.json").read_text(encoding="utf-8"))


def _planted(sizes: tuple[int, ...], seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Customers of four shopping styles: fresh-food, drugstore quick trips, coupon stock-up and
    weekend meat buyers (department mix, basket, coupons, weekend share), with noise."""
    rng = np.random.default_rng(seed)
    centres = np.array([
        # produce, drug, meat, grocery, basket, coupons, weekend
        [0.35, 0.05, 0.10, 0.50, 10, 0.02, 0.25],
        [0.05, 0.45, 0.05, 0.45, 4, 0.02, 0.25],
        [0.10, 0.10, 0.10, 0.70, 22, 0.30, 0.25],
        [0.08, 0.05, 0.40, 0.47, 12, 0.03, 0.70],
    ])  # fmt: skip
    truth = np.repeat(np.arange(len(sizes)), sizes)
    values = centres[truth] * rng.normal(1, 0.12, (len(truth), centres.shape[1]))
    columns = ["mix:PRODUCE", "mix:DRUG GM", "mix:MEAT", "mix:GROCERY", "avg_lines_per_order",
               "coupon_order_share", "weekend_share"]  # fmt: skip
    index = pd.Index([f"c_{i:016x}" for i in range(len(truth))], name="customer_id")
    return pd.DataFrame(values.clip(0), columns=columns, index=index), truth


def test_planted_behaviour_groups_are_recovered() -> None:
    features, truth = _planted((150, 120, 90, 60))
    basis = assign_personas("behaviour", pd.DataFrame(index=features.index), features, pd.Series(dtype=str), 10, 42)
    assert basis.basis == "behaviour" and basis.checks["k"] == 4
    assert adjusted_rand_score(truth, basis.labels.reindex(features.index)) >= 0.9
    assert basis.labels.value_counts().index[0] == "P1"  # numbered largest first


def test_no_persona_is_smaller_than_the_threshold() -> None:
    """Three far-out customers would form clusters of 1 and 2: they are merged, never shown alone."""
    features, _ = _planted((100, 100, 100))
    features.iloc[:3] = [[0.0, 0.0, 0.0, 0.0, 400, 1.0, 1.0]] * 3
    basis = assign_personas("behaviour", pd.DataFrame(index=features.index), features, pd.Series(dtype=str), 25, 42)
    assert basis.labels.value_counts().min() >= 25


def test_small_cells_join_their_tier_or_the_pool() -> None:
    """'high · P1' (3) joins the largest high cell; the mid tier (4 + 5) is too small as a whole:
    its cells are pooled as 'other', with the smallest cell shown (12) so the pool is not 9."""
    cells = pd.Series(["high · P1"] * 3 + ["high · P2"] * 30 + ["mid · P1"] * 4 + ["mid · P2"] * 5 + ["low · P1"] * 12
                      + ["low · P2"] * 40)  # fmt: skip
    tiers = cells.str.split(" · ").str[0]
    merged, record = merge_small_cells(cells, tiers, 10)
    assert merged.value_counts().to_dict() == {"low · P2": 40, "high · P2": 33, "other": 21}
    assert record == {"high · P2": ["high · P1"], "other": ["low · P1", "mid · P1", "mid · P2"]}


def test_a_trait_at_the_base_rate_is_never_distinctive() -> None:
    """400 customers, a persona of 100: 'planted' is twice as common in it, 'base_rate' exactly as
    common as among all customers, 'rare' twice as common but held by only 6 members."""
    members = pd.Series([True] * 100 + [False] * 300)
    planted = np.r_[np.ones(60), np.zeros(40), np.ones(90), np.zeros(210)]
    base_rate = np.r_[np.ones(30), np.zeros(70), np.ones(90), np.zeros(210)]
    rare = np.r_[np.ones(6), np.zeros(94), np.ones(9), np.zeros(291)]
    matrix = pd.DataFrame({"tag:a=planted": planted, "tag:a=base": base_rate, "tag:a=rare": rare})
    traits = {k: Trait("tag", "a", k.split("=")[1], "share") for k in matrix}
    shown = distinctive_traits(matrix, traits, members, min_group_size=10)
    assert [t["key"] for t in shown] == ["tag:a=planted"]
    assert shown[0]["index"] == pytest.approx(100 * 0.6 / 0.375) and shown[0]["direction"] == "high"


def test_a_trait_whose_other_members_are_few_is_left_out() -> None:
    """95 of 100 members have it: showing 95% would tell that 5 members lack it."""
    members = pd.Series([True] * 100 + [False] * 300)
    matrix = pd.DataFrame({"tag:a=x": np.r_[np.ones(95), np.zeros(5), np.ones(60), np.zeros(240)]})
    assert distinctive_traits(matrix, {"tag:a=x": Trait("tag", "a", "x", "share")}, members, 10) == []


@pytest.fixture(scope="module")
def book() -> dict:
    return load_playbook()


@pytest.mark.parametrize(
    ("value", "risk", "traits", "high_risk", "expected"),
    [
        ("high", "low", set(), 0, ["reward_best", "grow_mid", "keep_engaged"]),
        ("high", "high", set(), 50, ["protect_valuable", "win_back_high_risk_members", "keep_engaged"]),
        ("low", "high", set(), 5, ["low_cost_reactivation", "keep_engaged"]),
        ("low", "low", {"behaviour:coupon_order_share:high"}, 0, ["deal_led", "grow_low", "keep_engaged"]),
        ("mid", "unknown", {"tag:lifecycle=new:high"}, 0, ["onboard_new", "grow_mid", "keep_engaged"]),
    ],
)
def test_the_playbook_chooses_on_bands_and_traits(book, value, risk, traits, high_risk, expected) -> None:
    chosen = choose_actions(book, value, risk, traits, {"all": 200, "high_risk": high_risk}, 10)
    assert [a["id"] for a in chosen] == expected


def test_actions_never_contradict_the_risk(book) -> None:
    """Every band and every combination of the playbook's traits: 2 to 4 actions, and none whose
    intent the persona's risk rules out (win-back only at medium or high risk or for the members
    at high risk, rewards only at low risk, growth never at high risk)."""
    keys = sorted({k for a in book["actions"] for k in (a.get("when") or {}).get("traits", [])})
    for value, risk in itertools.product(VALUE_BANDS, sorted(ALL_RISKS)):
        for n in (0, 1, 2):
            for traits in itertools.combinations(keys, n):
                chosen = choose_actions(book, value, risk, set(traits), {"all": 100, "high_risk": 20}, 10)
                assert 2 <= len(chosen) <= 4, (value, risk, traits)
                for action in chosen:
                    assert action["audience"] == "high_risk" or risk in INTENT_RISKS[action["intent"]]


def test_a_contradicting_playbook_is_refused(tmp_path) -> None:
    path = tmp_path / "book.yaml"
    path.write_text(
        "version: 1\nvalue_bands: {high: 1.25, low: 0.8}\nactions:\n"
        "  - {id: strongest_offer, intent: win_back, audience: all, when: {value: [high]}, text: {en: a, zh: b}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ParameterError, match=r"book\.yaml action 'strongest_offer'.*win_back.*restrict when\.risk"):
        load_playbook(path)


def test_cards_follow_the_schema_and_show_no_small_count(cj_run) -> None:
    data = cj_run.load("personas")
    jsonschema.validate(data, SCHEMA)
    cards, floor = data["cards"], data["min_group_size"]
    assert data["basis"] == "behaviour" and 3 <= len(cards) <= 8
    assert sum(c["customers"] for c in cards) == 2_469
    assert abs(sum(c["revenue_share"] for c in cards) - 1) < 1e-9
    assert len({c["name"] for c in cards}) == len(cards) and len({c["names"]["zh"] for c in cards}) == len(cards)
    for card in cards:
        counts = [card["customers"], card["risk"]["high_risk_customers"], card["coverage"]["attributes_known"],
                  *(a["customers"] for a in card["actions"]), *(t["known"] for t in card["traits"]),
                  *(e["known"] for e in card["engagement"].values())]  # fmt: skip
        assert all(c is None or c >= floor for c in counts), card["key"]
        assert all(abs(t["index"] - 100) > 10 and t["p_value"] < 0.01 for t in card["traits"])
        assert not any(
            t["kind"] == "category" and t["feature"] in ("COUPON/MISC ITEMS", "FUEL") for t in card["traits"]
        )
        assert 2 <= len(card["actions"]) <= 4


def test_audience_is_documented_rounded_and_pseudonymous(cj_run) -> None:
    audience = cj_run.load("audience")
    expected = [c for c in AUDIENCE_COLUMNS if c in audience.columns]
    if "p_alive" in audience.columns:  # only where the CLV model identifies dropout, before the CLV
        expected.insert(expected.index("clv"), "p_alive")
    assert list(audience.columns) == expected
    assert {"persona", "value_tier", "tags", "churn_risk", "clv", "next_best_action"} <= set(audience.columns)
    assert len(audience) == 2_469 and audience["customer_id"].str.fullmatch(r"c_[0-9a-f]{16}").all()
    assert audience["next_best_action"].notna().all()
    assert (audience["clv"].dropna() == audience["clv"].dropna().round(2)).all()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert all(f"`{c}`" in readme for c in AUDIENCE_COLUMNS)


def test_markdown_mirrors_the_cards(cj_run) -> None:
    cards = cj_run.load("personas")["cards"]
    markdown = cj_run.load("personas_md")
    assert [m for m in re.findall(r"^## (.+)$", markdown, flags=re.M)] == [c["name"] for c in cards]
    for card in cards:
        assert card["portrait"] in markdown and card["story"] in markdown


def test_segment_bases_pool_their_small_segments_as_stage_03_hides_them(cj_run) -> None:
    from cp_toolkit.privacy import values_to_pool

    segments = cj_run.load("segments").set_index("customer_id")
    for basis, column in (("rfm", "rfm_segment"), ("rfm8", "rfm8")):
        counts = segments[column].value_counts()
        threshold = int(counts.median()) + 1  # half the segments are too small
        chosen = assign_personas(
            basis, segments, pd.DataFrame(index=segments.index), pd.Series(dtype=str), threshold, 42
        )
        sizes = chosen.labels.value_counts()
        assert sizes.min() >= threshold and sizes.sum() == len(segments)
        pooled = sorted(values_to_pool(counts, threshold))
        assert chosen.merged == {"other": pooled} and sizes["other"] == counts[pooled].sum()
        assert sizes.drop("other").to_dict() == counts.drop(pooled).to_dict()  # the shown ones as stage 03 shows them


def test_value_x_behaviour_crosses_the_tier_with_the_clusters() -> None:
    features, _ = _planted((150, 120, 90, 60))
    tier = pd.Series(np.where(np.arange(len(features)) % 3 == 0, "high", "low"), index=features.index)
    chosen = assign_personas("value_x_behaviour", pd.DataFrame(index=features.index), features, tier, 10, 42)
    assert chosen.labels.str.fullmatch(r"(high|low) · P\d").all()
    assert chosen.labels.value_counts().min() >= 10 and chosen.labels.nunique() == 8


def test_shown_values_never_count_the_rest_of_an_attribute() -> None:
    """Members 100: ages a (60), b (35) and c (5). Showing a and b would leave c's 5 members to
    subtraction, so the smaller shown value goes too."""
    members = pd.Series([True] * 100 + [False] * 300)
    age = np.r_[["a"] * 60, ["b"] * 35, ["c"] * 5, ["a"] * 30, ["b"] * 30, ["c"] * 240]
    matrix = pd.DataFrame({f"demographic:age={v}": (age == v).astype(float) for v in "abc"})
    traits = {k: Trait("demographic", "age", k[-1], "share") for k in matrix}
    shown = distinctive_traits(matrix, traits, members, 10)
    assert [t["key"] for t in shown] == ["demographic:age=a"]


def test_a_trait_held_by_few_other_customers_is_left_out() -> None:
    """60 of 100 members and 4 of 300 other customers have it: all customers' share would count the 4."""
    members = pd.Series([True] * 100 + [False] * 300)
    flag = np.r_[np.ones(60), np.zeros(40), np.ones(4), np.zeros(296)]
    matrix = pd.DataFrame({"tag:a=x": flag})
    assert distinctive_traits(matrix, {"tag:a=x": Trait("tag", "a", "x", "share")}, members, 10) == []


def test_a_measure_far_below_the_base_is_a_trait() -> None:
    """No member uses coupons: 'orders with a coupon, low' is the trait a full-price action needs."""
    rng = np.random.default_rng(1)
    members = pd.Series([True] * 100 + [False] * 300)
    share = np.r_[np.zeros(100), rng.uniform(0.05, 0.4, 300)]
    matrix = pd.DataFrame({"behaviour:coupon_order_share": share})
    traits = {"behaviour:coupon_order_share": Trait("behaviour", "coupon_order_share", None, "share")}
    shown = distinctive_traits(matrix, traits, members, 10)
    assert [(t["key"], t["direction"]) for t in shown] == [("behaviour:coupon_order_share", "low")]


def test_actions_of_one_group_are_exclusive(book) -> None:
    """Saving more on discounts but using fewer coupons: a deal offer, never also 'protect the margin'."""
    traits = {"behaviour:savings_rate:high", "behaviour:discount_line_share:low"}
    chosen = [a["id"] for a in choose_actions(book, "mid", "low", traits, {"all": 100, "high_risk": 0}, 10)]
    assert "deal_led" in chosen and "full_price" not in chosen


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (
            "{id: x, intent: reward, audience: high_risk, when: {}, text: {en: a}}",
            r"reward action.*members at high risk",
        ),
        (
            "{id: x, intent: engage, audience: all, when: {traits: [coupons]}, text: {en: a}}",
            r"when\.traits are written",
        ),
        (
            "{id: x, intent: engage, audience: all, when: {risk: []}, text: {en: a}}",
            r"when\.risk is not a non-empty list",
        ),
    ],
)
def test_a_malformed_playbook_is_refused(tmp_path, action: str, message: str) -> None:
    path = tmp_path / "book.yaml"
    fallback = "  - {id: all, intent: engage, audience: all, text: {en: b}}\n"
    path.write_text(f"value_bands: {{high: 1.25, low: 0.8}}\nactions:\n  - {action}\n{fallback}", encoding="utf-8")
    with pytest.raises(ParameterError, match=message):
        load_playbook(path)


def test_a_playbook_needs_a_fallback_and_may_be_english_only(tmp_path) -> None:
    path = tmp_path / "book.yaml"
    path.write_text("value_bands: {high: 1.25, low: 0.8}\nactions:\n"
                    "  - {id: a, intent: engage, audience: all, when: {value: [high]}, text: {en: a}}\n",
                    encoding="utf-8")  # fmt: skip
    with pytest.raises(ParameterError, match="no when"):
        load_playbook(path)
    path.write_text(path.read_text(encoding="utf-8") + "  - {id: b, intent: engage, audience: all, text: {en: b}}\n",
                    encoding="utf-8")  # fmt: skip
    assert [a["id"] for a in load_playbook(path)["actions"]] == ["a", "b"]


def test_members_at_high_risk_get_a_high_risk_action(cj_run) -> None:
    """Every customer at high risk gets an action that may be used at high risk (a win-back where
    the persona's bands allow one), never a reward or growth offer."""
    from cp_toolkit.persona.playbook import INTENT_RISKS

    audience = cj_run.load("audience")
    intents = {a["id"]: a["intent"] for a in load_playbook()["actions"]}
    high = audience[audience["churn_risk"] == "high"]
    assert len(high) and all("high" in INTENT_RISKS[intents[a]] for a in high["next_best_action"])
    assert (high["next_best_action"] == "win_back_high_risk_members").mean() > 0.9
