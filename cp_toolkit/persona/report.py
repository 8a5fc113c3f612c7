"""The 06 report, a persona deck: the findings, an overview of the personas, one card per persona
with a chart of its distinctive traits, and how the personas were built."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
from IPython.display import HTML

from .. import plots
from ..display.numbers import number
from ..display.page import figure_html, inline_html
from ..display.tables import present
from ..segment.cluster import STABLE_ARI
from ..text import labels, localize, t
from .playbook import action_text
from .stage import PersonaResult
from .story import display_name, feature_label, portrait, story, trait_figure, trait_label, trait_sentence

__all__ = ["build_settings", "deck", "findings", "method", "named", "overview"]

#: A silhouette from which clusters are called a clear structure (Kaufman & Rousseeuw's "weak" below 0.25).
CLEAR_SILHOUETTE = 0.25


def named(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cards with their names in the report's language (for the persona map)."""
    return [{**c, "name": display_name(c)} for c in cards]


def findings(result: PersonaResult) -> list[str]:
    """The sentences the 06 report opens with: how many personas on which basis, the one that
    brings most revenue, the one with the most value at risk, the one that stands out most."""
    cards = result.cards
    if not cards:
        return [t("persona.finding.none", min_group_size=result.min_group_size)]
    basis = t(f"persona.basis.{result.basis.basis}")
    sentences = [
        t("persona.finding.count_one", basis=basis)
        if len(cards) == 1
        else t("persona.finding.count", cards=len(cards), basis=basis)
    ]
    checks = result.basis.checks
    if checks and (checks["silhouette"] < CLEAR_SILHOUETTE or checks["bootstrap_ari"]["ari_mean"] < STABLE_ARI):
        sentences.append(t("persona.finding.tendencies", silhouette=checks["silhouette"],
                           ari=checks["bootstrap_ari"]["ari_mean"]))  # fmt: skip
    top = max(cards, key=lambda c: c["revenue_share"])
    sentences.append(t("persona.finding.top", name=display_name(top), customers=top["customers"],
                       customer_share=top["customer_share"], revenue_share=top["revenue_share"]))  # fmt: skip
    risky = [c for c in cards if c["risk"]["mean_churn_probability"] is not None]
    if risky:
        worst = max(risky, key=lambda c: c["risk"]["mean_churn_probability"] * c["revenue_share"])
        sentences.append(t("persona.finding.risk", name=display_name(worst), customers=worst["customers"],
                           risk=worst["risk"]["mean_churn_probability"], revenue_share=worst["revenue_share"],
                           band=t(f"persona.band.risk.{worst['risk']['band']}")))  # fmt: skip
    distinct = [c for c in cards if c["traits"]]
    if distinct:
        most = max(distinct, key=lambda c: abs(c["traits"][0]["index"] - 100))
        sentences.append(
            t("persona.finding.distinct", name=display_name(most), trait=trait_sentence(most["traits"][0]))
        )
    sentences += result.notes
    return sentences


def overview(result: PersonaResult) -> pd.DataFrame:
    """One row per persona: size, revenue, value and risk with their bands, and its first action."""
    rows = []
    for c in result.cards:
        rows.append({
            "persona": display_name(c), "customers": c["customers"], "customer_share": c["customer_share"],
            "revenue_share": c["revenue_share"], "mean_clv": c["value"]["mean_clv"],
            "value_band": t(f"persona.band.value.{c['value']['band']}"),
            "mean_churn_probability": c["risk"]["mean_churn_probability"],
            "risk_band": t(f"persona.band.risk.{c['risk']['band']}"),
            "first_action": action_text(c["actions"][0]) if c["actions"] else "",
        })  # fmt: skip
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    return out.drop(columns=[c for c in ("mean_clv", "mean_churn_probability") if out[c].isna().all()])


def _traits_table(card: dict[str, Any]) -> str:
    """The card's distinctive traits: the persona's figure against all customers' and the index."""
    frame = pd.DataFrame(
        [
            {
                "trait": trait_label(tr),
                "this_persona": trait_figure(tr),
                "all_customers": trait_figure(tr, "base"),
                "index": f"{tr['index']:,.0f}",
            }
            for tr in card["traits"]
        ]  # fmt: skip
    )
    return present(frame).html


def _actions_table(card: dict[str, Any], currency: str) -> str:
    """The card's actions with the customers each concerns and the value at stake."""
    frame = pd.DataFrame(
        [
            {
                "action": action_text(a),
                "customers": a["customers"],
                "clv_at_stake": a["clv_at_stake"] if a["clv_at_stake"] is not None else a["revenue_to_date"],
            }
            for a in card["actions"]
        ]  # fmt: skip
    )
    if card["actions"] and card["actions"][0]["clv_at_stake"] is None:
        frame = frame.rename(columns={"clv_at_stake": "revenue"})
    return present(frame).html


def _chart(card: dict[str, Any]) -> str:
    """The card's traits chart as an embedded image."""
    texts = labels("plots.persona_traits")
    ax = plots.persona_traits([trait_label(tr) for tr in card["traits"]], [tr["index"] for tr in card["traits"]],
                              **texts)  # fmt: skip
    return figure_html(ax, texts["title"])


def _card_html(card: dict[str, Any], currency: str) -> str:
    """One persona card: name, portrait, story, traits (chart and table), actions, engagement."""
    parts = [
        f"<h2>{html.escape(display_name(card))}</h2>",
        f"<p class='cp-portrait'>{inline_html(portrait(card))}</p>",
        f"<p>{inline_html(story(card, currency))}</p>",
    ]
    merged = _merged_note(card)
    if merged:
        parts.append(f"<p class='cp-note'>{html.escape(merged)}</p>")
    if card["traits"]:
        heading = f"<h3>{t('persona.card.traits_heading')}</h3>"
        parts.append(
            f"<div class='cp-persona-traits'><div>{_chart(card)}</div><div>{heading}{_traits_table(card)}</div></div>"
        )
    else:
        parts.append(f"<p>{html.escape(t('persona.card.no_traits'))}</p>")
    parts.append(f"<h3>{t('persona.card.actions_heading')}</h3>{_actions_table(card, currency)}")
    engagement = _engagement_sentence(card)
    if engagement:
        parts.append(f"<p class='cp-note'>{html.escape(engagement)}</p>")
    return f"<section class='cp-persona'>{''.join(parts)}</section>"


def _merged_note(card: dict[str, Any]) -> str:
    """Which groups too small to show a persona took in: segments by name, cells without."""
    if not card["merged"]:
        return ""
    if card["basis"] not in ("rfm", "rfm8"):
        return t("persona.card.merged_cells")
    return t(
        "persona.card.merged",
        groups=t("persona.name.separator").join(localize(f"segment.{card['basis']}", m) for m in card["merged"]),
    )


def _engagement_sentence(card: dict[str, Any]) -> str:
    """Campaign response and coupon use against all customers, where the data have them."""
    sentences = []
    for column, figures in card["engagement"].items():
        if figures["persona"] is not None:
            sentences.append(t(f"persona.card.engagement.{column}", persona=number(figures["persona"], "percent"),
                               base=number(figures["base"], "percent")))  # fmt: skip
    return t("persona.story.space").join(sentences)


#: Print: one card per page, never split; the screen: the chart beside its table where there is room.
DECK_STYLE = """<style>
.cp-persona{border-top:3px solid #4C72B0;padding-top:.4em;margin:2.2em 0;break-inside:avoid;page-break-inside:avoid}
.cp-portrait{font-size:1.12em;font-weight:600;max-width:60em}
.cp-persona p{max-width:60em;line-height:1.45}.cp-note{color:#555;font-size:.95em}
.cp-persona-traits{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}
.cp-persona-traits img{max-width:100%}
@media print{
 @page{size:A4;margin:12mm}
 body{font-size:9pt}
 .jp-OutputArea-output,.jp-RenderedHTMLCommon{overflow:visible!important}
 table.cp-table{font-size:8pt;width:100%;table-layout:auto}
 table.cp-table td,table.cp-table th{white-space:normal!important}
 .cp-persona{break-before:page;page-break-before:always;margin:0}
 .cp-persona h2{margin:.2em 0}.cp-persona h3{margin:.4em 0 .2em;font-size:10pt}
 .cp-persona p{margin:.3em 0}
 .cp-persona-traits{flex-wrap:nowrap;gap:1em}
 .cp-persona-traits>div:first-child{flex:0 0 52%}.cp-persona-traits>div:last-child{flex:1 1 48%}
 .cp-persona-traits img{width:100%}
}
</style>"""


def deck(result: PersonaResult) -> HTML:
    """Every persona card, in the order of their revenue, as one block of the page."""
    if not result.cards:
        return HTML("")
    return HTML(DECK_STYLE + "".join(_card_html(c, result.currency) for c in result.cards))


def method(result: PersonaResult) -> str:
    """How the personas were built, for the basis used, and where the actions come from."""
    return t("persona.story.space").join([
        t(f"persona.deck.built.{result.basis.basis}"),
        t("persona.deck.playbook_used", path=result.playbook["path"], version=result.playbook["version"]),
    ])  # fmt: skip


def build_settings(result: PersonaResult) -> pd.DataFrame:
    """How the personas were built, in words (for the appendix)."""
    checks = result.basis.checks
    rows = [("basis", t(f"persona.basis.{result.basis.basis}"))]
    if result.basis.features.shape[1]:
        rows.append(("features", ", ".join(map(feature_label, result.basis.features.columns))))
    if checks:
        rows += [
            ("k", f"{checks['k']}"),
            ("silhouette", number(checks["silhouette"], "ratio")),
            ("stability", number(checks["bootstrap_ari"]["ari_mean"], "ratio")),
            ("merged", f"{checks.get('merged', 0)}"),
        ]
    rows.append(("min_group_size", f"{result.min_group_size}"))
    return pd.DataFrame({"setting": [t(f"persona.settings.{k}") for k, _ in rows], "value": [v for _, v in rows]})
