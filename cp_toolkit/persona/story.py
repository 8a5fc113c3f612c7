"""A persona in words: its traits named, a short name from the top traits, a one-line portrait and
a story paragraph, all built from the card's own numbers (texts ``persona.*``)."""

from __future__ import annotations

import re
from typing import Any

from ..display.numbers import money, number
from ..segment.tags import group_name, tag_name
from ..text import get_language, localize, t, words
from .basis import OTHER

__all__ = [
    "category_words",
    "display_name",
    "persona_name",
    "portrait",
    "story",
    "trait_figure",
    "trait_label",
    "trait_sentence",
]

#: Behaviour features that say one thing in a name (a persona is not "deal-seeking, promotion-led").
NAME_FAMILY = {"savings_rate": "discounts", "discount_line_share": "discounts"}
#: Behaviour features with a word for a persona high (or low) on them (texts ``persona.name.<feature>.<direction>``).
NAMED_BEHAVIOUR = (
    "avg_lines_per_order",
    "weekend_share",
    "interpurchase_cv",
    "main_store_share",
    "savings_rate",
    "discount_line_share",
    "coupon_order_share",
    "campaign_response_rate",
)


def category_words(category: str) -> str:
    """A category or department as the data spell it, in a reader's case: ``DRUG GM`` -> ``Drug GM``."""
    if category != category.upper():
        return category
    return re.sub(r"[^\W\d_]{3,}", lambda m: m.group(0).capitalize(), category)


def trait_label(trait: dict[str, Any]) -> str:
    """What a trait measures, in words (``orders with a coupon``, ``age: 45-54``)."""
    kind, feature, value = trait["kind"], trait["feature"], trait["value"]
    if kind == "category":
        return t("persona.trait.category", category=category_words(feature))
    if kind == "demographic":
        return t("persona.trait.pair", name=words("eda.attribute", feature), value=value)
    if kind == "tag":
        return t("persona.trait.pair", name=group_name(feature), value=tag_name(feature, value))
    if feature.startswith("channel_share_"):
        return t("persona.trait.channel", channel=feature[len("channel_share_") :])
    return words("persona.trait.behaviour", feature)


def feature_label(column: str) -> str:
    """A shopping feature clustered (:func:`cp_toolkit.persona.basis.behaviour_features`) in words."""
    if column.startswith("mix:"):
        return trait_label({"kind": "category", "feature": column[4:], "value": None})
    return trait_label({"kind": "behaviour", "feature": column, "value": None})


def trait_figure(trait: dict[str, Any], which: str = "persona") -> str:
    """The persona's (``which="persona"``) or all customers' (``"base"``) figure of a trait."""
    return number(trait[which], "percent" if trait["unit"] == "share" else "decimal")


def trait_sentence(trait: dict[str, Any]) -> str:
    """``orders with a coupon: 19% (all customers: 5.0%)``."""
    return t("persona.trait.sentence", label=trait_label(trait), persona=trait_figure(trait),
             base=trait_figure(trait, "base"))  # fmt: skip


def _adjective(trait: dict[str, Any]) -> str | None:
    """The word a name takes from a trait (``coupon-clipping``), None for a trait that names nothing."""
    if trait["kind"] == "category" and trait["direction"] == "high":
        return t("persona.name.category", category=category_words(trait["feature"]))
    if trait["kind"] == "behaviour" and trait["feature"] in NAMED_BEHAVIOUR:
        return t(f"persona.name.{trait['feature']}.{trait['direction']}")
    if trait["kind"] == "tag" and trait["feature"] == "lifecycle" and trait["persona"] >= 0.5:  # most of them
        return t("persona.name.lifecycle", stage=tag_name("lifecycle", trait["value"]))
    return None


def persona_name(traits: list[dict[str, Any]], taken: set[str] | None = None, most: int = 2) -> str:
    """A short name from the persona's most distinctive traits that name something (traits above
    the base first): ``Coupon-clipping, big-basket shoppers``; another trait is added while the
    name is one of ``taken``."""
    ranked, used = [], set()
    for trait in _above_first(traits):
        adjective = _adjective(trait)
        family = trait["kind"] if trait["kind"] != "behaviour" else NAME_FAMILY.get(trait["feature"], trait["feature"])
        if adjective and adjective not in ranked and family not in used:  # one category, one lifecycle stage
            ranked.append(adjective)
            used.add(family)
    taken = taken or set()
    for n in range(min(most, len(ranked)), len(ranked) + 1):
        name = _join(ranked[:n])
        if name not in taken:
            return name
    name, i = _join(ranked[:most]), 2
    while f"{name} ({i})" in taken:
        i += 1
    return name if name not in taken else f"{name} ({i})"


def _above_first(traits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The traits above the base first, each side in its order."""
    return sorted(traits, key=lambda tr: tr["direction"] != "high")


def _join(adjectives: list[str]) -> str:
    """The adjectives as a name (``persona.name.shoppers``), the first letter upper case."""
    if not adjectives:
        return t("persona.name.typical")
    name = t("persona.name.shoppers", traits=t("persona.name.separator").join(adjectives))
    return name[0].upper() + name[1:]


def display_name(card: dict[str, Any]) -> str:
    """The card's name in the report's language: a segment name localized, else the name generated
    from its traits (with its value tier in front for the value x behaviour basis)."""
    basis = card.get("basis", "behaviour")
    if card["key"] == OTHER:
        return t("persona.name.other")
    if basis in ("rfm", "rfm8"):
        return localize(f"segment.{basis}", card["key"])
    return card["names"].get(get_language(), card["name"])


def _portrayed(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The two traits the portrait names (the story does not repeat them)."""
    return _above_first(card["traits"])[:2]


def _how(behaviour: dict[str, Any], currency: str) -> str:
    """How they shop: orders, basket and its value, weekend share (the figures the data have)."""
    parts = [t("persona.story.orders", mean_orders=behaviour["mean_orders"])]
    if behaviour.get("avg_lines_per_order") is not None:
        parts.append(t("persona.story.basket", lines=number(behaviour["avg_lines_per_order"])))
    parts.append(t("persona.story.order_value", order_value=money(behaviour["mean_order_value"], currency)))
    if behaviour.get("weekend_share") is not None:
        parts.append(t("persona.story.weekend", weekend_share=number(behaviour["weekend_share"], "percent")))
    return t("persona.story.how", parts=t("persona.story.clauses").join(parts))


def portrait(card: dict[str, Any]) -> str:
    """One line: size, share of revenue and the two most distinctive traits (those above the base first)."""
    shown = [trait_sentence(tr) for tr in _portrayed(card)]
    return t(
        "persona.portrait",
        customers=card["customers"],
        customer_share=card["customer_share"],
        revenue_share=card["revenue_share"],
        traits=t("persona.card.separator").join(shown) if shown else t("persona.portrait_typical"),
    )


def _traits_of(card: dict[str, Any], kind: str, direction: str = "high", most: int = 2) -> list[dict[str, Any]]:
    """The card's first ``most`` traits of a kind and direction."""
    return [tr for tr in card["traits"] if tr["kind"] == kind and tr["direction"] == direction][:most]


def story(card: dict[str, Any], currency: str) -> str:
    """A paragraph from the card's numbers only: who they are, how and when they shop, what they
    buy, what they are worth and how at risk they are."""
    b, v, r = card["behaviour"], card["value"], card["risk"]
    sentences = [t("persona.story.who", customers=card["customers"], customer_share=card["customer_share"])]
    people = _traits_of(card, "demographic")
    coverage = card["coverage"]
    if people:
        sentences.append(t("persona.story.people", traits=t("persona.story.and").join(map(trait_sentence, people))))
    if coverage.get("attributes_known") is not None:
        sentences.append(t("persona.story.coverage", known=coverage["attributes_known"], members=card["customers"]))
    sentences.append(_how(b, currency))
    portrayed = {tr["key"] for tr in _portrayed(card)}
    habits = [tr for tr in card["traits"] if tr["kind"] == "behaviour" and tr["key"] not in portrayed][:2]
    if habits:
        sentences.append(t("persona.story.habits", traits=t("persona.story.and").join(map(trait_sentence, habits))))
    buys = _traits_of(card, "category", most=3)
    if buys:
        names = t("persona.card.separator").join(
            t("persona.story.category", category=category_words(tr["feature"]), index=tr["index"]) for tr in buys
        )
        sentences.append(t("persona.story.buys", categories=names))
    elif card.get("categories_known", True):
        sentences.append(t("persona.story.buys_like_base"))
    if v["mean_clv"] is not None:
        sentences.append(t("persona.story.worth", clv=money(v["mean_clv"], currency), clv_share=v["clv_share"],
                           band=t(f"persona.band.value.{v['band']}")))  # fmt: skip
    else:
        sentences.append(t("persona.story.worth_revenue", revenue_share=card["revenue_share"],
                           band=t(f"persona.band.value.{v['band']}")))  # fmt: skip
    if r["mean_churn_probability"] is not None:
        count = r.get("high_risk_customers")
        at_high = (
            t("persona.story.high_risk_few") if count is None
            else t("persona.story.high_risk_none") if count == 0
            else t("persona.story.high_risk", customers=count)
        )  # fmt: skip
        sentences.append(t("persona.story.risk", risk=r["mean_churn_probability"],
                           band=t(f"persona.band.risk.{r['band']}"), high=at_high))  # fmt: skip
    return t("persona.story.space").join(sentences)
