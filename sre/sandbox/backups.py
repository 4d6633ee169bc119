"""The sandbox's backups: buckets with good posture, a small messaging schema, one backup verified.

Used by `sre up` (and by tests that need a bucket set up the way production's should be).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from sre.adapters import s3 as s3a
from sre.checks.backups import posture, take_backup, verify
from sre.checks.bucket_posture import targets
from sre.checks.pg_client import source_dsn
from sre.checks.pitr import Target
from sre.checks.pitr_canary import ensure_table, write_canary
from sre.jobs import record_run
from sre.local.procs import wait_until

if TYPE_CHECKING:
    from sre.adapters.s3 import S3Client
    from sre.config import SreConfig
    from sre.results import CheckResult
    from sre.sandbox import Stack

# Replication needs a role in AWS; moto stores the configuration without checking it.
SANDBOX_REPLICATION_ROLE = "arn:aws:iam::123456789012:role/sre-sandbox-s3-replication"
CANARY_BODY = "sre-canary: restore test"

MESSAGING_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS messaging;
CREATE TABLE IF NOT EXISTS messaging.users (
    id bigint PRIMARY KEY,
    handle text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS messaging.conversations (
    id bigint PRIMARY KEY,
    title text NOT NULL,
    created_by bigint NOT NULL REFERENCES messaging.users(id)
);
CREATE TABLE IF NOT EXISTS messaging.messages (
    id bigint PRIMARY KEY,
    conversation_id bigint NOT NULL REFERENCES messaging.conversations(id),
    sender_id bigint NOT NULL REFERENCES messaging.users(id),
    body text NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS messages_conversation_idx ON messaging.messages (conversation_id, sent_at);
"""


def seed_messaging(dsn: str, users: int = 200, conversations: int = 50, messages: int = 2000) -> dict[str, int]:
    """Create the messaging schema with some rows and the canary message, unless it is already there."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(MESSAGING_SCHEMA)
        present = conn.execute("SELECT count(*) FROM messaging.users").fetchone()
        if not present or present[0] == 0:
            with conn.transaction():
                conn.execute("INSERT INTO messaging.users (id, handle) "
                             "SELECT g, 'user' || g FROM generate_series(1, %s) g", [users])
                conn.execute("INSERT INTO messaging.conversations (id, title, created_by) "
                             "SELECT g, 'conversation ' || g, 1 + (g %% %s) FROM generate_series(1, %s) g",
                             [users, conversations])
                conn.execute("INSERT INTO messaging.messages (id, conversation_id, sender_id, body) "
                             "SELECT g, 1 + (g %% %s), 1 + (g %% %s), md5(g::text) FROM generate_series(1, %s) g",
                             [conversations, users, messages])
                conn.execute("INSERT INTO messaging.messages (id, conversation_id, sender_id, body) "
                             "VALUES (0, 1, 1, %s)", [CANARY_BODY])
        counts = {}
        for table in ("users", "conversations", "messages"):
            row = conn.execute(f"SELECT count(*) FROM messaging.{table}").fetchone()
            counts[table] = int(row[0]) if row else 0
    return counts


def ensure_bucket(s3: S3Client, bucket: str, region: str, *, replica: str | None = None,
                  object_lock: bool = False) -> None:
    """A bucket as production's should be: versioned, SSE by default, no public access, replicated."""
    if not s3a.bucket_exists(s3, bucket):
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        if object_lock:
            kwargs["ObjectLockEnabledForBucket"] = True
        s3.create_bucket(**kwargs)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]})
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    if replica is not None:
        s3.put_bucket_replication(Bucket=bucket, ReplicationConfiguration={
            "Role": SANDBOX_REPLICATION_ROLE,
            "Rules": [{"ID": "to-other-region", "Status": "Enabled", "Priority": 1, "Filter": {"Prefix": ""},
                       "DeleteMarkerReplication": {"Status": "Enabled"},
                       "Destination": {"Bucket": f"arn:aws:s3:::{replica}", "StorageClass": "STANDARD"}}]})


def ensure_buckets(cfg: SreConfig, s3: S3Client | None = None) -> list[str]:
    """Every bucket of the config (and its replica in the other region), with good posture."""
    s3 = s3 or s3a.client(cfg.aws)
    home = cfg.aws.region
    other = next((r for r in cfg.regions if r != home), home)
    made = []
    for t in targets(cfg):
        if t.replica_bucket:
            ensure_bucket(s3, t.replica_bucket, other)
            made.append(t.replica_bucket)
        ensure_bucket(s3, t.bucket, home, replica=t.replica_bucket, object_lock=t.object_lock)
        made.append(t.bucket)
    return made


def prove_pitr(stack: Stack, cfg: SreConfig, name: str) -> tuple[str, list[CheckResult]]:
    """A canary row, a WAL switch after it, and a PITR of the set to just after the row: a note and the results."""
    assert stack.pgbackrest is not None
    bcfg = cfg.backups[name]
    dsn = source_dsn(cfg, bcfg)
    ensure_table(dsn, bcfg.pitr.canary_table)
    _seq, at = write_canary(dsn, bcfg.pitr.canary_table)
    # The target leaves the row outside the boundary; the switch commits after the target, and
    # is archived a whole second after it (archive times are whole seconds, sre.checks.wal).
    target = Target("sandbox", at + timedelta(seconds=bcfg.pitr.boundary + 0.2))
    wait_until(lambda: datetime.now(UTC) > target.at + timedelta(seconds=1.1),  # type: ignore[operator]
               timeout=10, what="the clock past the target")
    stack.pgbackrest.site.switch_wal()
    results = verify(cfg, name, restore=True, target=target)
    bad = [r for r in results if r.status == "fail"]
    pitr = next((r for r in results if r.check == "backup.pitr"), None)
    verdict = "[green]all checks pass[/]" if not bad else "[red]" + escape("; ".join(
        f"{r.check}: {r.message}" for r in bad)) + "[/]"
    took = f", PITR test {pitr.observed.get('seconds', 0):.1f}s" if pitr else ""
    return (f"backup {name}: pgBackRest stanza {stack.pgbackrest.site.stanza} in s3://{stack.pgbackrest.bucket}, "
            f"WAL archived from the primary{took}: {verdict}"), results


def prepare(stack: Stack, cfg: SreConfig, console: Any) -> list[str]:
    if not cfg.backups and not cfg.buckets:
        return []
    notes: list[str] = []
    recorded: list[CheckResult] = []
    with console.status("backups: buckets, seed data, one backup taken and verified..."):
        buckets = ensure_buckets(cfg)
        for name, bcfg in cfg.backups.items():
            if bcfg.format == "pgbackrest":
                note, results = prove_pitr(stack, cfg, name)
                notes.append(note)
                recorded += results
                continue
            counts = seed_messaging(source_dsn(cfg, bcfg))
            taken = take_backup(cfg, name)
            results = verify(cfg, name, restore=True)
            recorded += results
            bad = [r for r in results if r.status == "fail"]
            verdict = "[green]all checks pass[/]" if not bad else "[red]" + escape("; ".join(
                f"{r.check}: {r.message}" for r in bad)) + "[/]"
            restore = next((r for r in results if r.check == "backup.restore"), None)
            took = f", restore test {restore.observed.get('seconds', 0):.1f}s" if restore else ""
            notes.append(f"backup {name}: s3://{taken['bucket']}/{taken['key']} ({taken['size']} bytes, "
                         f"messaging rows {counts}){took}: {verdict}")
        checked = posture(cfg)
        recorded += checked
        # Stored as a backups.verify run, as `sre backup verify` does: `sre dr status` sees the
        # verified backup now, not after the first scheduled run.
        record_run(cfg, "backups.verify", recorded)
        bad_posture = [r for r in checked if r.status == "fail"]
        notes.append(f"buckets ({', '.join(buckets)}): " + (
            "[green]versioned, encrypted, private, replicated[/]" if not bad_posture else
            "[red]" + escape("; ".join(r.message for r in bad_posture)) + "[/]"))
    return notes
