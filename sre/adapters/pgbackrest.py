"""pgBackRest commands for one stanza: info, verify, repo-ls, restore (and backup, for `take`).

Every command runs as the repository's OS user (pgBackRest refuses to share a repository
between users), with only the environment it needs: PATH, the user's HOME and the configured
`PGBACKREST_*` secrets. Nothing else of the service's environment (state URL, DSNs, tokens)
reaches it. Options from the config go on the command line as `--key=value`; secrets never do,
since command lines are visible to every user of the host.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sre.errors import UnreachableError

if TYPE_CHECKING:
    from sre.config import PgBackRestSet

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class PgBackRestError(UnreachableError):
    """A pgbackrest command failed; the message is its last error line."""


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str


class PgBackRest:
    def __init__(self, cfg: PgBackRestSet) -> None:
        self.cfg = cfg

    def _argv(self, command: str, *args: str, stanza: bool = True) -> list[str]:
        argv = [self.cfg.binary]
        if self.cfg.config is not None:
            argv.append(f"--config={self.cfg.config}")
        if stanza:
            argv.append(f"--stanza={self.cfg.stanza}")
        argv += [f"--{k}={v}" for k, v in self.cfg.options.items()]
        return [*argv, command, *args]

    def env(self) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", DEFAULT_PATH), "LANG": "C.UTF-8"}
        user = self.cfg.os_user if os.geteuid() == 0 else None
        if user:
            pw = pwd.getpwnam(user)
            env.update(HOME=pw.pw_dir, USER=user, LOGNAME=user)
        elif "HOME" in os.environ:
            env["HOME"] = os.environ["HOME"]
        for name, ref in self.cfg.env.items():
            env[name] = ref.resolve().get_secret_value()
        return env

    def run(self, command: str, *args: str, timeout: float | None = None, check: bool = True,
            cwd: Path | None = None) -> Completed:
        argv = self._argv(command, *args)
        kwargs: dict[str, Any] = {}
        user = self.cfg.os_user if os.geteuid() == 0 else None
        if user:
            pw = pwd.getpwnam(user)
            kwargs = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        limit = timeout if timeout is not None else self.cfg.timeout
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=limit, check=False,
                                  env=self.env(), cwd=str(cwd or "/"), stdin=subprocess.DEVNULL, **kwargs)
        except subprocess.TimeoutExpired:
            raise PgBackRestError(f"pgbackrest {command} did not finish within {limit:.0f}s") from None
        except OSError as exc:
            raise PgBackRestError(f"cannot run {self.cfg.binary}: {exc.strerror or exc}",
                                  hint="install pgBackRest (Debian: apt-get install pgbackrest)") from None
        done = Completed(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise PgBackRestError(f"pgbackrest {command} exited {proc.returncode}: {last_error(done)}")
        return done

    def info(self) -> dict[str, Any]:
        """The stanza's entry of `pgbackrest info --output=json`."""
        out = self.run("info", "--output=json", timeout=300).stdout
        try:
            stanzas = json.loads(out)
        except json.JSONDecodeError:
            raise PgBackRestError("pgbackrest info --output=json did not print JSON") from None
        for entry in stanzas:
            if entry.get("name") == self.cfg.stanza:
                return dict(entry)
        raise PgBackRestError(f"pgbackrest info knows no stanza {self.cfg.stanza!r}")

    def repo_ls(self, path: str) -> dict[str, dict[str, Any]]:
        """`repo-ls PATH --recurse --output=json`: relative name -> {type, size, time}."""
        out = self.run("repo-ls", path, "--recurse", "--output=json", timeout=600).stdout
        try:
            listing: dict[str, dict[str, Any]] = json.loads(out)
        except json.JSONDecodeError:
            raise PgBackRestError("pgbackrest repo-ls --output=json did not print JSON") from None
        return listing

    def verify(self) -> Completed:
        """`pgbackrest verify`: exit 0 when the repository's checksums and archive are sound."""
        return self.run("verify", "--output=text", "--verbose", check=False)

    def restore(self, pg_path: Path, *args: str) -> Completed:
        """Restore into `pg_path` (an empty directory the OS user owns)."""
        return self.run("restore", f"--pg1-path={pg_path}", *args, cwd=pg_path.parent)

    def backup(self, backup_type: str = "full") -> Completed:
        return self.run("backup", f"--type={backup_type}", "--start-fast")


def last_error(done: Completed) -> str:
    """The most telling line of a failed command's output (its ERROR line, else its last line)."""
    lines = [ln.strip() for ln in (done.stderr + "\n" + done.stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln]
    line = (errors or lines or [f"exit code {done.returncode}"])[0 if errors else -1]
    return line.split("ERROR: ", 1)[-1]
