"""Persona cards: size, behaviour, value and risk of each persona, its distinctive traits, name,
portrait, story and actions; the Markdown mirror of the cards."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..display.numbers import money
from ..text import available_languages, in_language, t, words
from .basis import OTHER, TIER_SEPARATOR
from .playbook import action_text, choose_actions, risk_band, value_band
from .story import display_name, persona_name, portrait, story, trait_sentence
from .traits import Trait, distinctive_traits

__all__ = ["at_high_risk", "customer_profile", "p_alive_note", "persona_cards", "personas_markdown"]


def customer_profile(
    segments: pd.DataFrame,
    features: pd.DataFrame,
    predictions: pd.DataFrame,
    clv: pd.DataFrame,
) -> pd.DataFrame:
    """One row per customer: segments, behaviour, churn probability, P(alive) and CLV. P(alive) is
    blank when the CLV table has none (stage 05 withholds it when the model could not identify
    dropout: it is then no risk signal)."""
    columns = [c for c in ("customer_id", "rfm_segment", "rfm8", "cluster") if c in segments.columns]
    base = segments[columns].merge(
        features[["customer_id", "recency_days", "frequency", "monetary", "avg_order_value"]], on="customer_id"
    )
    base = base.merge(predictions[["customer_id", "churn_probability", "churn_risk"]], on="customer_id", how="left")
    clv = clv.assign(repeat_buyer=clv["frequency"] > 0).reindex(
        columns=["customer_id", "repeat_buyer", "p_alive", "clv"]
    )
    return base.merge(clv, on="customer_id", how="left")


def p_alive_note(clv_model: dict[str, Any]) -> str:
    """Why P(alive) is not shown, from the CLV model card ("" when it is usable)."""
    if clv_model.get("skipped"):
        return t("persona.clv_not_shown", reason=clv_model["skipped"])
    identification = clv_model.get("identification", {})
    if identification.get("p_alive_usable", True):
        return ""
    return t("persona.p_alive_note", model=clv_model["purchase_model"])


def _mean_or_none(values: pd.Series) -> float | None:
    """The mean, or None (JSON null) for an empty or blank selection."""
    values = values.dropna()
    return float(values.mean()) if len(values) else None


def _share_or_none(part: float, whole: float) -> float | None:
    """``part / whole``, or None (JSON null) when the whole is zero or missing."""
    return float(part / whole) if pd.notna(whole) and whole != 0 else None


def _count_or_none(count: int, members: int, min_group_size: int) -> int | None:
    """A count of a persona's ``members``, or None when it or the members it leaves out number
    1 to ``min_group_size - 1`` (either would be counted by subtraction)."""
    return None if any(0 < c < min_group_size for c in (count, members - count)) else int(count)


def at_high_risk(members: pd.DataFrame) -> pd.Series:
    """Whether each customer is in stage 04's high churn-risk band (False where churn is not scored)."""
    return (members["churn_risk"] == "high").fillna(False).astype(bool)


def _engagement(members: pd.Index, table: pd.DataFrame, min_group_size: int) -> dict[str, Any]:
    """Campaign response and coupon use of the members against all customers, where the data have
    them for at least ``min_group_size`` members."""
    out = {}
    for column in ("campaign_response_rate", "coupon_order_share"):
        if column in table.columns and table[column].notna().any():
            mine = table.loc[table.index.intersection(members), column]
            known = int(mine.notna().sum())
            if _count_or_none(known, len(members), min_group_size) is not None and known:
                out[column] = {"persona": _mean_or_none(mine), "base": _mean_or_none(table[column]), "known": known}
    return out


def _value_index(members: pd.DataFrame, everyone: pd.DataFrame) -> tuple[float | None, str]:
    """Value per customer against the base's: mean CLV where there is one, else revenue to date."""
    column = "clv" if everyone["clv"].notna().any() else "monetary"
    base = everyone[column].mean()
    return (_share_or_none(members[column].mean(), base), column)


def _actions(
    members: pd.DataFrame, card: dict[str, Any], book: dict[str, Any], min_group_size: int
) -> list[dict[str, Any]]:
    """The playbook's actions for the card, each with the customers it concerns and their value."""
    audiences = {"all": members, "high_risk": members[at_high_risk(members)]}
    traits = {f"{tr['key']}:{tr['direction']}" for tr in card["traits"]}
    chosen = choose_actions(
        book, card["value"]["band"], card["risk"]["band"], traits, {k: len(v) for k, v in audiences.items()},
        min_group_size,
    )  # fmt: skip
    out = []
    for action in chosen:
        who = audiences[action.get("audience", "all")]
        at_stake = who["clv"].sum() if who["clv"].notna().any() else None
        out.append({
            "id": action["id"], "intent": action["intent"], "audience": action.get("audience", "all"),
            "text": dict(action["text"]), "customers": int(len(who)),
            "clv_at_stake": None if at_stake is None else float(at_stake),
            "revenue_to_date": float(who["monetary"].sum()),
        })  # fmt: skip
    return out


def _card(
    key: str,
    members: pd.DataFrame,
    everyone: pd.DataFrame,
    matrix: pd.DataFrame,
    traits: dict[str, Trait],
    context: dict[str, Any],
) -> dict[str, Any]:
    """The card of one persona (its name, portrait, story and actions are added by :func:`persona_cards`)."""
    min_group_size = context["min_group_size"]
    ids = pd.Index(members["customer_id"])
    inside = matrix.index.isin(ids)
    index, measure = _value_index(members, everyone)
    churn = _mean_or_none(members["churn_probability"])
    behaviour = context["behaviour_summary"].loc[context["behaviour_summary"].index.intersection(ids)]
    attributes = context["attributes_known"]
    known = int(attributes.reindex(ids).fillna(False).sum()) if attributes is not None else None
    card = {
        "key": key,
        "basis": context["basis"],
        "customers": int(len(members)),
        "customer_share": len(members) / len(everyone),
        "revenue_share": float(members["monetary"].sum() / everyone["monetary"].sum()),
        "behaviour": {
            "mean_orders": float(members["frequency"].mean()),
            "median_recency_days": float(members["recency_days"].median()),
            "mean_order_value": float(members["avg_order_value"].mean()),
            "avg_lines_per_order": _mean_or_none(behaviour["avg_lines_per_order"]),
            "weekend_share": _mean_or_none(behaviour["weekend_share"]),
        },
        "value": {
            "mean_clv": _mean_or_none(members["clv"]),
            "clv_share": _share_or_none(members["clv"].sum(), everyone["clv"].sum()),
            "index": index,
            "measure": measure,
            "band": value_band(index, context["playbook"]["value_bands"]),
        },
        "risk": {
            "mean_churn_probability": churn,
            "band": risk_band(churn),
            "high_risk_customers": _count_or_none(int(at_high_risk(members).sum()), len(members), min_group_size)
            if churn is not None
            else None,
            # BG/NBD cannot lose a customer before the first repeat purchase: P(alive) is 1 for
            # one-time buyers, so the mean is taken over repeat buyers only.
            "mean_p_alive_repeat_buyers": _mean_or_none(
                members.loc[members["repeat_buyer"].fillna(False).astype(bool), "p_alive"]
            ),
        },
        "engagement": _engagement(ids, context["table"], min_group_size),
        "traits": distinctive_traits(
            matrix,
            traits,
            pd.Series(inside, index=matrix.index),
            min_group_size,
            context["shown_traits"],
            {"category": context["shown_categories"]},
        ),  # fmt: skip
        "coverage": {
            "attributes_known": None if known is None else _count_or_none(known, len(members), min_group_size)
        },
        "merged": context["merged"].get(key, []),
        "categories_known": any(tr.kind == "category" for tr in traits.values()),
    }
    card["actions"] = _actions(members, card, context["playbook"], min_group_size)
    return card


def persona_cards(
    profile: pd.DataFrame,
    personas: pd.Series,
    matrix: pd.DataFrame,
    traits: dict[str, Trait],
    context: dict[str, Any],
    currency: str,
) -> list[dict[str, Any]]:
    """One card per persona, largest revenue share first.

    Parameters
    ----------
    profile : DataFrame
        :func:`customer_profile`.
    personas : Series
        The persona of every customer (indexed by ``customer_id``); no persona is under
        ``min_group_size`` (:func:`cp_toolkit.persona.basis.assign_personas` merged them).
    matrix, traits
        :func:`cp_toolkit.persona.traits.trait_matrix`.
    context : dict
        ``basis``, ``min_group_size``, ``playbook``, ``shown_traits`` (at most, of which at most
        ``shown_categories`` categories), ``merged``, ``table`` (the
        stage 03 features), ``behaviour_summary`` (``avg_lines_per_order``, ``weekend_share`` per
        customer) and ``attributes_known`` (bool per customer, None without attributes).
    currency : str
        Unit of money in the stories.
    """
    profile = profile.assign(persona=profile["customer_id"].map(personas))
    cards = [
        _card(str(key), members, profile, matrix, traits, context)
        for key, members in profile.groupby("persona", observed=True)
    ]
    cards.sort(key=lambda c: -c["revenue_share"])
    clusters = _cluster_traits(profile, matrix, traits, context) if context["basis"] == "value_x_behaviour" else {}
    for language in available_languages():
        with in_language(language):
            _name(cards, language, clusters)
    with in_language("en"):  # the artifact's words are English; reports rewrite them in their language
        for card in cards:
            card["name"] = card["names"]["en"]
            card["portrait"] = portrait(card)
            card["story"] = story(card, currency)
    return cards


def _cluster_traits(
    profile: pd.DataFrame, matrix: pd.DataFrame, traits: dict[str, Trait], context: dict[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    """The distinctive traits of each behaviour cluster of a value x behaviour basis (all its
    cells together), so that a cluster has one name in every tier."""
    cluster = profile.set_index("customer_id")["persona"].str.split(TIER_SEPARATOR).str[-1]
    return {
        str(c): distinctive_traits(
            matrix, traits, cluster.reindex(matrix.index) == c, context["min_group_size"], context["shown_traits"]
        )  # fmt: skip
        for c in cluster.dropna().unique()
        if c != OTHER
    }


def _name(cards: list[dict[str, Any]], language: str, clusters: dict[str, list[dict[str, Any]]]) -> None:
    """Name every card in ``language`` (``names[language]``): a generated name from its traits
    (from its cluster's, after its value tier, on the value x behaviour basis), distinct from the
    names before it; the segment's name on the R x F and RFM-8 bases."""
    taken: set[str] = set()
    named = {c: persona_name(tr) for c, tr in clusters.items()}
    for card in cards:
        if card["basis"] in ("rfm", "rfm8") or card["key"] == OTHER:
            name = display_name(card)
        elif TIER_SEPARATOR in card["key"] and card["key"].split(TIER_SEPARATOR)[1] in named:
            tier, cluster = card["key"].split(TIER_SEPARATOR)
            name = t("persona.name.tiered", tier=words("persona.name.tier", tier), name=named[cluster])
        else:
            name = persona_name(card["traits"], taken)
        taken.add(name)
        card.setdefault("names", {})[language] = name


def personas_markdown(cards: list[dict[str, Any]], currency: str, note: str = "") -> str:
    """The persona cards as a Markdown document for marketing, in the report's language; ``note``
    (e.g. why P(alive) is not shown) opens it."""
    lines = [t("persona.card.title"), "", *([f"_{note}_", ""] if note else [])]
    for card in cards:
        lines += [f"## {display_name(card)}", "", f"**{portrait(card)}**", "", story(card, currency), ""]
        if card["traits"]:
            lines += [t("persona.card.traits"), *(f"- {trait_sentence(tr)}" for tr in card["traits"]), ""]
        lines += [t("persona.card.actions"), *(f"- {action_sentence(a, currency)}" for a in card["actions"]), ""]
    return "\n".join(lines)


def action_sentence(action: dict[str, Any], currency: str) -> str:
    """An action in the report's language with the customers it concerns and the value at stake."""
    text = action_text(action)
    if action["clv_at_stake"] is not None:
        return t("persona.card.action_clv", action=text, customers=action["customers"],
                 clv=money(action["clv_at_stake"], currency))  # fmt: skip
    return t("persona.card.action_revenue", action=text, customers=action["customers"],
             revenue=money(action["revenue_to_date"], currency))  # fmt: skip
