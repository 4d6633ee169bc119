"""Dashboards to Grafana: plan and apply behind the provisioning `Target` interface.

The plan costs one paged `GET /api/search` (every folder and dashboard, 5,000 a page) when
nothing changed: each managed dashboard carries `managed-by:sre` and `sre-hash:<12 hex>`
tags, so comparing the hash, title, tags and folder of each search hit with the code is enough.
Only a dashboard whose hit differs is fetched, for its diff and to tell a change in code
(live content still hashes to its tag: update) from a hand edit (it does not: drift). `deep`
fetches every managed dashboard to catch hand edits that leave title, tags and folder alone.

Apply creates missing folders parents first (nested paths), then saves dashboards with a
bounded number of requests at once, always with `folderUid`; `prune` deletes dashboards tagged
as managed and absent from code, never another one. A dashboard whose uid is held by one without
the `managed-by:sre` tag is refused unless `--adopt` names its uid.

Grafana up to 11.2 keeps one dashboard per title in a folder, and a save with `overwrite` whose
title is held by another dashboard lands in *that* dashboard (the sent uid is ignored). So an
update whose title is taken in its folder is refused in the plan (after one `GET /api/health`
says the server is older than 11.3), the uid Grafana answers is compared with the one sent, and a
managed-looking dashboard that carries the content of another uid is never pruned. A 403 on one
object (folder permissions) fails that object, named with its folder; the rest applies.

Other refusals, each one object's outcome (`grafana_refusals.py`): a dashboard provisioned from
files (`sre up` renders them) is refused, never saved or deleted over; a folder named "General"
is refused by the plan; a create that meets a uid made meanwhile (412 version-mismatch) and a
folder beyond Grafana's nesting depth fail with what to do. `GrafanaTarget` is this module behind
the provisioning `Target` interface.
"""

from __future__ import annotations

from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sre.adapters.grafana import Grafana, GrafanaError, GrafanaForbidden
from sre.errors import SreError, UnreachableError, UsageError
from sre.provision.dashboards import (
    Desired,
    Sources,
    comparable,
    dashboard_hash,
    is_managed,
    load,
    tag_hash,
)
from sre.provision.dashkit import Context
from sre.provision.grafana_refusals import (
    PROVISIONED,
    describe_forbidden,
    explain_refusal,
    is_provisioned_refusal,
    overwrote_other,
    reserved_folder_name,
    titles_unique,
)
from sre.provision.plan import Action, Change, Plan, claim, unified_diff
from sre.provision.target import ChangeFailed, ChangeRefused, Target
from sre.telemetry import get_logger

if TYPE_CHECKING:
    from sre.adapters.grafana import Grafana
    from sre.config import SreConfig

log = get_logger("sre.provision.grafana")
TARGET = "grafana"
OVERWRITING = (Action.update, Action.drift)  # the actions saved with overwrite: true


@dataclass
class Live:
    folders: dict[str, dict[str, Any]]  # uid -> search hit
    dashboards: dict[str, dict[str, Any]]  # uid -> search hit
    pages: int = 0

    def folder_path(self, folder_uid: str) -> tuple[str, ...]:
        """Titles from the root down to a live folder (empty: the root level)."""
        path: list[str] = []
        seen: set[str] = set()
        while folder_uid and folder_uid in self.folders and folder_uid not in seen:
            seen.add(folder_uid)
            hit = self.folders[folder_uid]
            path.append(str(hit.get("title", "")))
            folder_uid = str(hit.get("folderUid") or "")
        return tuple(reversed(path))

    def folder_by_title(self, title: str, parent_uid: str) -> dict[str, Any] | None:
        for hit in self.folders.values():
            if hit.get("title") == title and (hit.get("folderUid") or "") == parent_uid:
                return hit
        return None


def list_live(grafana: Grafana, page_size: int = 5000) -> Live:
    """Every folder and dashboard in one paged search (the cost of a plan with nothing changed)."""
    live = Live({}, {})
    for page in grafana.search_pages(page_size=page_size):
        live.pages += 1
        for hit in page:
            if hit.get("type") == "dash-folder":
                live.folders[str(hit["uid"])] = hit
            elif hit.get("type") == "dash-db":
                live.dashboards[str(hit["uid"])] = hit
    return live


def _hit_folder(hit: dict[str, Any]) -> str:
    return str(hit.get("folderUid") or "")


# ---------------------------------------------------------------- plan


def _plan_folders(sources: Sources, live: Live) -> tuple[list[Change], dict[str, str]]:
    """Folder changes, and each desired folder uid -> the uid it has (or will have) in Grafana.

    A folder is found by its uid, else by title under the same parent (one made by hand is
    reused rather than duplicated: Grafana refuses two folders of one name under one parent).
    """
    changes: list[Change] = []
    resolved: dict[str, str] = {}
    for spec in sources.folders:
        parent_uid = resolved.get(spec.parent.uid, spec.parent.uid) if spec.parent else ""
        hit = live.folders.get(spec.uid) or live.folder_by_title(spec.title, parent_uid)
        want = {"uid": spec.uid, "title": spec.title, "parentUid": parent_uid}
        if hit is None and reserved_folder_name(spec.title):
            resolved[spec.uid] = spec.uid
            changes.append(Change("folder", spec.name, Action.create, desired=want, refusal=(
                f"Grafana reserves the folder name {spec.title!r} for its root folder: rename the directory")))
            continue
        if hit is None:
            resolved[spec.uid] = spec.uid
            changes.append(Change("folder", spec.name, Action.create, desired=want))
            continue
        uid = str(hit["uid"])
        resolved[spec.uid] = uid
        if hit.get("title") != spec.title:
            changes.append(Change("folder", spec.name, Action.update, desired={**want, "uid": uid}, live=hit,
                                  diff=unified_diff(hit.get("title", ""), spec.title, spec.name),
                                  reason="renamed in Grafana"))
        elif _hit_folder(hit) != parent_uid:
            changes.append(Change("folder", spec.name, Action.drift, desired={**want, "uid": uid}, live=hit,
                                  reason=f"moved under {hit.get('folderTitle') or 'the root'} in Grafana; "
                                         "apply moves it back"))
        else:
            note = "" if uid == spec.uid else f"existing folder {uid} reused"
            changes.append(Change("folder", spec.name, Action.unchanged, desired={**want, "uid": uid}, live=hit,
                                  reason=note))
    return changes, resolved


def _quick_equal(d: Desired, hit: dict[str, Any], folder_uid: str) -> bool:
    return (tag_hash(hit.get("tags")) == d.hash and hit.get("title") == d.title
            and sorted(hit.get("tags") or []) == sorted(d.tags) and _hit_folder(hit) == folder_uid)


def _dashboard_change(grafana: Grafana, live: Live, d: Desired, folder_uid: str, deep: bool,
                      adopt: Collection[str]) -> Change:
    desired_info = {"desired": d, "folder_uid": folder_uid}
    hit = live.dashboards.get(d.uid)
    if hit is None:
        return Change("dashboard", d.uid, Action.create, desired=desired_info,
                      reason=f"{d.title} in {d.folder.name if d.folder else 'the root'}")
    if not is_managed(hit.get("tags")):
        reason, refusal = claim("dashboard", d.uid, adopt, f"dashboard {hit.get('title')!r} holds this uid")
        live_body = grafana.get_dashboard(d.uid).get("dashboard", {})  # the diff an adoption decides on
        return Change("dashboard", d.uid, Action.update, unified_diff(comparable(live_body), comparable(d.body), d.uid),
                      desired=desired_info, live=hit, reason=reason, refusal=refusal)
    quick = _quick_equal(d, hit, folder_uid)
    if quick and not deep:
        return Change("dashboard", d.uid, Action.unchanged, desired=desired_info, live=hit)
    got = grafana.get_dashboard(d.uid)
    live_body = got.get("dashboard", {})
    live_cmp, want_cmp = comparable(live_body), comparable(d.body)
    live_hash, applied_hash = dashboard_hash(live_body, live.folder_path(_hit_folder(hit))), tag_hash(hit.get("tags"))
    diff = unified_diff(live_cmp, want_cmp, d.uid)
    moved = _hit_folder(hit) != folder_uid
    if moved:
        diff += f"folder: {hit.get('folderTitle') or 'the root'} ({_hit_folder(hit) or '-'}) -> {folder_uid or 'the root'}\n"
    if quick and live_hash == applied_hash:
        return Change("dashboard", d.uid, Action.unchanged, desired=desired_info, live=hit)
    if (got.get("meta") or {}).get("provisioned"):  # Grafana refuses to save it: say so in the plan
        source = got["meta"].get("provisionedExternalId") or "a provisioning file"
        return Change("dashboard", d.uid, Action.drift, diff=diff, desired=desired_info, live=hit,
                      refusal=f"{PROVISIONED} (from {source})")
    if applied_hash == d.hash or live_hash != applied_hash:
        only_moved = moved and dashboard_hash(live_body, d.folder.path if d.folder else None) == applied_hash
        what = "moved by hand" if only_moved else "edited by hand in Grafana"
        return Change("dashboard", d.uid, Action.drift, diff=diff, desired=desired_info, live=hit,
                      reason=f"{what}; apply overwrites it")
    return Change("dashboard", d.uid, Action.update, diff=diff, desired=desired_info, live=hit)


def plan(grafana: Grafana, sources: Sources, live: Live, *, prune: bool = False, deep: bool = False,
         concurrency: int = 4, adopt: Collection[str] = ()) -> Plan:
    """What apply would do; requests beyond the listing: one GET per dashboard that differs."""
    folder_changes, resolved = _plan_folders(sources, live)

    def one(d: Desired) -> Change:
        folder_uid = resolved.get(d.folder.uid, d.folder.uid) if d.folder else ""
        return _dashboard_change(grafana, live, d, folder_uid, deep, adopt)

    # GETs happen only for dashboards that differ (or all managed ones with deep): run them
    # a few at a time; a plan with nothing changed makes none.
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        dash_changes = list(pool.map(one, sources.dashboards))
    _refuse_taken_titles(grafana, live, dash_changes)
    wanted = sources.by_uid()
    copies = {d.hash: d.uid for d in sources.dashboards}
    for uid, hit in sorted(live.dashboards.items()):
        if uid in wanted or not is_managed(hit.get("tags")):
            continue
        copied_from = copies.get(tag_hash(hit.get("tags")) or "")
        if copied_from is not None:
            # Saved over by Grafana's title rule: its own dashboard, not sre's to delete.
            dash_changes.append(Change("dashboard", uid, Action.drift, live=hit, refusal=(
                f"{hit.get('title')!r} carries the content of {copied_from} (Grafana saved it over this "
                "dashboard, which held the same title); not pruned: restore it from its version history")))
        elif prune:
            dash_changes.append(Change("dashboard", uid, Action.delete, live=hit,
                                       reason=f"{hit.get('title')}: managed, absent from code"))
        else:
            dash_changes.append(Change("dashboard", uid, Action.unchanged, live=hit,
                                       reason="managed but absent from code (plan --prune deletes it)"))
    return Plan(TARGET, folder_changes + dash_changes)


def _refuse_taken_titles(grafana: Grafana, live: Live, changes: list[Change]) -> None:
    """Turn an overwriting save whose title another dashboard holds in the folder into a refusal."""
    taken: list[tuple[int, dict[str, Any]]] = []
    for i, ch in enumerate(changes):
        if ch.action not in OVERWRITING or ch.refused or not ch.desired:
            continue
        d: Desired = ch.desired["desired"]
        folder_uid = ch.desired["folder_uid"]
        other = next((hit for uid, hit in sorted(live.dashboards.items())
                      if uid != d.uid and _hit_folder(hit) == folder_uid
                      and str(hit.get("title", "")).strip().lower() == d.title.strip().lower()), None)
        if other is not None:
            taken.append((i, other))
    if not taken or not titles_unique(grafana.server_version()):
        return
    for i, other in taken:
        ch = changes[i]
        d = ch.desired["desired"]
        where = d.folder.name if d.folder else "the root"
        changes[i] = ch.refuse(
            f"the title {d.title!r} is held by dashboard {other.get('uid')} in {where}: Grafana up to 11.2 "
            "would save this dashboard over that one; rename one of them")


# ---------------------------------------------------------------- apply


class GrafanaTarget(Target):
    """Dashboards and their folders in one Grafana. Apply: folders level by level (parents first),
    then dashboards and deletions `concurrency` at a time; a dashboard whose folder did not apply
    is not attempted."""

    kind = "dashboards"

    def __init__(self, grafana: Grafana, sources: Sources | None = None, *, deep: bool = False,
                 concurrency: int = 4, page_size: int = 5000, prune: bool = False,
                 adopt: Collection[str] = ()) -> None:
        super().__init__(prune=prune, adopt=adopt)
        self.grafana, self.sources = grafana, sources
        self.deep, self.concurrency, self.page_size = deep, concurrency, page_size

    @property
    def name(self) -> str:
        return TARGET

    def requests(self) -> int:
        return self.grafana.requests.count

    def list_live(self) -> Live:
        return list_live(self.grafana, page_size=self.page_size)

    def normalise(self, kind: str, body: Any) -> Any:
        return comparable(body) if kind == "dashboard" else body

    def plan(self, live: Live) -> Plan:
        if self.sources is None:
            raise UsageError("a Grafana plan needs the dashboards as code (sources)")
        return plan(self.grafana, self.sources, live, prune=self.prune, deep=self.deep,
                    concurrency=self.concurrency, adopt=self.adopt)

    def waves(self, plan: Plan) -> list[list[Change]]:
        pending = [c for c in plan.changes if c.action is not Action.unchanged]
        folders = [c for c in pending if c.kind == "folder"]
        depths = sorted({c.name.count("/") for c in folders})
        return [[c for c in folders if c.name.count("/") == depth] for depth in depths] + [
            [c for c in pending if c.kind == "dashboard"]]

    def needs(self, change: Change, plan: Plan) -> set[tuple[str, str]]:
        if change.kind == "folder":
            parent = change.name.rpartition("/")[0]
            return {("folder", parent)} if parent else set()
        if change.action is not Action.delete and change.desired:
            folder = change.desired["desired"].folder
            return {("folder", folder.name)} if folder else set()
        return set()

    def apply_change(self, change: Change) -> None:
        try:
            if change.kind == "folder":
                self._folder(change)
            elif change.action is Action.delete:
                self.grafana.delete_dashboard(change.name)
            else:
                self._save(change)
        except UnreachableError:
            raise
        except GrafanaError as exc:
            if is_provisioned_refusal(exc):
                raise ChangeRefused(PROVISIONED) from None
            if isinstance(exc, GrafanaForbidden):
                raise ChangeFailed(self._forbidden(change, exc)) from None
            raise ChangeFailed(explain_refusal(exc, change.action is Action.create)) from None
        except SreError as exc:
            raise ChangeFailed(str(exc)) from None

    def _folder(self, change: Change) -> None:
        want = change.desired
        if change.action is Action.create:
            self.grafana.create_folder(want["uid"], want["title"], want["parentUid"] or None)
        elif change.action is Action.update:
            self.grafana.rename_folder(want["uid"], want["title"])
        else:
            self.grafana.move_folder(want["uid"], want["parentUid"] or None)

    def _save(self, change: Change) -> None:
        d: Desired = change.desired["desired"]
        body = {**d.body, "id": None}
        # A create must not replace a dashboard someone made meanwhile: Grafana answers 412.
        answer = self.grafana.save_dashboard(body, change.desired["folder_uid"],
                                             overwrite=change.action is not Action.create,
                                             message=f"sre apply {d.hash}")
        answered = str(answer.get("uid") or "")
        if answered and answered != d.uid:
            raise ChangeFailed(overwrote_other(answered, d.title, d.folder.name if d.folder else "the root"))

    @staticmethod
    def _forbidden(change: Change, exc: GrafanaError) -> str:
        if change.kind == "folder":
            want = change.desired
            if change.action is Action.create:  # creating a subfolder is a write in its parent
                return describe_forbidden(exc, change.name.rpartition("/")[0] or "the root", want["parentUid"])
            return describe_forbidden(exc, change.name, want["uid"])
        if change.action is Action.delete:
            hit = change.live or {}
            return describe_forbidden(exc, str(hit.get("folderTitle") or "the root"), str(hit.get("folderUid") or ""))
        d = change.desired["desired"]
        return describe_forbidden(exc, d.folder.name if d.folder else "the root", change.desired["folder_uid"])


# ---------------------------------------------------------------- wiring


def client(cfg: SreConfig) -> Grafana:
    return Grafana.from_config(cfg.endpoints.grafana)


def sources_for(cfg: SreConfig, directory: Path | None = None) -> Sources:
    return load(directory or cfg.dashboards.dir, Context.from_project(cfg))


def targets(cfg: SreConfig, *, directory: Path | None = None, prune: bool | None = None, deep: bool = False,
            adopt: Collection[str] = ()) -> list[Target]:
    """The one Grafana target of this config (options default to the dashboards section)."""
    settings = cfg.dashboards
    return [GrafanaTarget(client(cfg), sources_for(cfg, directory), deep=deep or settings.deep,
                          concurrency=settings.concurrency, prune=settings.prune if prune is None else prune,
                          adopt=adopt)]

