"""backup.take: take one backup of a configured backup set now (what `sre backup take` does).

Refused for a pgBackRest stanza (pgBackRest takes its own backups) and when a backup of this
stamp already exists; a failed dump never leaves an object that looks like a backup
(sre.checks.backup_take).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from sre.checks.backup_take import TakeError, take_backup
from sre.errors import SreError, UsageError
from sre.remediation.actions import Action, ActionContext, ActionError, ActionRefused, Params

if TYPE_CHECKING:
    from sre.config import SreConfig


class BackupParams(Params):
    backup: str = Field(min_length=1, description="The backup set, as named under `backups:`.")


class TakeBackup(Action):
    name = "backup.take"
    params_model = BackupParams

    def target(self, p: BackupParams) -> str:
        return f"backup/{p.backup}"

    def check_target(self, p: BackupParams, cfg: SreConfig) -> str | None:
        bcfg = cfg.backups.get(p.backup)
        if bcfg is None:
            return f"no backup set {p.backup!r} (backups: {', '.join(sorted(cfg.backups)) or 'none'})"
        if bcfg.format == "pgbackrest":
            return f"backups.{p.backup} is a pgBackRest stanza: pgBackRest takes its backups, not sre"
        return None

    def describe(self, p: BackupParams) -> str:
        return (f"would take a backup of set {p.backup} now (as sre backup take {p.backup}: server-side "
                "encryption, SHA-256 sidecar, aborted upload on failure)")

    def run(self, p: BackupParams, ctx: ActionContext) -> dict[str, Any]:
        try:
            out = take_backup(ctx.cfg, p.backup)
        except (TakeError, UsageError) as exc:
            raise ActionRefused(str(exc)) from None
        except SreError as exc:
            raise ActionError(f"backup {p.backup}: {exc}") from None
        return {k: out[k] for k in ("backup", "bucket", "key", "size", "seconds") if k in out}
