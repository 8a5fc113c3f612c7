"""Stage 06: personas that stand apart and drive action.

Modules: ``basis`` (who belongs to which persona: behaviour clusters, R x F, RFM-8, value x
behaviour), ``traits`` (what sets a persona apart), ``story`` (name, portrait, story), ``playbook``
(actions from a YAML playbook), ``cards`` (the cards and their Markdown), ``stage`` (the stage and
``audience.csv``) and ``report`` (the persona deck).
"""

from .basis import BASES, Basis, assign_personas, behaviour_features, department_shares
from .cards import customer_profile, p_alive_note, persona_cards, personas_markdown
from .playbook import choose_actions, load_playbook, risk_band, value_band
from .report import build_settings, deck, findings, method, named, overview
from .stage import AUDIENCE_COLUMNS, PersonaResult, audience, run_stage
from .traits import distinctive_traits, trait_matrix

__all__ = [
    "AUDIENCE_COLUMNS",
    "BASES",
    "Basis",
    "PersonaResult",
    "assign_personas",
    "audience",
    "behaviour_features",
    "build_settings",
    "choose_actions",
    "customer_profile",
    "deck",
    "department_shares",
    "distinctive_traits",
    "findings",
    "load_playbook",
    "method",
    "named",
    "overview",
    "p_alive_note",
    "persona_cards",
    "personas_markdown",
    "risk_band",
    "run_stage",
    "trait_matrix",
    "value_band",
]
