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
from .cards import customer_profile, p_alive_note, persona_cards, personas_markdown
from .playbook import load_playbook
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
    "next_best_action": "the id of the first action of the persona's playbook actions that concerns the customer",
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


def _next_action(cards: list[dict[str, Any]], profile: pd.DataFrame) -> pd.DataFrame:
    """Each customer's first action of their persona that concerns them (``high_risk`` actions only
    the members at high risk)."""
    rows = []
    for card in cards:
        members = profile[profile["persona"] == card["key"]]
        high = (members["churn_risk"] == "high").fillna(False).astype(bool)
        for who, mask in (("all", ~high), ("high_risk", high)):
            action = next((a for a in card["actions"] if a["audience"] in ("all", who)), None)
            if action is not None and mask.any():
                rows.append(pd.DataFrame({"customer_id": members.loc[mask, "customer_id"],
                                          "next_best_action": action["id"],
                                          "next_best_action_text": action["text"]["en"]}))  # fmt: skip
    if not rows:
        return pd.DataFrame(columns=["customer_id", "next_best_action", "next_best_action_text"])
    return pd.concat(rows)


def audience(
    profile: pd.DataFrame, cards: list[dict[str, Any]], tags: pd.DataFrame | None, with_p_alive: bool
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
    ).merge(_next_action(cards, profile), on="customer_id", how="left")
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
    clv_model = ensure(run, "clv_model")
    note = p_alive_note(clv_model)
    predictions = ensure(run, "predictions")
    segments, features = ensure(run, "segments"), ensure(run, "features")
    profile = customer_profile(segments, features, predictions, ensure(run, "clv"))
    notes = [note] if clv_model.get("skipped") else []
    if predictions.empty or predictions["churn_probability"].isna().all():
        notes.append(t("persona.churn_not_shown"))
    if non_product_categories is None:
        non_product_categories = PRESET_NON_PRODUCT.get(run.params.get("dataset", ""), [])
    table = features.set_index("customer_id")
    orders = transactions_up_to(run, run.params.get("as_of") or run.load("quality")["as_of"], "orders")
    orders = orders[orders["customer_id"].isin(table.index)]
    spend, products = ensure(run, "category_spend"), ensure(run, "products")
    behaviour = behaviour_features(table, orders, department_shares(spend, products, non_product_categories))
    tags = ensure(run, "tags")
    tier, _ = _tags_by_customer(tags)
    view = clustering_view(behaviour, table["frequency"])
    basis = assign_personas(persona_basis, segments.set_index("customer_id"), view, tier, min_group_size, seed)
    if basis.note:
        notes.append(t("persona.basis_fallback", asked=persona_basis, reason=basis.note))
    categories = department_shares(spend, None, non_product_categories)
    customers = ensure(run, "customers")
    matrix, traits = trait_matrix(behaviour, table, categories, customers, tags)
    attributes = (
        customers.set_index("customer_id").notna().any(axis=1)
        if customers is not None and customers.shape[1] > 1
        else None
    )
    context = {
        "basis": basis.basis, "min_group_size": min_group_size, "playbook": book, "shown_traits": SHOWN_TRAITS,
        "shown_categories": persona_categories, "merged": basis.merged, "table": table,
        "behaviour_summary": behaviour.reindex(columns=["avg_lines_per_order", "weekend_share"]),
        "attributes_known": attributes,
    }  # fmt: skip
    cards = persona_cards(profile, basis.labels, matrix, traits, context, currency)
    profile = profile.assign(persona=profile["customer_id"].map(basis.labels))
    md = personas_markdown(cards, currency, " ".join(notes) if notes else note)
    crm = audience(profile, cards, tags, with_p_alive=not note)
    run.save("personas", {
        "schema_version": SCHEMA_VERSION, "basis": basis.basis, "basis_asked": persona_basis,
        "basis_note": basis.note, "checks": basis.checks, "behaviour_features": list(behaviour.columns),
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
