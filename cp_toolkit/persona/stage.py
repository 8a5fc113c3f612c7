"""Stage 06: personas on a basis (behaviour by default), their cards, the deck's data and the
audience a CRM can load."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..config import DEFAULTS, PRESET_NON_PRODUCT
from ..run.artifacts import RunFolder
from ..run.pipeline import ensure, stage, transactions_up_to
from ..text import t
from .basis import Basis, assign_personas, behaviour_features, clustering_view, department_shares
from .cards import at_high_risk, customer_profile, p_alive_note, persona_cards, personas_markdown
from .playbook import INTENT_RISKS, choose_actions, load_playbook
from .story import display_name
from .traits import trait_matrix

__all__ = ["AUDIENCE_COLUMNS", "PersonaResult", "audience", "run_stage"]

#: Version of the layout of ``personas.json`` (``personas.schema.json`` beside this module).
SCHEMA_VERSION = 1
#: Most distinctive traits on a card.
SHOWN_TRAITS = 8

#: The columns of ``audience.csv`` and what they hold (documented in the README).
AUDIENCE_COLUMNS = {
    "customer_id": "the customer's pseudonym (cp-toolkit rekey joins it to your own ids)",
    "persona": "the persona's key (P1, P2 ... or the segment), as in personas.json",
    "persona_name": "the persona's name (English)",
    "rfm_segment": "the R x F segment of stage 03",
    "rfm8": "the RFM-8 class of stage 03 (where stage 03 wrote one)",
    "value_tier": "low, mid or high: revenue to date against the base (stage 03's value_tier tag)",
    "tags": "the customer's other tags, as group:tag separated by |",
    "churn_probability": "probability of no order within the horizon (stage 04), 3 decimals",
    "churn_risk": "low, medium or high (stage 04's bands)",
    "clv": "expected value over the CLV horizon (stage 05), in the run's currency, 2 decimals",
    "next_best_action": (
        "the id of the persona's first action for the customer (for one at high risk: an action for those at high risk)"
    ),
    "next_best_action_text": "that action in words (English)",
}


@dataclass
class PersonaResult:
    """Persona cards, how the personas were found, and the per-customer audience."""

    cards: list[dict[str, Any]]
    audience: pd.DataFrame
    markdown: str
    basis: Basis
    currency: str
    notes: list[str] = field(default_factory=list)
    min_group_size: int = DEFAULTS["min_group_size"]
    #: The playbook's ``path`` (as the report shows it) and ``version``.
    playbook: dict[str, Any] = field(default_factory=dict)


def _tags_by_customer(tags: pd.DataFrame | None) -> tuple[pd.Series, pd.Series]:
    """Each customer's value tier, and the other tags joined as ``group:tag|group:tag``."""
    if tags is None or tags.empty:
        return pd.Series(dtype="string"), pd.Series(dtype="string")
    tier = tags[tags["tag_group"] == "value_tier"].set_index("customer_id")["tag"]
    rest = tags[tags["tag_group"] != "value_tier"].sort_values(["customer_id", "tag_group", "tag"])
    joined = (rest["tag_group"] + ":" + rest["tag"].astype(str)).groupby(rest["customer_id"]).agg("|".join)
    return tier, joined


def _next_action(cards: list[dict[str, Any]], profile: pd.DataFrame, book: dict[str, Any]) -> pd.DataFrame:
    """Each customer's next best action: the persona's first action for all members; for a member
    at high risk the playbook's first action for members at high risk that applies to the persona
    (however few they are: the audience is one row per customer, not a published count), else
    its first action for all members that may be used at high risk."""
    rows = []
    for card in cards:
        members = profile[profile["persona"] == card["key"]]
        high = at_high_risk(members)
        traits = {f"{tr['key']}:{tr['direction']}" for tr in card["traits"]}
        applies = choose_actions(book, card["value"]["band"], card["risk"]["band"], traits,
                                 {"all": len(members), "high_risk": 1}, 1, most=len(book["actions"]))  # fmt: skip
        choices = {
            "all": [a for a in card["actions"] if a["audience"] == "all"],
            "high": [a for a in applies if a.get("audience") == "high_risk"]
            + [a for a in applies if a.get("audience", "all") == "all" and "high" in INTENT_RISKS[a["intent"]]],
        }
        for mask, options in ((~high, choices["all"]), (high, choices["high"])):
            if options and mask.any():
                rows.append(pd.DataFrame({"customer_id": members.loc[mask, "customer_id"],
                                          "next_best_action": options[0]["id"],
                                          "next_best_action_text": options[0]["text"]["en"]}))  # fmt: skip
    if not rows:
        return pd.DataFrame(columns=["customer_id", "next_best_action", "next_best_action_text"])
    return pd.concat(rows)


def audience(
    profile: pd.DataFrame,
    cards: list[dict[str, Any]],
    tags: pd.DataFrame | None,
    book: dict[str, Any],
    with_p_alive: bool,
) -> pd.DataFrame:
    """``audience.csv``: one row per customer with the columns of :data:`AUDIENCE_COLUMNS` (and
    ``p_alive`` when it is usable), figures rounded."""
    tier, joined = _tags_by_customer(tags)
    names = {c["key"]: c["name"] for c in cards}
    out = profile.assign(
        persona_name=profile["persona"].map(names),
        value_tier=profile["customer_id"].map(tier),
        tags=profile["customer_id"].map(joined),
        churn_probability=profile["churn_probability"].round(3),
        clv=profile["clv"].round(2),
        p_alive=profile["p_alive"].round(3),
    ).merge(_next_action(cards, profile, book), on="customer_id", how="left")
    columns = [c for c in AUDIENCE_COLUMNS if c in out.columns]
    if with_p_alive:
        columns.insert(columns.index("clv"), "p_alive")
    return out[columns].sort_values("customer_id").reset_index(drop=True)


@stage("06_persona")
def run_stage(
    run: RunFolder,
    min_group_size: int = DEFAULTS["min_group_size"],
    persona_basis: str = DEFAULTS["persona_basis"],
    persona_playbook: str | None = DEFAULTS["persona_playbook"],
    persona_categories: int = DEFAULTS["persona_categories"],
    non_product_categories: list[str] | None = DEFAULTS["non_product_categories"],
    currency: str = DEFAULTS["currency"],
    seed: int = DEFAULTS["seed"],
) -> PersonaResult:
    """Stage 06: write ``personas.json`` (schema ``personas.schema.json``), ``personas.md`` and
    ``audience.csv``.

    Parameters
    ----------
    persona_basis : str
        ``behaviour``, ``rfm``, ``rfm8`` or ``value_x_behaviour`` (:func:`~cp_toolkit.persona.basis.assign_personas`).
    persona_playbook : str, optional
        A playbook YAML (default: the packaged ``playbook.yaml``).
    persona_categories : int
        Most categories among a card's distinctive traits.
    """
    book = load_playbook(persona_playbook)
    clv_model, predictions = ensure(run, "clv_model"), ensure(run, "predictions")
    note = p_alive_note(clv_model)
    segments, features = ensure(run, "segments"), ensure(run, "features")
    profile = customer_profile(segments, features, predictions, ensure(run, "clv"))
    notes = [note] if note else []
    if predictions.empty or predictions["churn_probability"].isna().all():
        notes.append(t("persona.churn_not_shown"))
    if non_product_categories is None:
        non_product_categories = PRESET_NON_PRODUCT.get(run.params.get("dataset", ""), [])
    table, behaviour, categories = _shopping(run, features, non_product_categories)
    tags = ensure(run, "tags")
    tier, _ = _tags_by_customer(tags)
    view = clustering_view(behaviour, table["frequency"])
    if len(table) < min_group_size:  # no persona could be shown: none is formed
        basis = Basis(persona_basis, pd.Series(dtype="string", name="persona"), view)
    else:
        basis = assign_personas(persona_basis, segments.set_index("customer_id"), view, tier, min_group_size, seed)
    if basis.note:
        notes.append(t("persona.basis_fallback", asked=t(f"persona.basis.{persona_basis}"), reason=basis.note,
                       used=t(f"persona.basis.{basis.basis}")))  # fmt: skip
    customers = ensure(run, "customers")
    matrix, traits = trait_matrix(behaviour, table, categories, customers, tags)
    context = {
        "basis": basis.basis, "min_group_size": min_group_size, "playbook": book, "shown_traits": SHOWN_TRAITS,
        "shown_categories": persona_categories, "merged": basis.merged, "table": table,
        "behaviour_summary": behaviour.reindex(columns=["avg_lines_per_order", "weekend_share"]),
        "attributes_known": _attributes_known(customers),
    }  # fmt: skip
    cards = persona_cards(profile, basis.labels, matrix, traits, context, currency)
    profile = profile.assign(persona=profile["customer_id"].map(basis.labels))
    md = personas_markdown(cards, currency, t("persona.story.space").join(notes))
    crm = audience(profile, cards, tags, book, with_p_alive=not note)
    run.save("personas", {
        "schema_version": SCHEMA_VERSION, "basis": basis.basis, "basis_asked": persona_basis,
        "basis_note": basis.note, "checks": basis.checks, "behaviour_features": list(basis.features.columns),
        "min_group_size": min_group_size, "currency": currency, "p_alive_note": note,
        "playbook": {"path": persona_playbook, "version": book["version"]}, "cards": cards,
    })  # fmt: skip
    run.save("personas_md", md)
    run.save("audience", crm)
    top = display_name(cards[0]) if cards else t("persona.headline_none")
    headline = t("persona.headline", shown=len(cards), basis=t(f"persona.basis.{basis.basis}"), top=top)
    run.record_stage("06_persona", headline, **({"notes": notes} if notes else {}))
    shown = {"path": "cp_toolkit/persona/playbook.yaml" if persona_playbook is None else book["path"],
             "version": book["version"]}  # fmt: skip
    return PersonaResult(cards, crm, md, basis, currency, notes, min_group_size, shown)


def _shopping(
    run: RunFolder, features: pd.DataFrame, non_product: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The stage 03 feature table (by customer), the behaviour features and each customer's
    category shares of product spend."""
    table = features.set_index("customer_id")
    orders = transactions_up_to(run, run.params.get("as_of") or run.load("quality")["as_of"], "orders")
    orders = orders[orders["customer_id"].isin(table.index)]
    spend, products = ensure(run, "category_spend"), ensure(run, "products")
    behaviour = behaviour_features(table, orders, department_shares(spend, products, non_product))
    return table, behaviour, department_shares(spend, None, non_product)


def _attributes_known(customers: pd.DataFrame | None) -> pd.Series | None:
    """Whether any attribute of each customer is known (None without customer attributes)."""
    if customers is None or customers.shape[1] < 2:
        return None
    return customers.set_index("customer_id").notna().any(axis=1)
