"""allowlist: the environments, namespaces and clusters a runbook (and the inventory) let it touch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sre.remediation.guards.base import Guard, Proposal

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class Allowlist(Guard):
    name = "allowlist"

    def check(self, s: Session, p: Proposal) -> str | None:
        g, env = p.guards, p.cfg.environment
        if g.only_environments and env not in g.only_environments:
            return f"environment {env} is not one of {', '.join(g.only_environments)} (guards.only_environments)"
        scope = p.scope
        ns = scope.get("namespace")
        if ns is not None:
            if ns not in g.only_namespaces:
                return f"namespace {ns!r} is not in guards.only_namespaces ({', '.join(g.only_namespaces) or 'none'})"
            managed = {n for r in p.cfg.kubernetes.regions.values() for n in r.namespaces}
            if managed and ns not in managed:
                return f"namespace {ns!r} is not managed here (kubernetes.regions.*.namespaces)"
        cluster = scope.get("cluster")
        if cluster is not None and cluster not in g.only_clusters:
            return f"cluster {cluster!r} is not in guards.only_clusters ({', '.join(g.only_clusters) or 'none'})"
        return None
