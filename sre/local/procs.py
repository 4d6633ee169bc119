"""Local processes: run a command, start a server and stop it by PID, wait with a deadline, free ports."""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from sre.errors import UnreachableError

T = TypeVar("T")
BOOTSTRAP = "scripts/bootstrap"

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Resolved before any fork: the child between fork and exec must not load libraries.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
# The parent-death signal fires when the *thread* that forked the child ends, not the process:
# every part is forked from this one thread, which lives as long as the process (the stack
# starts its parts from short-lived pool threads). docs/decisions/sandbox-processes.md
_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="proc-spawn")


class ProcessError(UnreachableError):
    """A local process could not start or failed: names its component, its log and the fix."""

    def __init__(self, component: str, problem: str, log: Path | None = None, hint: str | None = None) -> None:
        msg = f"{component}: {problem}"
        if log is not None:
            msg += f" (log: {log})"
        super().__init__(msg, hint=hint)
        self.component = component


def free_port() -> int:
    """A port free on loopback now (the OS picks it; the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def wait_until(
    predicate: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str = "condition"
) -> T:
    """Poll `predicate` until it returns a truthy value or `timeout` seconds pass.

    Exceptions from the predicate count as "not yet"; the last one is named on timeout.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f": last error {last_exc!r}" if last_exc else ""
            raise TimeoutError(f"{what} not reached within {timeout:.1f}s{detail}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find_binary(name: str, *extra_dirs: str) -> str | None:
    for d in extra_dirs:
        p = Path(d) / name
        if p.exists():
            return str(p)
    return shutil.which(name)


def require_binary(component: str, name: str, *extra_dirs: str) -> str:
    path = find_binary(name, *extra_dirs)
    if path is None:
        raise ProcessError(component, f"the binary {name!r} is not installed",
                           hint=f"run {BOOTSTRAP} (installs the system packages the sandbox needs)")
    return path


def as_user_kwargs(user: str | None) -> dict[str, Any]:
    """Run a child as `user` when we are root (initdb and postgres refuse root)."""
    if user is None or os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam(user)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [],
            "env": {**os.environ, "HOME": pw.pw_dir, "USER": user, "LOGNAME": user}}


def _die_with_parent(sig: int, parent: int) -> Callable[[], None] | None:
    """A preexec_fn: the child gets `sig` when its parent dies (Linux), also if it already has."""
    if _prctl is None:
        return None
    prctl = _prctl

    def arm() -> None:
        # Runs after Popen's setuid (a change of user clears the setting), just before exec.
        prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(1)

    return arm


def run(cmd: Sequence[str], *, user: str | None = None, timeout: float = 60, cwd: Path | None = None,
        component: str = "sandbox", log: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; a non-zero exit raises ProcessError with its stderr."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, cwd=cwd,
                              check=False, **as_user_kwargs(user))
    except subprocess.TimeoutExpired:
        raise ProcessError(component, f"{Path(cmd[0]).name} did not finish within {timeout:.0f}s") from None
    if proc.returncode != 0:
        if log is not None:
            with log.open("a") as fh:
                fh.write(proc.stdout + proc.stderr)
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ProcessError(component, f"{Path(cmd[0]).name} exited {proc.returncode}: {' | '.join(tail)}", log)
    return proc


@dataclass
class ManagedProcess:
    """One server process of the stack: its PID, its log, and how to stop it."""

    name: str
    cmd: list[str]
    log_path: Path
    user: str | None = None
    cwd: Path | None = None
    env: dict[str, str] | None = None
    stop_signal: int = signal.SIGTERM
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        kwargs = as_user_kwargs(self.user)
        if self.env:
            kwargs["env"] = {**kwargs.get("env", os.environ), **self.env}
        # A new session: Ctrl-C in the terminal reaches `sre up`, which stops children in order.
        # If this process dies without stopping them (a killed test run), they get their stop signal.
        def popen() -> subprocess.Popen[bytes]:
            return subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.cwd,
                                    start_new_session=True, stdin=subprocess.DEVNULL,
                                    preexec_fn=_die_with_parent(self.stop_signal, os.getpid()), **kwargs)

        try:
            self.proc = _spawner.submit(popen).result()
        except OSError as exc:
            raise ProcessError(self.name, f"cannot start {self.cmd[0]}: {exc.strerror}", self.log_path) from None
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, probe: Callable[[], object], timeout: float = 20.0) -> None:
        def ready() -> bool:
            if not self.alive():
                raise ProcessError(self.name, f"exited with code {self.proc.returncode if self.proc else '?'} "
                                   "before becoming ready", self.log_path)
            return bool(probe())

        deadline = time.monotonic() + timeout
        while True:
            try:
                if ready():
                    return
            except ProcessError:
                raise
            except Exception:
                pass
            if time.monotonic() >= deadline:
                raise ProcessError(self.name, f"not ready within {timeout:.0f}s", self.log_path)
            time.sleep(0.03)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, self.stop_signal)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
