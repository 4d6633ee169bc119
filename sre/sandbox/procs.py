"""The process helpers under their former sandbox path; they live in `sre.local.procs`.

Kept so that code written against this path still imports; new code imports `sre.local.procs`.
"""

from sre.local.procs import (
    ManagedProcess,
    ProcessError,
    find_binary,
    free_port,
    pid_alive,
    port_open,
    require_binary,
    run,
    wait_until,
)

SandboxError = ProcessError

__all__ = ["ManagedProcess", "ProcessError", "SandboxError", "find_binary", "free_port", "pid_alive", "port_open",
           "require_binary", "run", "wait_until"]
