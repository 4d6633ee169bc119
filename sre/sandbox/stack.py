"""The whole local stack: started in parallel, each part on a free loopback port in its own
directory, stopped by PID, and nothing left behind when a start fails half-way."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sre.local.postgres import chown_for_postgres
from sre.sandbox.appsim import AppSim
from sre.sandbox.exporters import Exporters, Probe
from sre.sandbox.moto import Moto
from sre.sandbox.patroni import HaTimings, PatroniPair
from sre.sandbox.pgbackrest import PgBackRestSandbox
from sre.sandbox.postgres import PgPair
from sre.sandbox.prometheus import Alertmanager, Prometheus, new_alertmanager, new_prometheus
from sre.sandbox.redis import RedisPair
from sre.sandbox.wan import Wan, WanSettings, attach

ALL = frozenset({"postgres", "prometheus", "alertmanager", "redis", "moto", "exporters", "appsim"})


@dataclass
class Stack:
    root: Path
    postgres: PgPair | None = None
    prometheus: Prometheus | None = None
    alertmanager: Alertmanager | None = None
    redis: RedisPair | None = None
    moto: Moto | None = None
    exporters: Exporters | None = None
    appsim: AppSim | None = None
    pgbackrest: PgBackRestSandbox | None = None
    wan: Wan | None = None  # replication links between the "regions", when started with wan=
    timings: dict[str, float] = field(default_factory=dict)
    _stopped: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def start(cls, components: set[str] | frozenset[str] = ALL, root: Path | None = None,
              wan: WanSettings | None = None, ha: str | None = None, ha_timings: HaTimings | None = None) -> Stack:
        """`ha="patroni"`: etcd and two Patroni-managed nodes instead of the plain PostgreSQL pair."""
        if ha not in (None, "patroni"):
            raise ValueError(f"unknown HA layer {ha!r} (known: patroni)")
        unknown = set(components) - ALL
        if unknown:
            raise ValueError(f"unknown sandbox components: {sorted(unknown)}")
        # Under /tmp, not pytest's tmp_path: the postgres OS user must reach it.
        root = Path(tempfile.mkdtemp(prefix="sre-sandbox-")) if root is None else root
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        chown_for_postgres(root)
        stack = cls(root=root)
        atexit.register(stack.stop)
        t0 = time.monotonic()

        def timed(name: str, fn: Callable[[], Any]) -> Callable[[], None]:
            def go() -> None:
                t = time.monotonic()
                fn()
                stack.timings[name] = round(time.monotonic() - t, 3)
            return go

        tasks: list[Callable[[], None]] = []
        if "alertmanager" in components:
            stack.alertmanager = new_alertmanager(root / "alertmanager")
        if "prometheus" in components:
            stack.prometheus = new_prometheus(root / "prometheus",
                                              stack.alertmanager.url if stack.alertmanager else None)
        if "postgres" in components:
            if ha == "patroni":
                tasks.append(timed("postgres", lambda: setattr(stack, "postgres", PatroniPair.start_ha(
                    root / "postgres", ha_timings))))
            else:
                tasks.append(timed("postgres", lambda: setattr(stack, "postgres", PgPair.start(root / "postgres"))))
        if stack.alertmanager:
            tasks.append(timed("alertmanager", stack.alertmanager.start))
        if stack.prometheus:
            tasks.append(timed("prometheus", stack.prometheus.start))
        if "redis" in components:
            tasks.append(timed("redis", lambda: setattr(stack, "redis", RedisPair.start(root / "redis"))))
        if "moto" in components:
            tasks.append(timed("moto", lambda: setattr(stack, "moto", Moto.start(root / "moto"))))
        if "appsim" in components:
            tasks.append(timed("appsim", lambda: setattr(stack, "appsim", AppSim.start(root / "appsim"))))
        try:
            with ThreadPoolExecutor(max_workers=len(tasks) or 1) as pool:
                futures = [pool.submit(t) for t in tasks]
                errors = [f.exception() for f in futures]
            first = next((e for e in errors if e is not None), None)
            if first is not None:
                raise first
            if wan is not None:
                stack.wan = attach(stack, wan)
            if stack.appsim and stack.prometheus:
                stack.appsim.register(stack.prometheus)
            if "exporters" in components:
                # After the servers they export: each needs its server's port.
                timed("exporters", stack.start_exporters)()
        except BaseException:
            stack.stop()
            raise
        stack.timings["total"] = round(time.monotonic() - t0, 3)
        return stack

    def components(self) -> list[dict[str, Any]]:
        """Every running part with its URL/DSN and PID, for `sre up`'s table."""
        out: list[dict[str, Any]] = []
        if self.postgres:
            for node, role in ((self.postgres.primary, "primary"), (self.postgres.replica, "replica")):
                out.append({"component": f"postgresql {role} ({node.name}, {node.region})",
                            "url": f"postgresql://postgres@127.0.0.1:{node.port}/postgres",
                            "pid": node.process.pid if node.process else None, "log": str(node.log_path)})
        if isinstance(self.postgres, PatroniPair):
            out.extend(self.postgres.components())
        for name, part in (("prometheus", self.prometheus), ("alertmanager", self.alertmanager)):
            if part is not None:
                out.append({"component": name, "url": part.url,
                            "pid": part.process.pid if part.process else None, "log": str(part.log_path)})
        if self.redis:
            for role, url, proc in (("primary", self.redis.primary_url, self.redis.primary),
                                    ("replica", self.redis.replica_url, self.redis.replica)):
                out.append({"component": f"redis {role}", "url": url, "pid": proc.pid if proc else None,
                            "log": str(self.redis.root / f"{role}.log")})
        if self.moto:
            out.append({"component": "moto (S3, Route 53)", "url": self.moto.url,
                        "pid": self.moto.process.pid if self.moto.process else None,
                        "log": str(self.moto.root / "moto.log")})
        for extra in (self.exporters, self.appsim, self.pgbackrest):
            if extra is not None:
                out.extend(extra.components())
        return out

    def start_exporters(self) -> None:
        self.exporters = Exporters.start(self.root / "exporters", postgres=self.postgres, redis=self.redis)
        if self.appsim:  # the simulated public endpoint: blackbox_exporter reads its certificate
            self.exporters.probes.append(Probe(self.appsim.tls_url, "https_expiry"))
        if self.prometheus:
            self.exporters.probes.append(Probe(f"{self.prometheus.url}/-/healthy"))
            self.exporters.register(self.prometheus)
            # Alertmanager's own metrics, for the meta rules (job="alertmanager").
            if self.alertmanager:
                self.prometheus.set_scrape_targets("alertmanager", [self.alertmanager.url.removeprefix("http://")])

    def start_pgbackrest(self) -> None:
        """The primary archives its WAL with pgBackRest to S3 on moto, and one full backup is taken
        (`sre up`; tests that need pgBackRest start their own archived server)."""
        assert self.postgres is not None and self.moto is not None
        t = time.monotonic()
        self.pgbackrest = PgBackRestSandbox.start(self.root / "pgbackrest", self.postgres.primary, self.moto.url,
                                                  self.moto.port)
        self.postgres.wait_streaming(timeout=30)
        self.timings["pgbackrest"] = round(time.monotonic() - t, 3)

    def pids(self) -> list[int]:
        return [c["pid"] for c in self.components() if c["pid"]]

    def stop(self, remove: bool = True) -> None:
        """Stop every part by its PID (reverse start order) and remove the directory."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        errors: list[str] = []
        if self.wan is not None:
            self.wan.stop()
        # PostgreSQL before the S3 path (stunnel, moto): its archiver pushes the last WAL on the way
        # down, and a push whose repository has gone hangs on as an orphan.
        for part in (self.prometheus, self.exporters, self.appsim, self.alertmanager, self.redis, self.postgres,
                     self.pgbackrest, self.moto):
            if part is None:
                continue
            try:
                part.stop()
            except Exception as exc:
                errors.append(str(exc))
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)
        atexit.unregister(self.stop)
        if errors:
            from sre.local.procs import ProcessError

            raise ProcessError("sandbox", "; ".join(errors))
