"""Controlling a PostgreSQL server beside its data directory: pg_ctl, pg_rewind, standby settings.

What SQL cannot do: stop a server as a crash would, start it again, and rejoin a former primary
as a standby of the new one. These run on the machine that holds the data directory, as the
directory's owner (as `sre.local.procs` runs any tool as another user, when the caller is root:
initdb, pg_ctl and pg_rewind refuse to run as root).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sre.errors import UnreachableError
from sre.local.procs import as_user_kwargs

if TYPE_CHECKING:
    from sre.config import DrillNode

# Settings a rejoined standby must not inherit from its source: pg_rewind copies the source's
# configuration files, so a former primary would otherwise take the new primary's slot name
# (a slot the new primary lacks) and a fenced node's read-only default.
STANDBY_KEYS = ("primary_conninfo", "primary_slot_name", "default_transaction_read_only")


class PgCtlError(UnreachableError):
    pass


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def conninfo(params: dict[str, str | int]) -> str:
    """A libpq key=value string, each value quoted."""
    return " ".join(f"{k}={_quote(str(v))}" for k, v in params.items())


class PgCtl:
    def __init__(self, name: str, node: DrillNode) -> None:
        self.name = name
        self.node = node

    @property
    def datadir(self) -> Path:
        return self.node.datadir

    def _cmd(self, tool: str, *args: str) -> list[str]:
        return [str(self.node.bin_dir / tool), *args]

    def _as_owner(self, env: dict[str, str] | None = None) -> dict[str, Any]:
        """subprocess arguments that run a tool as the directory's owner when we are root."""
        kwargs = as_user_kwargs(self.node.os_user)
        kwargs["env"] = {**kwargs.get("env", os.environ), **(env or {})}
        return kwargs

    def _run(self, tool: str, *args: str, timeout: float = 120, env: dict[str, str] | None = None) -> str:
        try:
            proc = subprocess.run(self._cmd(tool, *args), capture_output=True, text=True, timeout=timeout,
                                  check=False, cwd="/", stdin=subprocess.DEVNULL, **self._as_owner(env))
        except subprocess.TimeoutExpired:
            raise PgCtlError(f"{self.name}: {tool} did not finish within {timeout:.0f}s") from None
        except OSError as exc:
            raise PgCtlError(f"{self.name}: cannot run {tool}: {exc.strerror or exc}") from None
        if proc.returncode != 0:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            raise PgCtlError(f"{self.name}: {tool} exited {proc.returncode}: {tail}")
        return proc.stdout + proc.stderr

    def running(self) -> bool:
        """pg_ctl status: exit 0 running, 3 not running (4: no data directory)."""
        proc = subprocess.run(self._cmd("pg_ctl", "status", "-D", str(self.datadir)), capture_output=True,
                              text=True, timeout=30, check=False, cwd="/", stdin=subprocess.DEVNULL,
                              **self._as_owner())
        return proc.returncode == 0

    def stop(self, mode: str = "fast", timeout: int = 60) -> None:
        """fast: clean shutdown; immediate: no checkpoint, crash recovery on the next start."""
        if not self.running():
            return
        self._run("pg_ctl", "stop", "-D", str(self.datadir), "-m", mode, "-w", "-t", str(timeout),
                  timeout=timeout + 10)

    def start(self, timeout: int = 60) -> None:
        if self.running():
            return
        log = self.node.log_file or self.datadir.parent / f"{self.name}.log"
        if os.geteuid() == 0 and self.node.os_user:
            # The server writes its log as the data directory's owner; a log made by root is not its.
            owner = self.datadir.stat()
            try:
                log.touch(exist_ok=True)
                os.chown(log, owner.st_uid, owner.st_gid)
            except OSError as exc:
                raise PgCtlError(f"{self.name}: cannot prepare the log file {log}: {exc.strerror}") from None
        args = ["start", "-D", str(self.datadir), "-w", "-t", str(timeout), "-l", str(log)]
        if self.node.start_options:
            args += ["-o", self.node.start_options]
        # pg_ctl's postmaster keeps our stdout open unless told otherwise; -l sends it to the log.
        self._run("pg_ctl", *args, timeout=timeout + 10)

    def rewind(self, source: dict[str, str | int]) -> str:
        """pg_rewind this (stopped) node from a running source server; returns pg_rewind's output.

        A node stopped uncleanly is first brought to a consistent state by pg_rewind itself
        (single-user crash recovery, the default since PostgreSQL 13). The password travels in
        the environment, never on the command line.
        """
        params = dict(source)
        password = params.pop("password", None)
        env = {"PGPASSWORD": str(password)} if password else {}
        return self._run("pg_rewind", "-D", str(self.datadir), "--source-server", conninfo(params),
                         timeout=1800, env=env)

    def write_standby(self, upstream: dict[str, str | int], slot: str) -> None:
        """Make this node (stopped) a standby of `upstream` through `slot`: standby.signal plus
        primary_conninfo/primary_slot_name in postgresql.auto.conf, replacing inherited ones."""
        auto = self.datadir / "postgresql.auto.conf"
        try:
            lines = auto.read_text().splitlines() if auto.exists() else []
        except OSError as exc:
            raise PgCtlError(f"{self.name}: cannot read {auto}: {exc.strerror}") from None
        kept = [ln for ln in lines if ln.split("=", 1)[0].strip() not in STANDBY_KEYS]
        kept.append(f"primary_conninfo = {_quote(conninfo(upstream))}")
        kept.append(f"primary_slot_name = {_quote(slot)}")
        self._write(auto, "\n".join(kept) + "\n", mode=0o600)
        self._write(self.datadir / "standby.signal", "", mode=0o600)

    def _write(self, path: Path, text: str, mode: int) -> None:
        owner = self.datadir.stat()
        try:
            path.write_text(text)
            path.chmod(mode)
            if os.geteuid() == 0:
                os.chown(path, owner.st_uid, owner.st_gid)
        except OSError as exc:
            raise PgCtlError(f"{self.name}: cannot write {path}: {exc.strerror}") from None
