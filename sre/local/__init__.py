"""Processes and PostgreSQL servers on this machine, below every domain.

`procs`: running a command (as another OS user when we are root), starting a server process that
dies with us, waiting with a deadline, free ports, finding binaries. `postgres`: a PostgreSQL
server we start ourselves (the backup checks' scratch instances, the sandbox's nodes).
`pgctl`: `pg_ctl`, `pg_rewind` and standby settings beside a node's data directory (drills).
"""
