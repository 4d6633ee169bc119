"""Node control for drills: one interface (base.NodeControl), one backend per file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sre.drills.ha.base import NodeControl
from sre.drills.ha.local import LocalControl

if TYPE_CHECKING:
    from sre.config import SreConfig
    from sre.drills.nodes import Member


def backend(cfg: SreConfig, cluster: str, members: list[Member]) -> NodeControl:
    """The backend drills.ha.backend names, for these members (imported here: only the one in use
    is loaded, and the kubernetes one pulls in the Kubernetes client)."""
    name = cfg.drills.ha.backend
    if name == "patroni":
        from sre.drills.ha.patroni import PatroniControl

        return PatroniControl(cfg, cluster, members)
    if name == "kubernetes":
        from sre.drills.ha.kubernetes import KubernetesControl

        return KubernetesControl(cfg, cluster, members)

    return LocalControl(cfg, cluster, members)
