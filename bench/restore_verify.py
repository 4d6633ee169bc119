"""Backup verification with a restore test, against a bare download + pg_restore of the same dump.

A pg_dump -Fc of at least 200 MB is taken from a database of the sandbox primary into moto's S3
(`sre backup take`'s code path). Then, in the same run:

  baseline  the dump downloaded to a file (boto3's parallel ranged GETs), then `pg_restore` of
            that file into an already running server set up like the scratch instance, with the
            same pg_restore options;
  verify    `sre.checks.backups.verify(restore=True)` in a child process: freshness, completeness,
            a scratch PostgreSQL initdb'd and started, the object streamed from S3 through the
            SHA-256 and a pipe into pg_restore, sanity queries, row counts against the source,
            the scratch instance dropped.

Figures: wall-time ratio verify / baseline (goal: under 1.2x; best of RUNS interleaved runs
each, medians printed beside) and the peak RSS of the verifying process (goal: under 150 MB:
the dump is streamed, never held in memory).

    .venv/bin/python bench/restore_verify.py [--rows N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import yaml

GOAL_RATIO = 1.2
GOAL_RSS_MB = 150
MIN_DUMP = 200 * 2**20
RUNS = 5

SEED = """
CREATE SCHEMA messaging;
CREATE TABLE messaging.users (id bigint PRIMARY KEY, handle text NOT NULL);
CREATE TABLE messaging.messages (
    id bigint PRIMARY KEY, conversation_id bigint NOT NULL, sender_id bigint NOT NULL REFERENCES messaging.users(id),
    body text NOT NULL, sent_at timestamptz NOT NULL DEFAULT now());
INSERT INTO messaging.users SELECT g, 'user' || g FROM generate_series(1, 100000) g;
INSERT INTO messaging.messages (id, conversation_id, sender_id, body)
    SELECT g, g % 50000, 1 + g % 100000,
           md5(g::text) || md5((g * 3)::text) || md5((g * 7)::text) || md5((g * 11)::text)
           || md5((g * 13)::text) || md5((g * 17)::text)
    FROM generate_series(1, %(rows)s) g;
CREATE INDEX messages_conversation_idx ON messaging.messages (conversation_id, sent_at);
INSERT INTO messaging.messages (id, conversation_id, sender_id, body) VALUES (0, 1, 1, 'sre-canary');
"""

# Peak memory is VmHWM (this process's own high-water mark): ru_maxrss would report the
# parent's RSS at fork time when that was higher, since Linux carries it across exec.
CHILD = textwrap.dedent("""
    import json, sys, time
    from sre.config import load_config
    from sre.checks.backups import verify
    cfg = load_config(sys.argv[1])
    t = time.perf_counter()
    results = verify(cfg, "main", restore=True)
    seconds = time.perf_counter() - t
    hwm = next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM:"))
    print(json.dumps({"seconds": seconds, "hwm_kb": hwm,
                      "results": {r.check: [r.status, r.message] for r in results},
                      "restore": next(r.observed for r in results if r.check == "backup.restore")}))
""")


def seed(stack: Any, rows: int) -> str:
    import psycopg

    assert stack.postgres
    stack.postgres.primary.sql('CREATE DATABASE "bench"')
    dsn = stack.postgres.primary.dsn.replace("dbname=postgres", "dbname=bench")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SEED.replace("%(rows)s", str(int(rows))))
    return dsn


def write_config(stack: Any, state: Path) -> Path:
    from sre.sandbox.config import sandbox_config

    data = sandbox_config(stack, state)
    data["postgres"]["clusters"]["main"]["database"] = "bench"
    data["backups"]["main"].update({
        "tables": ["messaging.users", "messaging.messages"],
        "sanity": [{"name": "users present", "sql": "SELECT count(*) FROM messaging.users"}],
        "canary": "SELECT 1 FROM messaging.messages WHERE id = 0",
        "max_age": "1d",
        "restore": {"timeout": "30m"},
    })
    path = state / "sre.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def baseline(cfg: Any, taken: dict[str, Any], workdir: Path) -> tuple[float, float]:
    """A bare download to a file, then pg_restore of it (the server already up, not timed)."""
    from sre.adapters import s3 as s3a
    from sre.checks.pg_client import pg_binary
    from sre.checks.restore import ScratchInstance

    bcfg = cfg.backups["main"]
    scratch = ScratchInstance(bcfg.restore, "bench")
    try:
        scratch.init()
        scratch.start()
        scratch.create_database("bench")
        dump = workdir / "bench.dump"
        s3 = s3a.client(cfg.aws)
        t = time.perf_counter()
        s3a.download_file(s3, taken["bucket"], taken["key"], str(dump))
        downloaded = time.perf_counter() - t
        subprocess.run([pg_binary("pg_restore"), "--dbname", scratch.dsn("bench"), "--no-owner", "--no-privileges",
                        "--single-transaction", str(dump)], check=True, capture_output=True)
        seconds = time.perf_counter() - t
        dump.unlink()
        return seconds, downloaded
    finally:
        scratch.drop()


def verify_in_child(config: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(config)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"verify failed: {proc.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="messages rows (2M: a dump of about 220 MB)")
    args = parser.parse_args()

    from sre.checks.backups import take_backup
    from sre.config import load_config
    from sre.sandbox import Stack
    from sre.sandbox.backups import ensure_buckets

    stack = Stack.start({"postgres", "moto"})
    state = Path(tempfile.mkdtemp(prefix="sre-bench-restore-"))
    try:
        t = time.perf_counter()
        seed(stack, args.rows)
        print(f"seeded {args.rows} messages in {time.perf_counter() - t:.1f}s")
        config = write_config(stack, state)
        cfg = load_config(config)
        ensure_buckets(cfg)
        t = time.perf_counter()
        taken = take_backup(cfg, "main")
        print(f"took s3://{taken['bucket']}/{taken['key']}: {taken['size'] / 2**20:.1f} MiB in "
              f"{time.perf_counter() - t:.1f}s (pg_dump -Fc streamed into a multipart upload)")
        if taken["size"] < MIN_DUMP:
            print(f"the dump is under {MIN_DUMP // 2**20} MiB: raise --rows")
            return 1
        bases, verifies, rss = [], [], []
        for i in range(RUNS):
            # Interleaved, the order alternating, dirty pages flushed before each: machine noise
            # and the previous run's writeback hit both alike.
            for which in ("baseline", "verify") if i % 2 == 0 else ("verify", "baseline"):
                os.sync()
                if which == "baseline":
                    seconds, downloaded = baseline(cfg, taken, state)
                    bases.append(seconds)
                    print(f"  baseline {seconds:.1f}s (download {downloaded:.1f}s, "
                          f"pg_restore {seconds - downloaded:.1f}s)")
                    continue
                child = verify_in_child(config)
                failed = {c: m for c, (s, m) in child["results"].items() if s != "ok"}
                if failed:
                    print(f"verification did not pass: {failed}")
                    return 1
                verifies.append(child["seconds"])
                rss.append(child["hwm_kb"] / 1024)
                obs = child["restore"]
                tables = obs["tables"]
                print(f"  verify   {child['seconds']:.1f}s (scratch up {obs.get('scratch_start_seconds', 0):.1f}s, "
                      f"stream + pg_restore {obs.get('pg_restore_seconds', 0):.1f}s, restore test {obs['seconds']:.1f}s)")
        # Best of RUNS for the goal (as timeit does: on a shared machine, other processes only ever
        # add time); the medians are printed too.
        b, v, peak = min(bases), min(verifies), max(rss)
        ratio = v / b
        median_ratio = statistics.median(verifies) / statistics.median(bases)
        mib = taken["size"] / 2**20
        print(f"baseline (download to file + pg_restore): best {b:.1f}s, median {statistics.median(bases):.1f}s "
              f"over {RUNS} runs, {mib / b:.1f} MiB/s")
        print(f"verify with restore test:                 best {v:.1f}s, median {statistics.median(verifies):.1f}s "
              f"over {RUNS} runs, {mib / v:.1f} MiB/s")
        print("restored rows: " + ", ".join(f"{t} {c['restored']}/{c['source']}" for t, c in tables.items()))
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (machine shared)")
        print(f"ratio: {ratio:.2f}x best-to-best ({median_ratio:.2f}x median-to-median); "
              f"peak RSS of the verifying process: {peak:.0f} MB")
        ok = ratio < GOAL_RATIO and peak < GOAL_RSS_MB
        print(f"goal: verify under {GOAL_RATIO}x bare download + pg_restore ({ratio:.2f}x) and peak RSS under "
              f"{GOAL_RSS_MB} MB ({peak:.0f} MB) for a {mib:.0f} MiB dump: {'met' if ok else 'MISSED'}")
        return 0 if ok else 1
    finally:
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
