"""The patroni backend: Patroni's REST API, one member per PostgreSQL node (drills.ha.patroni).

- state: `GET /cluster` (members, roles, pause) from any member that answers;
- planned switch: `POST /switchover {leader, candidate}`; Patroni demotes, promotes and rejoins;
- a Patroni standby cluster in the other region is promoted by removing `standby_cluster` from
  its dynamic configuration (`PATCH /config {"standby_cluster": null}`);
- maintenance mode: `PATCH /config {"pause": true}` and back (the drill's undo clears it);
- faults: the member's configured `fault` command (stop Patroni and PostgreSQL as a lost machine
  would) and `restore` command; Patroni rejoins the restored node as a standby itself.

Credentials: `restapi.authentication` of Patroni, as basic auth, the password from a secret reference.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import httpx

from sre.drills.ha.base import Detail, HaError, NodeControl, run_command, wait_promoted, writable_now
from sre.errors import UsageError

if TYPE_CHECKING:
    from sre.config import PatroniHa, PatroniMember, SreConfig
    from sre.drills.nodes import Member

LEADER_ROLES = ("leader", "standby_leader")
# Patroni's own defaults (patroni/dcs/__init__.py, config.py): what a cluster runs without a setting.
DEFAULTS = {"ttl": 30.0, "loop_wait": 10.0, "retry_timeout": 10.0}
SWITCHOVER_TIMEOUT = 90.0  # Patroni answers the POST once it saw the new leader (it polls up to 2 x loop_wait)
REJOIN_TIMEOUT = 120.0


class PatroniControl(NodeControl):
    name = "patroni"

    def __init__(self, cfg: SreConfig, cluster: str, members: list[Member]) -> None:
        super().__init__(cfg, cluster, members)
        if cfg.drills.ha.patroni is None:
            raise UsageError("drills.ha.backend is patroni: configure drills.ha.patroni (members, credentials)")
        self.conf: PatroniHa = cfg.drills.ha.patroni
        missing = [n for n in self.members if n not in self.conf.members]
        if missing:
            raise UsageError(f"drills.ha.patroni.members lacks {', '.join(missing)} (one entry per PostgreSQL node)")
        auth = None
        if self.conf.username and self.conf.password is not None:
            auth = httpx.BasicAuth(self.conf.username, self.conf.password.resolve().get_secret_value())
        self._pending: tuple[threading.Thread, dict[str, Any], str, str] | None = None
        self.http = httpx.Client(auth=auth, timeout=self.conf.timeout,
                                 verify=str(self.conf.ca_file) if self.conf.ca_file else True)

    # ------------------------------------------------------------------ REST

    def member(self, name: str) -> PatroniMember:
        return self.conf.members[name]

    def request(self, name: str, method: str, path: str, *, json: Any = None, timeout: float | None = None,
                ok: tuple[int, ...] = (200,)) -> httpx.Response:
        url = self.member(name).url.rstrip("/") + path
        try:
            resp = self.http.request(method, url, json=json, timeout=timeout or self.conf.timeout)
        except httpx.HTTPError as exc:
            raise HaError(f"Patroni {name} ({url}): {exc.__class__.__name__}: {exc}") from None
        if resp.status_code not in ok:
            if resp.status_code == 401:
                raise HaError(f"Patroni {name} refused {method} {path}: 401 (check drills.ha.patroni.username and "
                              "password against restapi.authentication)")
            raise HaError(f"Patroni {name} answered {method} {path} with {resp.status_code}: {resp.text.strip()[:200]}")
        return resp

    def state(self, prefer: str | None = None) -> dict[str, Any]:
        """`GET /cluster` from the first member that answers (`prefer` first)."""
        names = sorted(self.members, key=lambda n: n != prefer)
        last: Exception | None = None
        for name in names:
            try:
                return dict(self.request(name, "GET", "/cluster", timeout=min(self.conf.timeout, 2.0)).json())
            except (HaError, ValueError) as exc:
                last = exc
        raise HaError(f"no Patroni member answered GET /cluster: {last}")

    def leader(self, prefer: str | None = None) -> str | None:
        found = [m["name"] for m in self.state(prefer).get("members", []) if m.get("role") in LEADER_ROLES]
        return found[0] if len(found) == 1 else None

    def settings(self) -> dict[str, float]:
        last: Exception | None = None
        for name in self.members:  # any member: the one asked first may be the lost one
            try:
                conf = self.request(name, "GET", "/config", timeout=min(self.conf.timeout, 2.0)).json() or {}
                return {k: float(conf.get(k, v)) for k, v in DEFAULTS.items()}
            except (HaError, ValueError) as exc:
                last = exc
        raise HaError(f"no Patroni member answered GET /config: {last}")

    def problems(self, *, mode: str, kind: str, failback: bool, src: Member, dst: Member) -> tuple[list[str], list[str]]:
        problems: list[str] = []
        state = self.state()
        members = {m["name"]: m for m in state.get("members", [])}
        if state.get("pause"):
            problems.append("Patroni is in maintenance mode (pause): resume it first (patronictl resume)")
        leader = [n for n, m in members.items() if m.get("role") in LEADER_ROLES]
        if leader != [src.name]:
            problems.append(f"Patroni's leader is {', '.join(leader) or 'nobody'}, not {src.name}")
        cand = members.get(dst.name)
        if cand is None:
            problems.append(f"{dst.name} is not a member of the Patroni cluster")
        elif cand.get("state") not in ("running", "streaming"):
            problems.append(f"{dst.name} is {cand.get('state') or 'in an unknown state'}, not running")
        elif (cand.get("tags") or {}).get("nofailover"):
            problems.append(f"{dst.name} is tagged nofailover: Patroni will not promote it")
        if mode == "unplanned" or kind == "observed":
            m = self.member(src.name)
            if not m.fault:
                problems.append(f"losing {src.name} needs drills.ha.patroni.members.{src.name}.fault")
            if not m.restore:
                problems.append(f"bringing {src.name} back needs drills.ha.patroni.members.{src.name}.restore")
        return problems, []

    # ------------------------------------------------------------------ orchestrated

    def switchover(self, old: Member, new: Member) -> Detail:
        """`POST /switchover`, and on as soon as `new` takes writes: Patroni answers the request a
        second or more after the switch (it checks the result once a second), and the DNS step must
        not wait for that. The answer is checked when the old leader is awaited as a replica."""
        t0 = time.monotonic()
        answer: dict[str, Any] = {}

        def post() -> None:
            try:
                answer["text"] = self.request(old.name, "POST", "/switchover", timeout=SWITCHOVER_TIMEOUT,
                                              json={"leader": old.name, "candidate": new.name}).text.strip()
            except Exception as exc:
                answer["error"] = exc

        thread = threading.Thread(target=post, name="sre-patroni-switchover", daemon=True)
        thread.start()
        self._pending = (thread, answer, old.name, new.name)

        def failed() -> None:
            if not thread.is_alive():
                self._check_answer()

        wait_promoted(new, SWITCHOVER_TIMEOUT, failed)
        return {"promoted_after_seconds": round(time.monotonic() - t0, 4),
                "patroni": answer.get("text", "answer pending")}

    def _check_answer(self) -> None:
        """Patroni's answer to the last switchover: wait for it; raise unless it reports success."""
        if self._pending is None:
            return
        thread, answer, old, new = self._pending
        thread.join(SWITCHOVER_TIMEOUT)
        self._pending = None
        if "error" in answer:
            raise answer["error"]
        text = answer.get("text", "no answer")
        if f'"{new}"' not in text or not text.startswith("Successfully"):
            raise HaError(f"Patroni switchover {old} -> {new}: {text}")

    def failover(self, new: Member) -> Detail:
        """Promote `new` with the leader lost: `POST /failover` to it by name (allowed in maintenance
        mode); a standby cluster's leader is promoted by dropping its standby_cluster configuration."""
        t0 = time.monotonic()
        role = self.request(new.name, "GET", "/patroni").json().get("role")
        if role == "standby_leader":
            return {**self.promote_standby_cluster(new), "seconds": round(time.monotonic() - t0, 4)}
        resp = self.request(new.name, "POST", "/failover", json={"candidate": new.name}, timeout=SWITCHOVER_TIMEOUT)
        answer = resp.text.strip()
        if f'"{new.name}"' not in answer or not answer.startswith("Successfully"):
            raise HaError(f"Patroni failover to {new.name}: {answer}")
        self.waitwritable_now(new, REJOIN_TIMEOUT)
        return {"patroni": answer, "seconds": round(time.monotonic() - t0, 4)}

    def promote_standby_cluster(self, node: Member) -> Detail:
        """A standby cluster's leader becomes a primary: its `standby_cluster` configuration goes."""
        self.request(node.name, "PATCH", "/config", json={"standby_cluster": None})
        self.waitwritable_now(node, REJOIN_TIMEOUT)
        return {"promoted_standby_cluster": node.name}

    def waitwritable_now(self, node: Member, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if writable_now(node):
                return
            if time.monotonic() > deadline:
                raise HaError(f"{node.name} does not accept writes {timeout:.0f}s after Patroni's switch")
            time.sleep(0.05)

    # ------------------------------------------------------------------ faults

    def lose(self, node: Member) -> Detail:
        return {"lost": node.name, **run_command(self.member(node.name).fault, f"losing {node.name}")}

    def restore(self, node: Member) -> Detail:
        if self._answers(node.name):
            return {"restored": node.name, "already_running": True}
        out = run_command(self.member(node.name).restore, f"restoring {node.name}")
        deadline = time.monotonic() + REJOIN_TIMEOUT
        while not self._answers(node.name):
            if time.monotonic() > deadline:
                raise HaError(f"{node.name}'s Patroni does not answer {REJOIN_TIMEOUT:.0f}s after its restore")
            time.sleep(0.1)
        return {"restored": node.name, **out}

    def _answers(self, name: str) -> bool:
        try:
            self.request(name, "GET", "/patroni", timeout=1.0)
            return True
        except HaError:
            return False

    def rejoin(self, old: Member, new: Member) -> Detail:
        """Patroni rejoins a former leader itself (pg_rewind when use_pg_rewind is on): start it if it
        was lost, then wait until Patroni reports it as a running replica of `new`."""
        self._check_answer()
        restored = self.restore(old)
        deadline = time.monotonic() + REJOIN_TIMEOUT
        while True:
            members = {m["name"]: m for m in self.state(new.name).get("members", [])}
            mine, leader = members.get(old.name, {}), members.get(new.name, {})
            if (leader.get("role") in LEADER_ROLES and mine.get("role") in ("replica", "sync_standby")
                    and mine.get("state") in ("running", "streaming")):
                return {"rejoined": old.name, "by": "patroni", "timeline": mine.get("timeline"),
                        "lag": mine.get("lag"), "restored": not restored.get("already_running", False)}
            if time.monotonic() > deadline:
                raise HaError(f"Patroni did not rejoin {old.name} as a replica of {new.name} within "
                              f"{REJOIN_TIMEOUT:.0f}s (it is {mine.get('role', 'absent')}, {mine.get('state', '-')})")
            time.sleep(0.1)

    # ------------------------------------------------------------------ maintenance mode

    def hold(self) -> Detail:
        self.holding = True  # before the request: a set that answers late is still cleared
        self.request(next(iter(self.members)), "PATCH", "/config", json={"pause": True})
        self._wait_pause(True)
        return {"maintenance_mode": True}

    def release(self) -> Detail:
        """Clear maintenance mode; asks the member that answers, since the one asked first may be lost."""
        last: Exception | None = None
        for name in self.members:
            try:
                self.request(name, "PATCH", "/config", json={"pause": False})
                self._wait_pause(False)
                self.holding = False
                return {"maintenance_mode": False}
            except HaError as exc:
                last = exc
        raise HaError(f"maintenance mode not cleared: {last}")

    def _wait_pause(self, value: bool, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while bool(self.state().get("pause")) != value:
            if time.monotonic() > deadline:
                raise HaError(f"Patroni did not report pause={value} within {timeout:.0f}s")
            time.sleep(0.05)


