"""The persona playbook: actions chosen on a persona's value band, risk band and traits (never on
its name), read from a YAML file (the packaged ``playbook.yaml`` by default)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import ParameterError
from ..predict.operating import RISK_BANDS, RISK_EDGES, assign_bands
from ..text import get_language

__all__ = ["AUDIENCES", "action_text", "INTENT_RISKS", "choose_actions", "load_playbook", "risk_band", "value_band"]

DEFAULT_PLAYBOOK = Path(__file__).with_name("playbook.yaml")
#: Risk bands an action of each intent may be used at (all bands of stage 04, and ``unknown`` where
#: churn was not scored); an action for the members at high risk (``audience: high_risk``) may
#: win back or retain whatever the persona's band.
ALL_RISKS = frozenset({*RISK_BANDS, "unknown"})
INTENT_RISKS: dict[str, frozenset[str]] = {
    "win_back": frozenset({"medium", "high"}),
    "reactivate": frozenset({"medium", "high"}),
    "retain": frozenset({"medium", "high"}),
    "reward": frozenset({"low"}),
    "grow": frozenset({"low", "medium", "unknown"}),
    "engage": ALL_RISKS,
    "onboard": ALL_RISKS,
    "protect_margin": ALL_RISKS,
}
#: Who in a persona an action is for.
AUDIENCES = ("all", "high_risk")
VALUE_BANDS = ("high", "mid", "low")
CONDITIONS = {"value": frozenset(VALUE_BANDS), "risk": ALL_RISKS, "traits": None}


def value_band(index: float | None, bands: dict[str, float]) -> str:
    """``high``, ``mid`` or ``low``: a persona's value per customer as a multiple of the base's
    (``index`` 1 = the base) against the playbook's ``value_bands``."""
    if index is None:
        return "mid"
    return "high" if index >= bands["high"] else "low" if index <= bands["low"] else "mid"


def risk_band(mean_churn_probability: float | None) -> str:
    """The stage 04 band (low, medium, high) of a persona's mean churn probability; ``unknown``
    without one."""
    if mean_churn_probability is None:
        return "unknown"
    band, _ = assign_bands([mean_churn_probability], list(RISK_EDGES))
    return RISK_BANDS[band[0] - 1]


#: A trait condition: ``<kind>:<feature>[=<value>]:<high|low>``.
TRAIT_KEY = re.compile(r"(behaviour|category|demographic|tag):.+:(high|low)")


def _condition_problems(when: Any, where: str) -> list[str]:
    """What is wrong with an action's ``when``."""
    if not isinstance(when, dict):
        return [f"{where}: when must be a mapping of value, risk and traits"]
    problems = []
    for key, values in when.items():
        if key not in CONDITIONS or not isinstance(values, list) or not values:
            problems.append(f"{where}: when.{key} is not a non-empty list under value, risk or traits")
        elif CONDITIONS[key] is not None and not set(values) <= CONDITIONS[key]:
            problems.append(f"{where}: when.{key} takes {', '.join(sorted(CONDITIONS[key]))}, not {values}")
        elif key == "traits" and not all(isinstance(v, str) and TRAIT_KEY.fullmatch(v) for v in values):
            problems.append(f"{where}: when.traits are written <kind>:<feature>[=<value>]:<high|low>, not {values}")
    return problems


def _problems(action: Any, where: str) -> list[str]:
    """What is wrong with one action of a playbook (empty when nothing)."""
    if not isinstance(action, dict) or not action.get("id"):
        return [f"{where}: an action needs an id, an intent, an audience, when and text"]
    where = f"{where} action {action['id']!r}"
    intent, audience, when = action.get("intent"), action.get("audience", "all"), action.get("when") or {}
    problems = _condition_problems(when, where)
    if intent not in INTENT_RISKS:
        problems.append(f"{where}: intent must be one of {', '.join(INTENT_RISKS)}, not {intent!r}")
    if audience not in AUDIENCES:
        problems.append(f"{where}: audience must be one of {', '.join(AUDIENCES)}, not {audience!r}")
    text = action.get("text")
    if not isinstance(text, dict) or not isinstance(text.get("en"), str):
        problems.append(f"{where}: text needs at least an en sentence (and a zh one for Chinese reports)")
    if intent in INTENT_RISKS and isinstance(when, dict):
        risks = {"high"} if audience == "high_risk" else set(when.get("risk") or ALL_RISKS)
        if not risks <= INTENT_RISKS[intent]:
            problems.append(
                f"{where}: a {intent} action may be used at risk {', '.join(sorted(INTENT_RISKS[intent]))} only, "
                f"but applies at {', '.join(sorted(risks - INTENT_RISKS[intent]))}; restrict when.risk"
                + (" (its audience is the members at high risk)" if audience == "high_risk" else "")
            )
    return problems


def load_playbook(path: str | Path | None = None) -> dict[str, Any]:
    """Read and check a playbook (default: the packaged ``playbook.yaml``).

    Raises
    ------
    ParameterError
        When the file is missing or unreadable, or an action is malformed or would contradict the
        risk it is used at (e.g. a win-back offer at low risk); the message names the file and the action.
    """
    path = DEFAULT_PLAYBOOK if path is None else Path(path).expanduser()
    if not path.is_file():
        raise ParameterError(f"persona_playbook {path} does not exist; copy {DEFAULT_PLAYBOOK} and point at the copy")
    try:
        book = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ParameterError(f"persona_playbook {path} is not valid YAML: {err}") from err
    if not isinstance(book, dict) or not isinstance(book.get("actions"), list) or not book["actions"]:
        raise ParameterError(f"persona_playbook {path} needs a list of actions (see {DEFAULT_PLAYBOOK})")
    bands = book.get("value_bands") or {}
    numbers = all(isinstance(bands.get(k), (int, float)) and not isinstance(bands[k], bool) for k in ("high", "low"))
    problems = [] if numbers and bands["low"] < bands["high"] else [
        f"{path}: value_bands needs a number for high and for low, low below high (multiples of the base's value)"
    ]  # fmt: skip
    actions = [a for a in book["actions"] if isinstance(a, dict)]
    if not any(a.get("audience", "all") == "all" and not a.get("when") for a in actions):
        problems.append(f"{path}: add an action for all members with no when (the fallback every persona gets)")
    for action in book["actions"]:
        problems += _problems(action, str(path))
    ids = [a.get("id") for a in book["actions"] if isinstance(a, dict)]
    problems += [f"{path}: action id {i!r} is used twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
    if problems:
        raise ParameterError("; ".join(problems))
    return {"path": str(path), "version": book.get("version"), "value_bands": bands, "actions": book["actions"]}


def _applies(action: dict[str, Any], value: str, risk: str, traits: set[str]) -> bool:
    """Whether an action's conditions hold for a persona."""
    when = action.get("when") or {}
    if value not in when.get("value", VALUE_BANDS) or risk not in when.get("risk", ALL_RISKS):
        return False
    return "traits" not in when or bool(traits & set(when["traits"]))


def action_text(action: dict[str, Any]) -> str:
    """An action's sentence in the report's language, else in English (a playbook may hold only English)."""
    return action["text"].get(get_language(), action["text"]["en"])


def choose_actions(
    book: dict[str, Any],
    value: str,
    risk: str,
    traits: set[str],
    audience_sizes: dict[str, int],
    min_group_size: int,
    most: int = 4,
) -> list[dict[str, Any]]:
    """The playbook's actions for a persona: those whose conditions hold and whose audience holds
    at least ``min_group_size`` customers, in the playbook's order, at most ``most``, and of the
    actions sharing a ``group`` only the first (e.g. a deal offer and "protect the margin").

    Parameters
    ----------
    book : dict
        :func:`load_playbook`.
    value, risk : str
        The persona's bands (:func:`value_band`, :func:`risk_band`).
    traits : set of str
        Its distinctive traits as ``<key>:<direction>``.
    audience_sizes : dict
        Members per audience (``all``, ``high_risk``).
    """
    chosen, groups = [], set()
    for action in book["actions"]:
        audience = action.get("audience", "all")
        if action.get("group") is not None and action["group"] in groups:  # one of a group: the first that applies
            continue
        if _applies(action, value, risk, traits) and audience_sizes.get(audience, 0) >= min_group_size:
            chosen.append(action)
            groups.add(action.get("group"))  # None (no group) is never looked up
    return chosen[:most]
