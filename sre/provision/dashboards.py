"""Dashboards as code: load `dashboards/`, normalise, hash, and place them in folders.

Two kinds of source live in the dashboards directory:

- `*.py` modules (not starting with `_`) built with grafana-foundation-sdk through
  `sre.provision.dashkit`; each defines `FOLDER = "Parent/Child"` and `build(ctx)` returning one
  dashboard dict or a list of them;
- `*.json` dashboards exported from Grafana and dropped in as-is (also "export for sharing
  externally", with `__inputs` placeholders); their folder is their directory path.

Each becomes a `Desired` dashboard whose body is what Grafana will store: exported placeholders
resolved to the `datasource` variable, server fields removed, and the ownership tags
`managed-by:sre` and `sre-hash:<12 hex>` added. The hash covers the comparable form of the body
(no id, version or panel ids, no hash tag) and its folder path, so the same code always hashes
the same and a live dashboard that Grafana returns compares equal to what was sent.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sre.content import content_dir
from sre.errors import UsageError
from sre.provision.dashkit import DATASOURCE_VAR, Context, to_json
from sre.provision.plan import MANAGED_BY, content_hash

MANAGED_TAG = f"managed-by:{MANAGED_BY}"
HASH_TAG_PREFIX = "sre-hash:"
UID_MAX = 40
_UID_OK = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
# Top-level fields Grafana fills in or an export adds; never part of the desired state.
SERVER_FIELDS = ("id", "version", "iteration", "__inputs", "__requires", "__elements")


def default_dir() -> Path:
    return content_dir("dashboards")


@dataclass(frozen=True)
class FolderSpec:
    """One folder of the desired tree; `path` is the titles from the root down."""

    path: tuple[str, ...]

    @property
    def title(self) -> str:
        return self.path[-1]

    @property
    def uid(self) -> str:
        return folder_uid(self.path)

    @property
    def parent(self) -> FolderSpec | None:
        return FolderSpec(self.path[:-1]) if len(self.path) > 1 else None

    @property
    def name(self) -> str:
        return "/".join(self.path)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def folder_uid(path: tuple[str, ...]) -> str:
    """Stable uid of a folder path: readable when it fits in 40 characters, else hashed."""
    uid = "sre-" + "-".join(_slug(p) for p in path)
    if len(uid) <= UID_MAX:
        return uid
    return "sre-" + hashlib.sha256("/".join(path).encode()).hexdigest()[:16]


def split_folder(folder: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in folder.split("/") if p.strip())
    if not parts:
        raise UsageError(f"empty folder path {folder!r}")
    return parts


@dataclass
class Desired:
    uid: str
    title: str
    folder: FolderSpec | None  # None: the root level
    body: dict[str, Any]  # what is sent, tags included
    source: str  # file it came from, relative to the dashboards directory
    hash: str = ""
    tags: list[str] = field(default_factory=list)

    @property
    def folder_uid(self) -> str:
        return self.folder.uid if self.folder else ""


# ---------------------------------------------------------------- comparable form


def _strip_panel_ids(panels: list[Any]) -> None:
    for p in panels:
        if isinstance(p, dict):
            p.pop("id", None)
            if isinstance(p.get("panels"), list):
                _strip_panel_ids(p["panels"])


def comparable(body: dict[str, Any]) -> dict[str, Any]:
    """The dashboard as compared and hashed: no server fields, no panel ids, no hash tag."""
    out = copy.deepcopy(body)
    for key in SERVER_FIELDS:
        out.pop(key, None)
    if isinstance(out.get("panels"), list):
        _strip_panel_ids(out["panels"])
    out["tags"] = sorted({t for t in out.get("tags") or [] if not str(t).startswith(HASH_TAG_PREFIX)})
    return out


def tag_hash(tags: list[str] | None) -> str | None:
    for t in tags or []:
        if str(t).startswith(HASH_TAG_PREFIX):
            return str(t)[len(HASH_TAG_PREFIX):]
    return None


def is_managed(tags: list[str] | None) -> bool:
    return MANAGED_TAG in (tags or [])


def dashboard_hash(body: dict[str, Any], folder: tuple[str, ...] | None) -> str:
    """The content hash a dashboard is tagged with: its comparable form and its folder path, so
    that a move in code is an update and a move by hand is drift."""
    return content_hash({"dashboard": comparable(body), "folder": "/".join(folder or ())})


def finalize(body: dict[str, Any], folder: tuple[str, ...] | None = None) -> tuple[dict[str, Any], str]:
    """Add the ownership tags; return the body to send and its content hash."""
    out = copy.deepcopy(body)
    for key in SERVER_FIELDS:
        out.pop(key, None)
    tags = [t for t in out.get("tags") or [] if not str(t).startswith(HASH_TAG_PREFIX) and t != MANAGED_TAG]
    out["tags"] = [*tags, MANAGED_TAG]
    digest = dashboard_hash(out, folder)
    out["tags"].append(HASH_TAG_PREFIX + digest)
    return out, digest


# ---------------------------------------------------------------- exported JSON


def _datasource_inputs(raw: dict[str, Any]) -> set[str]:
    return {str(i.get("name")) for i in raw.get("__inputs") or []
            if isinstance(i, dict) and i.get("type") == "datasource"}


def _replace_strings(node: Any, mapping: dict[str, str]) -> Any:
    if isinstance(node, str):
        for old, new in mapping.items():
            node = node.replace(old, new)
        return node
    if isinstance(node, list):
        return [_replace_strings(v, mapping) for v in node]
    if isinstance(node, dict):
        return {k: _replace_strings(v, mapping) for k, v in node.items()}
    return node


def _datasource_variables(body: dict[str, Any]) -> list[str]:
    return [str(v.get("name")) for v in (body.get("templating") or {}).get("list") or []
            if isinstance(v, dict) and v.get("type") == "datasource"]


def from_export(raw: dict[str, Any]) -> dict[str, Any]:
    """An exported dashboard as Grafana would store it with a `datasource` variable.

    "Export for sharing externally" names each data source `${DS_NAME}` and lists it in
    `__inputs`; only Grafana's import UI resolves those, /api/dashboards/db does not. Each
    placeholder becomes `${datasource}`, a datasource variable, added when missing.
    """
    inputs = _datasource_inputs(raw)
    body = _replace_strings(raw, {f"${{{name}}}": "${" + DATASOURCE_VAR + "}" for name in inputs})
    for key in SERVER_FIELDS:
        body.pop(key, None)
    if inputs and DATASOURCE_VAR not in _datasource_variables(body):
        templating = body.setdefault("templating", {})
        templating.setdefault("list", [])
        templating["list"].insert(0, {
            "name": DATASOURCE_VAR, "label": "Data source", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "includeAll": False, "multi": False, "options": [], "refresh": 1,
            "regex": "", "skipUrlSync": False,
        })
    return body


# ---------------------------------------------------------------- loading


@dataclass
class Sources:
    dashboards: list[Desired]
    folders: list[FolderSpec]  # parents before children

    def by_uid(self) -> dict[str, Desired]:
        return {d.uid: d for d in self.dashboards}


def _load_module(path: Path) -> Any:
    name = f"sre_dashboards_{_slug(path.stem).replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise UsageError(f"{path.name}: {exc.__class__.__name__}: {exc}") from None
    return module


def _python_dashboards(path: Path, ctx: Any) -> list[tuple[dict[str, Any], tuple[str, ...] | None]]:
    module = _load_module(path)
    build = getattr(module, "build", None)
    folder = getattr(module, "FOLDER", None)
    if not callable(build):
        raise UsageError(f"{path.name}: defines no build(ctx) function")
    try:
        built = build(ctx)
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(f"{path.name}: build failed: {exc.__class__.__name__}: {exc}") from None
    bodies = built if isinstance(built, list) else [built]
    out = []
    for b in bodies:
        body = b if isinstance(b, dict) else to_json(b)
        out.append((body, split_folder(folder) if folder else None))
    return out


def load(directory: Path | None = None, ctx: Any = None) -> Sources:
    """Every dashboard under `directory`, finalized, with the folder tree it needs."""
    directory = directory or default_dir()
    if not directory.is_dir():
        raise UsageError(f"dashboards directory {directory} does not exist")
    ctx = ctx if ctx is not None else Context.from_project()
    found: list[Desired] = []
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if any(part.startswith((".", "_")) for part in rel.parts) or not path.is_file():
            continue
        if path.suffix == ".py":
            for body, folder in _python_dashboards(path, ctx):
                found.append(_desired(body, folder, str(rel)))
        elif path.suffix == ".json":
            try:
                raw = json.loads(path.read_text())
            except ValueError as exc:
                raise UsageError(f"{rel}: not valid JSON ({exc})") from None
            if not isinstance(raw, dict):
                raise UsageError(f"{rel}: expected a dashboard object")
            raw = raw.get("dashboard", raw) if "dashboard" in raw and "panels" not in raw else raw
            body = from_export(raw)
            if not body.get("uid"):
                body["uid"] = _slug(str(rel.with_suffix("")))[:UID_MAX]
            folder = tuple(rel.parent.parts) or None
            found.append(_desired(body, folder, str(rel)))
    seen: dict[str, str] = {}
    for d in found:
        if d.uid in seen:
            raise UsageError(f"dashboard uid {d.uid!r} is used by both {seen[d.uid]} and {d.source}")
        seen[d.uid] = d.source
    folders: dict[tuple[str, ...], FolderSpec] = {}
    for d in found:
        spec: FolderSpec | None = d.folder
        chain = []
        while spec is not None:
            chain.append(spec)
            spec = spec.parent
        for f in reversed(chain):
            folders.setdefault(f.path, f)
    ordered = sorted(folders.values(), key=lambda f: (len(f.path), f.path))
    return Sources(sorted(found, key=lambda d: d.uid), ordered)


def _desired(body: dict[str, Any], folder: tuple[str, ...] | None, source: str) -> Desired:
    uid = str(body.get("uid") or "")
    # Grafana trims the title it stores: trimmed here too, or the stored one would differ forever.
    title = str(body.get("title") or "").strip()
    body = {**body, "title": title}
    if not _UID_OK.match(uid):
        raise UsageError(f"{source}: dashboard uid {uid!r} must be 1-40 letters, digits, '-' or '_'")
    if not title:
        raise UsageError(f"{source}: dashboard {uid} has no title")
    final, digest = finalize(body, folder)
    return Desired(uid=uid, title=title, folder=FolderSpec(folder) if folder else None, body=final,
                   source=source, hash=digest, tags=list(final["tags"]))
