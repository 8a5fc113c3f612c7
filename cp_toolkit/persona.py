"""Stage 06: persona cards per segment, built from segments, churn scores, CLV and attributes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from .config import DEFAULTS
from .features import category_revenue
from .privacy import values_to_pool
from .run.artifacts import RunFolder
from .run.pipeline import ensure, stage
from .text import labels, localize, t, words

__all__ = [
    "customer_profile",
    "findings",
    "named",
    "p_alive_note",
    "persona_cards",
    "personas_markdown",
    "PersonaResult",
    "recommended_action",
    "run_stage",
]

ALL = 10**9  # top_n that keeps every category


def recommended_action(name: str) -> str:
    """The recommended action for a segment (the usual RFM playbook, texts ``persona.action.<id>``):
    a standard segment's name gets its own, any other name ``persona.action.other``."""
    ids = {segment: sid for sid, segment in labels("segment.rfm").items()}
    return t(f"persona.action.{ids[name]}") if name in ids else t("persona.action.other")


def customer_profile(
    segments: pd.DataFrame,
    features: pd.DataFrame,
    predictions: pd.DataFrame,
    clv: pd.DataFrame,
) -> pd.DataFrame:
    """One row per customer: segment, behaviour, churn probability, P(alive) and CLV. P(alive) is
    blank when the CLV table has none (stage 05 withholds it when the model could not identify
    dropout: it is then no risk signal)."""
    base = segments[["customer_id", "rfm_segment"]].merge(
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


def _p_alive_clause(value: float | None) -> str:
    """', mean P(alive) of repeat buyers 97.5%', or nothing when it is not shown."""
    return "" if value is None else t("persona.card.p_alive", p_alive=value)


def _dominant_attributes(members: pd.DataFrame, customers: pd.DataFrame, min_group_size: int) -> dict[str, Any]:
    """Most common value of each attribute among members with attributes; hidden when the members
    known, those with the value, or those without it (unless none) are fewer than the threshold."""
    known = customers[customers["customer_id"].isin(members["customer_id"])]
    out: dict[str, Any] = {}
    for attr in (c for c in customers.columns if c != "customer_id"):
        values = known[attr].dropna().astype("string")
        if len(values) < min_group_size:
            continue
        top = values.value_counts()
        rest = len(values) - top.iloc[0]  # the share and the count known give this number away
        if top.iloc[0] >= min_group_size and not 0 < rest < min_group_size:
            out[attr] = {
                "value": str(top.index[0]),
                "share": float(top.iloc[0] / len(values)),
                "known": int(len(values)),
            }
    return out


def _distinctive_categories(
    spend: pd.DataFrame, base: pd.DataFrame, shown: int, min_share: float = 0.01
) -> pd.DataFrame:
    """The segment's categories with the highest index against the whole base.

    Among categories with at least ``min_share`` of the segment's revenue, the ``shown`` ones
    whose share most exceeds their share in the base; ``index`` = 100 x share / base share.
    """
    cats = category_revenue(spend, top_n=ALL)
    cats = cats.drop(index=[c for c in ("other", "unknown") if c in cats.index])
    cats = cats[cats["revenue_share"] >= min_share]
    cats = cats.assign(index=100 * cats["revenue_share"] / base["revenue_share"].reindex(cats.index))
    return cats.sort_values("index", ascending=False).head(shown)[["revenue_share", "index"]]


def _card(
    name: str,
    members: pd.DataFrame,
    everyone: pd.DataFrame,
    extras: dict[str, pd.DataFrame],
    min_group_size: int,
    shown_categories: int,
) -> dict[str, Any]:
    """The persona card of one segment."""
    spend = extras["spend"]
    cats = _distinctive_categories(
        spend[spend["customer_id"].isin(members["customer_id"])],
        extras["base_categories"],
        shown_categories,
    )
    return {
        "name": name,
        "suppressed": False,
        "customers": int(len(members)),
        "customer_share": len(members) / len(everyone),
        "revenue_share": float(members["monetary"].sum() / everyone["monetary"].sum()),
        "behaviour": {
            "mean_orders": float(members["frequency"].mean()),
            "median_recency_days": float(members["recency_days"].median()),
            "mean_order_value": float(members["avg_order_value"].mean()),
        },
        "value": {
            "mean_clv": _mean_or_none(members["clv"]),
            "clv_share": _share_or_none(members["clv"].sum(), everyone["clv"].sum()),
        },
        "risk": {
            "mean_churn_probability": _mean_or_none(members["churn_probability"]),
            "high_risk_share": float((members["churn_risk"] == "high").mean())
            if members["churn_probability"].notna().any()
            else None,
            # BG/NBD cannot lose a customer before the first repeat purchase: P(alive) is 1 for
            # one-time buyers, so the mean is taken over repeat buyers only.
            "mean_p_alive_repeat_buyers": _mean_or_none(
                members.loc[members["repeat_buyer"].fillna(False).astype(bool), "p_alive"]
            ),
        },
        "top_categories": [
            {"category": str(c), "revenue_share": float(share), "index": float(index)}
            for c, share, index in cats[["revenue_share", "index"]].itertuples()
        ],
        "demographics": _dominant_attributes(members, extras["customers"], min_group_size),
        "recommended_action": recommended_action(name),
    }


def persona_cards(
    profile: pd.DataFrame,
    spend: pd.DataFrame,
    customers: pd.DataFrame,
    min_group_size: int,
    persona_categories: int = DEFAULTS["persona_categories"],
) -> list[dict[str, Any]]:
    """Persona cards, largest revenue share first; segments under ``min_group_size`` are suppressed,
    with the next smallest while the suppressed ones hold fewer (:func:`cp_toolkit.privacy.values_to_pool`).

    Each card lists up to ``persona_categories`` favourite categories: those with the highest
    index (share of the segment's spend against the share of all customers' spend), from
    ``spend``, the :func:`cp_toolkit.features.category_spend` table stage 03 writes.
    """
    extras = {"spend": spend, "customers": customers, "base_categories": category_revenue(spend, top_n=ALL)}
    cards = []
    hidden = values_to_pool(profile["rfm_segment"].value_counts(), min_group_size)
    for name, members in profile.groupby("rfm_segment", observed=True):
        if name in hidden:
            cards.append({"name": str(name), "suppressed": True, "customers": None})
        else:
            cards.append(_card(str(name), members, profile, extras, min_group_size, persona_categories))
    return sorted(cards, key=lambda c: -c.get("revenue_share", -1))


def _attribute(column: str) -> str:
    """A customer attribute column in words (the texts ``eda.attribute.*``, else with spaces)."""
    return words("eda.attribute", column)


def personas_markdown(cards: list[dict[str, Any]], min_group_size: int, note: str = "") -> str:
    """The persona cards as a Markdown document for marketing; ``note`` (e.g. why P(alive) is not
    shown) opens it."""
    lines = [t("persona.card.title"), "", *([f"_{note}_", ""] if note else [])]
    for c in cards:
        if c["suppressed"]:
            lines += [
                f"## {localize('segment.rfm', c['name'])}",
                t("persona.card.suppressed", min_group_size=min_group_size),
                "",
            ]
            continue
        separator = t("persona.card.separator")
        cats = separator.join(
            t("persona.card.category", category=x["category"], revenue_share=x["revenue_share"], index=x["index"])
            for x in c["top_categories"]
        )
        demo = separator.join(
            t("persona.card.demographic", attribute=_attribute(k), value=v["value"], share=v["share"], known=v["known"])
            for k, v in c["demographics"].items()
        )
        value, behaviour, risk = c["value"], c["behaviour"], c["risk"]
        lines += [
            f"## {localize('segment.rfm', c['name'])}",
            t(
                "persona.card.size",
                customers=c["customers"],
                customer_share=c["customer_share"],
                revenue_share=c["revenue_share"],
            ),
            t("persona.card.value", mean_clv=value["mean_clv"], clv_share=value["clv_share"]),
            t(
                "persona.card.behaviour",
                mean_orders=behaviour["mean_orders"],
                median_recency_days=behaviour["median_recency_days"],
                mean_order_value=behaviour["mean_order_value"],
            ),
            t(
                "persona.card.risk",
                mean_churn_probability=risk["mean_churn_probability"],
                high_risk_share=risk["high_risk_share"],
            )
            + _p_alive_clause(risk["mean_p_alive_repeat_buyers"]),
            t("persona.card.categories", categories=cats or t("persona.card.none")),
            t("persona.card.demographics", demographics=demo or t("persona.card.none")),
            t("persona.card.action", action=c["recommended_action"]),
            "",
        ]
    return "\n".join(lines)


@dataclass
class PersonaResult:
    """Persona cards and the per-customer audience export."""

    cards: list[dict[str, Any]]
    audience: pd.DataFrame
    markdown: str


@stage("06_persona")
def run_stage(
    run: RunFolder,
    min_group_size: int = DEFAULTS["min_group_size"],
    persona_categories: int = DEFAULTS["persona_categories"],
) -> PersonaResult:
    """Stage 06: write ``personas.json``, ``personas.md`` and ``audience.csv``."""
    clv_model = ensure(run, "clv_model")
    note = p_alive_note(clv_model)
    predictions = ensure(run, "predictions")
    profile = customer_profile(ensure(run, "segments"), ensure(run, "features"), predictions, ensure(run, "clv"))
    missing = [note] if clv_model.get("skipped") else []
    if predictions.empty or predictions["churn_probability"].isna().all():
        missing.append(t("persona.churn_not_shown"))
    cards = persona_cards(
        profile,
        ensure(run, "category_spend"),
        ensure(run, "customers"),
        min_group_size,
        persona_categories,
    )
    md = personas_markdown(cards, min_group_size, " ".join(missing) if missing else note)
    columns = ["customer_id", "rfm_segment", "churn_probability", "churn_risk", "p_alive", "clv"]
    audience = profile[[c for c in columns if c != "p_alive" or not note]]  # no unidentified P(alive)
    run.save("personas", {"min_group_size": min_group_size, "p_alive_note": note, "cards": cards})
    run.save("personas_md", md)
    run.save("audience", audience.rename(columns={"rfm_segment": "persona"}))
    shown = [c for c in cards if not c["suppressed"]]
    run.record_stage(
        "06_persona",
        t(
            "persona.headline",
            shown=len(shown),
            suppressed=len(cards) - len(shown),
            top=localize("segment.rfm", shown[0]["name"]) if shown else t("persona.headline_none"),
        ),
        **({"notes": missing} if missing else {}),
    )
    return PersonaResult(cards, audience, md)


def named(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cards with their segment names in the report's language (the artifact keeps English)."""
    return [{**c, "name": localize("segment.rfm", c["name"])} for c in cards]


def findings(result: PersonaResult) -> list[str]:
    """The sentences the 06 report opens with: how many personas, which one brings most revenue,
    which one holds the most value at risk."""
    shown = [c for c in result.cards if not c["suppressed"]]
    if not shown:
        return [t("persona.finding.none", cards=len(result.cards))]
    top = max(shown, key=lambda c: c["revenue_share"])
    sentences = [
        t("persona.finding.count", cards=len(shown), suppressed=len(result.cards) - len(shown)),
        t(
            "persona.finding.top",
            name=localize("segment.rfm", top["name"]),
            customers=top["customers"],
            customer_share=top["customer_share"],
            revenue_share=top["revenue_share"],
        ),  # fmt: skip
    ]
    risky = [c for c in shown if (c.get("risk") or {}).get("mean_churn_probability") is not None]
    if risky:
        worst = max(risky, key=lambda c: c["risk"]["mean_churn_probability"] * c["revenue_share"])
        risk = worst["risk"]["mean_churn_probability"]
        name = localize("segment.rfm", worst["name"])
        sentences.append(
            t("persona.finding.risk", name=name, customers=worst["customers"], risk=risk,
              revenue_share=worst["revenue_share"])
        )  # fmt: skip
    return sentences
