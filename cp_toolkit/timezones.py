"""Time zones of timestamps: what a source's clock is and the local time the reports show.

A source's ``timezone`` is a zone name (its timestamps are local time there) or
``{stored: UTC, local: America/New_York}`` (stored in one zone; hours of the day and weekdays
are shown in the other).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["time_zones", "to_local_time", "transactions_timezone"]


def time_zones(setting: str | Mapping[str, str] | None) -> dict[str, str] | None:
    """A source's ``timezone`` as ``{"stored": zone, "local": zone}`` (a single zone name is both:
    the timestamps are local time there); None when the source does not say."""
    if setting is None:
        return None
    if not isinstance(setting, Mapping):
        return {"stored": setting, "local": setting}
    stored, local = setting.get("stored", setting.get("local")), setting.get("local", setting.get("stored"))
    return {"stored": stored, "local": local}  # one side given: the other is the same zone


def to_local_time(values: pd.Series, setting: str | Mapping[str, str] | None) -> pd.Series:
    """Timestamps stored in one zone as the wall-clock time of the zone they are reported in
    (``timezone: {stored: UTC, local: America/New_York}``): the hours of the day and weekdays the
    reports show; unchanged without a setting or when both zones are one. Days and ``as_of``
    keep the stored clock (:func:`cp_toolkit.eda.weekday_hour` applies this)."""
    zones = time_zones(setting)
    if zones is None or zones.get("stored", zones.get("local")) == zones.get("local", zones.get("stored")):
        return values
    stored = values.dt.tz_localize(zones.get("stored", "UTC"), ambiguous="NaT", nonexistent="shift_forward")
    return stored.dt.tz_convert(zones.get("local", "UTC")).dt.tz_localize(None).astype("datetime64[ns]")


def transactions_timezone(quality: Mapping[str, Any]) -> dict[str, str] | None:
    """The time zones of a run's transactions (``quality.json``), when every transaction source
    names the same; None when one does not say or they differ."""
    zones = [v.get("timezone") for name, v in quality["tables"].items() if name.split(":")[0] == "transactions"]
    return zones[0] if zones and zones[0] and all(z == zones[0] for z in zones) else None
