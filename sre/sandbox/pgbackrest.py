"""pgBackRest in the sandbox: a PostgreSQL that archives its WAL to a repository, posix or S3.

S3 is moto behind `stunnel4`: pgBackRest 2.45 speaks only HTTPS to S3 and fails against
`moto_server --ssl` ("unexpected eof while reading"), while stunnel terminating TLS with a
self-signed certificate in front of the plain server works (docs/decisions/pgbackrest-sandbox.md).
The certificate and `repo1-storage-verify-tls=n` are the sandbox's alone.

Every pgBackRest command runs as the postgres OS user, with lock-path and log-path inside the
site's directory, so two sites (or two test runs) never share a lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from sre.local.postgres import PG_BIN, PgServer, chown_for_postgres, pg_user
from sre.local.procs import ManagedProcess, free_port, port_open, require_binary, run, wait_until

SANDBOX_S3_KEY = "sandbox"
ARCHIVE_TIMEOUT = 60  # seconds: an idle sandbox still archives a segment a minute


@dataclass
class Stunnel:
    """TLS on a free port, forwarded to a plain loopback port (moto)."""

    root: Path
    port: int
    upstream: int
    process: ManagedProcess | None = field(default=None, repr=False)

    @classmethod
    def start(cls, root: Path, upstream: int) -> Stunnel:
        exe = require_binary("stunnel", "stunnel4")
        root.mkdir(parents=True, exist_ok=True)
        cert, key = root / "cert.pem", root / "key.pem"
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
             "-keyout", str(key), "-out", str(cert)], component="stunnel", timeout=30)
        tunnel = cls(root, free_port(), upstream)
        conf = root / "stunnel.conf"
        conf.write_text(f"foreground = yes\npid =\n\n[s3]\naccept = 127.0.0.1:{tunnel.port}\n"
                        f"connect = 127.0.0.1:{upstream}\ncert = {cert}\nkey = {key}\n")
        tunnel.process = ManagedProcess(name="stunnel", cmd=[exe, str(conf)], log_path=root / "stunnel.log").start()
        tunnel.process.wait_ready(lambda: port_open(tunnel.port), timeout=10)
        return tunnel

    def stop(self) -> None:
        if self.process:
            self.process.stop()


@dataclass
class PgBackRestSite:
    """One stanza: its configuration file, its repository, and the server that archives to it."""

    root: Path
    stanza: str
    conf: Path
    server: PgServer
    repo_path: str  # a directory (posix) or a path in the bucket (s3)
    s3: dict[str, str] = field(default_factory=dict)  # repo options of an S3 repository
    own_server: bool = True

    def pgbackrest(self, *args: str, timeout: float = 300) -> str:
        exe = require_binary("pgbackrest", "pgbackrest")
        return run([exe, f"--config={self.conf}", f"--stanza={self.stanza}", *args], user=pg_user(),
                   timeout=timeout, component="pgbackrest", cwd=self.root).stdout

    def backup_set(self, *, repo_path: str | None = None, **extra: Any) -> dict[str, Any]:
        """The `backups.<name>` entry (format pgbackrest) that reads this stanza."""
        options = {"repo1-path": repo_path} if repo_path else {}
        return {"format": "pgbackrest",
                "pgbackrest": {"stanza": self.stanza, "config": str(self.conf), "options": options}, **extra}

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        return self.server.sql(query, params)

    def switch_wal(self) -> str:
        """Close the current segment (after a write, so there is one to close) and wait until archived."""
        self.sql("CREATE TABLE IF NOT EXISTS sre_sandbox_switch (at timestamptz)")
        self.sql("INSERT INTO sre_sandbox_switch VALUES (clock_timestamp())")
        name = str(self.sql("SELECT pg_walfile_name(pg_switch_wal())")[0][0])
        self.wait_archived(name)
        return name

    def wait_archived(self, name: str, timeout: float = 30) -> None:
        def archived() -> bool:
            row = self.sql("SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver")[0]
            return row[0] is not None and str(row[0]) >= name

        wait_until(archived, timeout=timeout, what=f"WAL segment {name} archived by pgBackRest")

    def backup(self, backup_type: str = "full") -> None:
        self.pgbackrest("backup", f"--type={backup_type}", timeout=600)

    def stop(self) -> None:
        if self.own_server:
            self.server.stop()


def write_conf(site_root: Path, stanza: str, server: PgServer, repo_path: str,
               s3: dict[str, str] | None = None) -> Path:
    for sub in ("lock", "log", "spool"):
        (site_root / sub).mkdir(parents=True, exist_ok=True)
        chown_for_postgres(site_root / sub)
    lines = ["[global]", f"repo1-path={repo_path}", "repo1-retention-full=4",
             f"lock-path={site_root / 'lock'}", f"log-path={site_root / 'log'}", f"spool-path={site_root / 'spool'}",
             "log-level-console=warn", "log-level-stderr=warn", "log-level-file=off",
             "start-fast=y", "compress-type=lz4", "repo1-bundle=y", f"archive-timeout={ARCHIVE_TIMEOUT}"]
    lines += [f"{k}={v}" for k, v in (s3 or {}).items()]
    lines += ["", f"[{stanza}]", f"pg1-path={server.datadir}", f"pg1-port={server.port}",
              f"pg1-socket-path={server.socket_dir}", "pg1-user=postgres", ""]
    conf = site_root / "pgbackrest.conf"
    conf.write_text("\n".join(lines))
    conf.chmod(0o640)
    chown_for_postgres(conf)
    return conf


def s3_options(bucket: str, tls_port: int) -> dict[str, str]:
    """An S3 repository on moto through stunnel (sandbox only: self-signed, unverified TLS)."""
    return {"repo1-type": "s3", "repo1-s3-bucket": bucket, "repo1-s3-endpoint": "127.0.0.1",
            "repo1-storage-port": str(tls_port), "repo1-s3-region": "us-east-1", "repo1-s3-uri-style": "path",
            "repo1-storage-verify-tls": "n", "repo1-s3-key": SANDBOX_S3_KEY, "repo1-s3-key-secret": SANDBOX_S3_KEY}


def archive_settings(conf: Path, stanza: str, copy_to: Path | None = None) -> dict[str, str]:
    """archive_mode and archive_command for pgBackRest (and, with `copy_to`, a plain copy of each
    segment there too, for a second archive that a shipper uploads)."""
    exe = require_binary("pgbackrest", "pgbackrest")
    command = f"{exe} --config={conf} --stanza={stanza} archive-push %p"
    if copy_to is not None:
        command += f" && cp %p {copy_to}/%f"
    return {"archive_mode": "on", "archive_command": command,
            "archive_timeout": f"{ARCHIVE_TIMEOUT}s"}


def start_site(root: Path, stanza: str = "main", *, s3: dict[str, str] | None = None,
               repo_path: str | None = None, copy_to: Path | None = None) -> PgBackRestSite:
    """A fresh PostgreSQL archiving to a new repository, its stanza created (no backup yet)."""
    require_binary("postgresql", "initdb", PG_BIN)
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    chown_for_postgres(root)
    server = PgServer(f"pgbackrest-{stanza}", "us-east-1", root / "data", free_port(), root / "postgres.log")
    if repo_path is None:
        repo_path = str(root / "repo") if s3 is None else f"/pgbackrest/{root.name}"
    if s3 is None:
        Path(repo_path).mkdir(parents=True, exist_ok=True)
        chown_for_postgres(Path(repo_path))
    conf = write_conf(root, stanza, server, repo_path, s3)
    if copy_to is not None:
        copy_to.mkdir(parents=True, exist_ok=True)
        chown_for_postgres(copy_to)
    run([f"{PG_BIN}/initdb", "-D", str(server.datadir), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8",
         "--locale=C"], user=pg_user(), timeout=60, component="postgresql", cwd=root)
    with (server.datadir / "postgresql.conf").open("a") as fh:
        fh.write("listen_addresses = '127.0.0.1'\nwal_level = replica\nfsync = off\nmax_wal_senders = 2\n")
        for k, v in archive_settings(conf, stanza, copy_to).items():
            fh.write(f"{k} = '{v}'\n")
    site = PgBackRestSite(root, stanza, conf, server, repo_path, s3 or {})
    server.start()
    try:
        site.pgbackrest("stanza-create")
    except BaseException:
        server.stop()
        raise
    return site


def enable_on(server: PgServer, root: Path, stanza: str, s3: dict[str, str], repo_path: str) -> PgBackRestSite:
    """Archive an existing server (the sandbox primary) with pgBackRest: archive_mode needs a restart."""
    root.mkdir(parents=True, exist_ok=True)
    chown_for_postgres(root)
    conf = write_conf(root, stanza, server, repo_path, s3)
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        for k, v in archive_settings(conf, stanza).items():
            conn.execute(f"ALTER SYSTEM SET {k} = '{v}'")
    server.stop()
    server.start()
    site = PgBackRestSite(root, stanza, conf, server, repo_path, s3, own_server=False)
    site.pgbackrest("stanza-create")
    return site


def check_tools() -> None:
    for tool in ("pgbackrest", "stunnel4", "openssl"):
        require_binary("pgbackrest sandbox", tool)


@dataclass
class PgBackRestSandbox:
    """`sre up`'s pgBackRest: the sandbox primary archiving to an S3 repository on moto (through
    stunnel), with one full backup taken at start."""

    tunnel: Stunnel
    site: PgBackRestSite
    bucket: str

    @classmethod
    def start(cls, root: Path, primary: PgServer, moto_url: str, moto_port: int,
              bucket: str = "messaging-pgbackrest-use1") -> PgBackRestSandbox:
        import boto3

        check_tools()
        s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id=SANDBOX_S3_KEY,
                          aws_secret_access_key=SANDBOX_S3_KEY)
        s3.create_bucket(Bucket=bucket)
        tunnel = Stunnel.start(root / "stunnel", moto_port)
        try:
            site = enable_on(primary, root / "site", "main", s3_options(bucket, tunnel.port), "/pgbackrest/main")
            site.backup()
        except BaseException:
            tunnel.stop()
            raise
        return cls(tunnel, site, bucket)

    def components(self) -> list[dict[str, Any]]:
        proc = self.tunnel.process
        return [{"component": f"stunnel (pgBackRest S3 repository s3://{self.bucket}, stanza {self.site.stanza})",
                 "url": f"https://127.0.0.1:{self.tunnel.port}", "pid": proc.pid if proc else None,
                 "log": str(self.tunnel.root / "stunnel.log")}]

    def stop(self) -> None:
        self.tunnel.stop()
