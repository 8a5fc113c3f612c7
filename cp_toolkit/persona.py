"""Stage 06: persona cards per segment, built from segments, churn scores, CLV and attributes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from .features import category_revenue
from .privacy import values_to_pool
from .run.artifacts import RunFolder
from .run.pipeline import ensure, stage

__all__ = [
    "ACTIONS",
    "customer_profile",
    "p_alive_note",
    "persona_cards",
    "personas_markdown",
    "PersonaResult",
    "run_stage",
]

ALL = 10**9  # top_n that keeps every category

#: Recommended actions for each named RFM segment (the usual RFM playbook).
ACTIONS: dict[str, str] = {
    "Champions": "Reward and ask for reviews or referrals; early access to new products; no discounts needed.",
    "Loyal": "Upsell higher-value ranges; loyalty programme tiers; personalised recommendations.",
    "Potential loyalists": "Membership or loyalty offer; recommend complementary categories.",
    "New": "Onboarding journey; a reason for the second purchase soon.",
    "Promising": "Build awareness of the range; limited-time offer on a favourite category.",
    "Need attention": "Personalised reactivation offer before they slip; ask for feedback.",
    "About to sleep": "Reminder with popular products; modest time-limited discount.",
    "At risk": "Win-back campaign with personalised offers; service check on recent experience.",
    "Can't lose them": "Direct outreach; strongest win-back offer; find out what changed.",
    "Hibernating": "Low-cost reactivation only; otherwise suppress from paid channels.",
}


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
        return f"CLV and P(alive) are not shown: stage 05 could not compute them ({clv_model['skipped']})."
    identification = clv_model.get("identification", {})
    if identification.get("p_alive_usable", True):
        return ""
    return (
        f"P(alive) is not shown: the {clv_model['purchase_model']} model could not identify dropout from these "
        "data, so P(alive) says nothing reliable about risk; use the churn probability instead."
    )


def _mean_or_none(values: pd.Series) -> float | None:
    """The mean, or None (JSON null) for an empty or blank selection."""
    values = values.dropna()
    return float(values.mean()) if len(values) else None


def _share_or_none(part: float, whole: float) -> float | None:
    """``part / whole``, or None (JSON null) when the whole is zero or missing."""
    return float(part / whole) if pd.notna(whole) and whole != 0 else None


def _figure(value: float | None, pattern: str) -> str:
    """A figure of a persona card as text; ``n/a`` when it could not be computed."""
    return "n/a" if value is None else pattern.format(value)


def _p_alive_clause(value: float | None) -> str:
    """', mean P(alive) of repeat buyers 97.5%', or nothing when it is not shown."""
    return "" if value is None else f", mean P(alive) of repeat buyers {value:.1%}"


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
        "recommended_action": ACTIONS.get(name, "Review this segment's profile before targeting it."),
    }


def persona_cards(
    profile: pd.DataFrame,
    spend: pd.DataFrame,
    customers: pd.DataFrame,
    min_group_size: int = 10,
    persona_categories: int = 5,
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


def personas_markdown(cards: list[dict[str, Any]], min_group_size: int, note: str = "") -> str:
    """The persona cards as a Markdown document for marketing; ``note`` (e.g. why P(alive) is not
    shown) opens it."""
    lines = ["# Personas", "", *([f"_{note}_", ""] if note else [])]
    for c in cards:
        if c["suppressed"]:
            lines += [f"## {c['name']}", f"_Fewer than {min_group_size} customers: suppressed._", ""]
            continue
        cats = (
            ", ".join(
                f"{t['category']} ({t['revenue_share']:.1%} of spend, index {t['index']:.0f})"
                for t in c["top_categories"]
            )
            or "n/a"
        )
        demo = (
            ", ".join(f"{k}: {v['value']} ({v['share']:.0%} of {v['known']})" for k, v in c["demographics"].items())
            or "n/a"
        )
        lines += [
            f"## {c['name']}",
            f"- Size: {c['customers']:,} customers ({c['customer_share']:.1%}); revenue share {c['revenue_share']:.1%}",
            f"- Value: mean CLV {_figure(c['value']['mean_clv'], '{:,.2f}')} "
            f"({_figure(c['value']['clv_share'], '{:.1%}')} of total CLV)",
            f"- Behaviour: {c['behaviour']['mean_orders']:.1f} orders, median recency "
            f"{c['behaviour']['median_recency_days']:.0f} days, "
            f"mean order value {c['behaviour']['mean_order_value']:,.2f}",
            f"- Risk: mean churn probability {_figure(c['risk']['mean_churn_probability'], '{:.1%}')}, "
            f"high risk {_figure(c['risk']['high_risk_share'], '{:.1%}')}"
            + _p_alive_clause(c["risk"]["mean_p_alive_repeat_buyers"]),
            f"- Favourite categories (index vs all customers): {cats}",
            f"- Dominant demographics: {demo}",
            f"- Recommended action: {c['recommended_action']}",
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
def run_stage(run: RunFolder, min_group_size: int = 10, persona_categories: int = 5) -> PersonaResult:
    """Stage 06: write ``personas.json``, ``personas.md`` and ``audience.csv``."""
    clv_model = ensure(run, "clv_model")
    note = p_alive_note(clv_model)
    predictions = ensure(run, "predictions")
    profile = customer_profile(ensure(run, "segments"), ensure(run, "features"), predictions, ensure(run, "clv"))
    missing = [note] if clv_model.get("skipped") else []
    if predictions.empty:
        missing.append("Churn risk is not shown: stage 04 could not evaluate churn on these data (see its report).")
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
        f"{len(shown)} persona cards ({len(cards) - len(shown)} suppressed); "
        f"top by revenue: {shown[0]['name'] if shown else 'none'}",
        **({"notes": missing} if missing else {}),
    )
    return PersonaResult(cards, audience, md)
