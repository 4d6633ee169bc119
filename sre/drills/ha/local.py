"""The local backend: pg_ctl and pg_rewind beside each node's data directory (drills.nodes).

There is no HA layer: the drill fences, catches up and promotes over SQL itself; this backend
stops a node as a crash would, starts it again and rewinds a former primary into a standby.
"""

from __future__ import annotations

from sre.drills.ha.base import Detail, NodeControl
from sre.drills.nodes import Member
from sre.drills.steps import NotUndone


class LocalControl(NodeControl):
    name = "local"

    def leader(self) -> str | None:
        live = [m.name for m in self.members.values() if m.reachable() and not m.in_recovery()]
        return live[0] if len(live) == 1 else None

    def problems(self, *, mode: str, kind: str, failback: bool, src: Member, dst: Member) -> tuple[list[str], list[str]]:
        problems, warnings = [], []
        if kind == "observed":
            problems.append("an observed drill needs an HA layer to recover on its own: drills.ha.backend is local "
                            "(pg_ctl beside the data directory), which recovers nothing by itself")
        if mode == "unplanned" and src.ctl is None:
            problems.append(f"an unplanned drill stops {src.name}: configure drills.nodes.{src.name}")
        if failback:
            problems += [f"--failback rewinds {m.name}: configure drills.nodes.{m.name}"
                         for m in (src, dst) if m.ctl is None]
        else:
            if src.ctl is None:
                warnings.append(f"{src.name} will be left fenced, not rejoined (no drills.nodes.{src.name})")
            if dst.ctl is None:
                warnings.append(f"a failure after promotion cannot be undone automatically (no drills.nodes.{dst.name})")
        return problems, warnings

    def lose(self, node: Member) -> Detail:
        node.control("an unplanned drill").stop("immediate")
        return {"stopped": node.name, "mode": "immediate"}

    def restore(self, node: Member) -> Detail:
        node.control("restarting the stopped primary").start()
        if node.in_recovery():
            raise NotUndone(f"{node.name} started as a standby, not as the primary")
        return {"started": node.name, "writable": node.writable()}

    def rejoin(self, old: Member, new: Member) -> Detail:
        # A clean stop when it still runs (a fenced primary); a node an unplanned drill stopped is
        # already down, and pg_rewind runs crash recovery on it first.
        return old.rejoin(new, stop_mode="fast")
