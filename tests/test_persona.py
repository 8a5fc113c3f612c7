"""Persona cards: sizes add up, small groups are suppressed, no raw ids."""

from __future__ import annotations

from cp_toolkit.persona import customer_profile, persona_cards


def test_cards_cover_every_customer(cj_run) -> None:
    cards = cj_run.load("personas")["cards"]
    assert sum(c["customers"] for c in cards if not c["suppressed"]) == 2_469
    assert abs(sum(c["revenue_share"] for c in cards) - 1) < 1e-9
    loyal = next(c for c in cards if c["name"] == "Loyal")
    assert loyal["top_categories"] and loyal["demographics"]["age"]["known"] >= 10
    audience = cj_run.load("audience")
    assert len(audience) == 2_469 and audience["customer_id"].str.fullmatch(r"c_[0-9a-f]{16}").all()


def test_small_groups_are_suppressed(cj_run) -> None:
    profile = customer_profile(*(cj_run.load(n) for n in ("segments", "features", "predictions", "clv")))
    sizes = profile["rfm_segment"].value_counts()
    threshold = int(sizes.median()) + 1
    cards = persona_cards(
        profile,
        cj_run.load("category_spend"),
        cj_run.load("customers"),
        min_group_size=threshold,
    )
    hidden = {c["name"] for c in cards if c["suppressed"]}
    assert hidden == set(sizes[sizes < threshold].index)
    assert all(c["customers"] is None for c in cards if c["suppressed"])
    for card in cards:
        for attr in card.get("demographics", {}).values():
            assert attr["known"] >= threshold
            rest = attr["known"] - round(attr["share"] * attr["known"])  # members with another value
            assert rest == 0 or rest >= threshold


def test_a_dominant_value_never_implies_a_small_remainder() -> None:
    """12 members known: 11 of one age and 1 of another. 'Age X, 11 of 12' would tell that one
    member differs, so the card leaves age out; a region all 12 share is shown."""
    import pandas as pd

    from cp_toolkit.persona import _dominant_attributes

    members = pd.DataFrame({"customer_id": [f"c{i}" for i in range(12)]})
    customers = members.assign(age=["35-44"] * 11 + ["65+"], region="N")
    shown = _dominant_attributes(members, customers, min_group_size=10)
    assert shown == {"region": {"value": "N", "share": 1.0, "known": 12}}
