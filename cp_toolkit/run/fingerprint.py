"""What a stage's output depends on, as fingerprints: to reuse a stage or say why it reruns.

A stage's fingerprint hashes its parts: the parameters its notebook declares, the notebook file,
the toolkit's code, and the fingerprints of the earlier stages whose artifacts it reads; stage
01 adds the input files (SHA-256 of each) and the pseudonymization key (a keyed hash of it,
never the key). The manifest records each stage's parts, so that a later run can reuse a stage
whose fingerprint matches (``--only``, ``--from``) and ``cp-toolkit status`` can say, part by part,
why a stage would run again.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from ..ingest.sources import resolve_paths, resolve_sources, source_label, source_list
from ..privacy import KEY_ENV, KEY_FILE_ENV
from .pipeline import PRODUCERS, STAGES

__all__ = ["code_version", "input_fingerprints", "key_id", "rerun_reasons", "stage_fingerprints", "upstream"]

#: The package's own files whose content is its code (its text tables and playbooks included).
CODE_SUFFIXES = (".py", ".yaml", ".yml", ".json")


def _digest(obj: Any) -> str:
    """SHA-256 of ``obj`` as canonical JSON (sorted keys), first 16 hex digits."""
    text = json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_fingerprints(params: Mapping[str, Any]) -> dict[str, Any]:
    """SHA-256 and size of every source file of the run (each file of a glob)."""
    out = {}
    for table, entry in resolve_sources(params["dataset"], params.get("sources")).items():
        sources = source_list(entry)
        for i, spec in enumerate(sources):
            files = resolve_paths(str(spec["path"])) if spec.get("path") else []
            out[source_label(table, spec, i, len(sources))] = {
                "path": str(spec.get("path", "")),
                **({"query": spec.get("query") or spec.get("table")} if spec.get("query") or spec.get("table") else {}),
                "files": [{"file": str(f), "bytes": f.stat().st_size, "sha256": file_sha256(f)} for f in files],
            }
    return out


@functools.cache
def code_version() -> dict[str, str]:
    """The toolkit's version and a hash of its source files (so that an edited checkout counts
    as other code even under the same version number)."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(p for p in package.rglob("*") if p.suffix in CODE_SUFFIXES and p.is_file()):
        digest.update(path.relative_to(package).as_posix().encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    try:
        version = metadata.version("cp_toolkit")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {"version": version, "source": digest.hexdigest()[:16]}


def key_id() -> str:
    """A keyed hash of the pseudonymization key stage 01 would use (never the key itself), or
    ``"random"`` when none is set (stage 01 then draws a key for its run only)."""
    if os.environ.get(KEY_ENV):
        key = os.environ[KEY_ENV].encode("utf-8")
    elif os.environ.get(KEY_FILE_ENV) and Path(os.environ[KEY_FILE_ENV]).expanduser().is_file():
        key = Path(os.environ[KEY_FILE_ENV]).expanduser().read_bytes().strip()
    else:
        return "random"
    return hmac.new(key, b"cp-toolkit key id", hashlib.sha256).hexdigest()[:16]


def upstream(stage: str) -> list[str]:
    """The earlier stages whose artifacts ``stage`` reads: those that write artifacts."""
    return [s for s in STAGES if s < stage and s in PRODUCERS.values()]


def stage_fingerprints(
    routed: Mapping[str, Mapping[str, Any]],
    notebooks: Mapping[str, Path],
    inputs: Mapping[str, Any],
    key: str,
) -> dict[str, dict[str, str]]:
    """Each stage's fingerprint and its parts.

    Parameters
    ----------
    routed : mapping
        Stage -> the parameters its notebook receives (:func:`~cp_toolkit.run.report.route_parameters`).
    notebooks : mapping
        Stage -> its notebook file.
    inputs : mapping
        :func:`input_fingerprints` of the run.
    key : str
        :func:`key_id`.

    Returns
    -------
    dict
        Stage -> ``{"fingerprint", "parameters", "notebook", "code", "upstream"}`` (and for stage
        01 ``"inputs"`` and ``"key"``), each a short hex digest (``key`` as :func:`key_id`).
    """
    code = code_version()["source"]
    out: dict[str, dict[str, str]] = {}
    for stage in STAGES:
        parts = {
            "parameters": _digest(dict(routed.get(stage, {}))),
            "notebook": file_sha256(Path(notebooks[stage]))[:16],
            "code": code,
            "upstream": _digest([out[s]["fingerprint"] for s in upstream(stage)]),
        }
        if stage == STAGES[0]:
            parts |= {"inputs": _digest(_contents(inputs)), "key": key}
        out[stage] = {"fingerprint": _digest(parts), **parts}
    return out


def _contents(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The input fingerprints without what does not change a file's content (its size)."""
    return {
        name: [f["sha256"] for f in entry.get("files", [])] + [entry.get("query")] for name, entry in inputs.items()
    }


def rerun_reasons(
    stage: str,
    recorded: Mapping[str, Any],
    current: Mapping[str, Any],
) -> list[str]:
    """Why ``stage`` of a recorded run would run again under the current settings, in words.

    Parameters
    ----------
    stage : str
        The stage.
    recorded : mapping
        The earlier run's manifest.
    current : mapping
        ``{"parameters", "inputs", "fingerprints", "routed", "code"}`` of the run that would start.

    Returns
    -------
    list of str
        Empty when the stage can be reused: it ended ok and every part of its fingerprint matches.
    """
    entry = next((s for s in recorded.get("stages", []) if s.get("stage") == stage), None)
    if entry is None:
        return ["it has not run"]
    if entry.get("status") not in ("ok", "reused"):
        return [f"it ended {entry.get('status')}"]
    old = entry.get("fingerprint")
    if not isinstance(old, dict):
        return ["it was run by a version of cp-toolkit that did not record fingerprints"]
    new = current["fingerprints"][stage]
    if old.get("fingerprint") == new["fingerprint"]:
        return []
    reasons = []
    if old.get("inputs") != new.get("inputs"):
        reasons.append("its input files changed: " + _changed_inputs(recorded.get("inputs", {}), current["inputs"]))
    if old.get("key") != new.get("key"):
        reasons.append("the pseudonymization key changed")
    if old.get("parameters") != new["parameters"]:
        names = sorted(current["routed"].get(stage, {}))
        before, now = recorded.get("parameters", {}), current["parameters"]
        changed = [n for n in names if _digest(before.get(n)) != _digest(now.get(n))]
        reasons.append("its parameters changed: " + (", ".join(changed) if changed else "(their set)"))
    if old.get("notebook") != new["notebook"]:
        reasons.append("its notebook changed")
    if old.get("code") != new["code"]:
        was, now = (recorded.get("versions") or {}).get("cp_toolkit", "?"), current["code"]["version"]
        reasons.append(
            f"the cp_toolkit code changed ({was} → {now})" if was != now else f"the cp_toolkit {now} code was edited"
        )
    if old.get("upstream") != new["upstream"] and not reasons:  # its own reasons say enough
        reasons.append("an earlier stage it reads (" + ", ".join(upstream(stage)) + ") runs again")
    return reasons or ["its fingerprint changed"]


def _changed_inputs(before: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    """The sources whose files differ between two :func:`input_fingerprints`, in words."""
    out = []
    for name in sorted(set(before) | set(now)):
        old = {f["file"]: f["sha256"] for f in (before.get(name) or {}).get("files", [])}
        new = {f["file"]: f["sha256"] for f in (now.get(name) or {}).get("files", [])}
        files = sorted(f for f in set(old) | set(new) if old.get(f) != new.get(f))
        if files or (before.get(name) or {}).get("query") != (now.get(name) or {}).get("query"):
            out.append(f"{name} ({', '.join(files) if files else 'query'})")
    return "; ".join(out) or "their list"
