"""The Cloudflare DNS provider through the official SDK against the fake v4 API: records, paging,
the error envelope, 429 retried; and a failover drill that switches a Cloudflare record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sre.adapters.dns import DnsError, DnsRecord, record_for_target, target_of
from sre.adapters.dns_cloudflare import Cloudflare, client
from sre.config import DnsConfig, SecretRef
from sre.drills.failover import DrillRequest, FailoverDrill, run_drill
from tests.drill_env import EnvFactory, streaming, writable
from tests.fakes.cloudflare import FakeCloudflare

ZONE = "messaging.example"


@pytest.fixture
def fake() -> Iterator[FakeCloudflare]:
    with FakeCloudflare() as cf:
        yield cf


def provider(fake: FakeCloudflare, tmp_path: Path, *, zone_id: str | None = None, token: str | None = None) -> Cloudflare:
    secret = tmp_path / "cf-token"
    secret.write_text((token or fake.token) + "\n")
    cfg = DnsConfig(provider="cloudflare", zone=ZONE + ".", zone_id=zone_id, api_url=fake.url,
                    api_token=SecretRef(file=secret), max_retries=3)
    return Cloudflare(client(cfg), cfg.zone, cfg.zone_id)


def test_get_upsert_wait_and_proxied(fake: FakeCloudflare, tmp_path: Path) -> None:
    zid = fake.add_zone(ZONE)
    cf = provider(fake, tmp_path)
    assert cf.get_record("db.messaging.example.") is None
    change = cf.upsert_record(record_for_target("db.messaging.example.", "10.0.1.5", 60))
    assert cf.wait_insync(change) >= 0
    rec = cf.get_record("db.messaging.example")
    assert rec == DnsRecord("db.messaging.example.", "A", ["10.0.1.5"], 60, False)
    assert fake.requests_to("GET", r"^/zones$")[0].query["name"] == [ZONE]  # zone found by name, once
    # A proxied record stays proxied through an upsert, and answers TTL 1 (automatic).
    fake.put_record(zid, {"name": "www.messaging.example", "type": "A", "content": "10.0.0.1", "proxied": True})
    cf.wait_insync(cf.upsert_record(record_for_target("www.messaging.example.", "10.0.9.9", 60)))
    www = cf.get_record("www.messaging.example.")
    assert www is not None and www.proxied and www.ttl == 1 and target_of(www) == "10.0.9.9"
    assert len(fake.find(zid, "www.messaging.example")) == 1  # updated in place, not duplicated
    # SRV (host:port targets) round-trips in the interface's spelling.
    srv = "_postgresql._tcp.db.messaging.example."
    cf.wait_insync(cf.upsert_record(record_for_target(srv, "127.0.0.1:5433", 60)))
    got = cf.get_record(srv)
    assert got is not None and got.type == "SRV" and target_of(got) == "127.0.0.1:5433"
    put = fake.requests_to("POST", r"/dns_records$")[-1]
    assert put.body["data"] == {"priority": 0, "weight": 0, "port": 5433, "target": "127.0.0.1"}


def test_pages_through_the_records(fake: FakeCloudflare, tmp_path: Path) -> None:
    zid = fake.add_zone(ZONE)
    for i in range(FakeCloudflare.RECORDS_PAGE + 20):
        fake.put_record(zid, {"name": "db.messaging.example", "type": "TXT", "content": f"v{i:03d}"})
    fake.put_record(zid, {"name": "db.messaging.example", "type": "A", "content": "10.0.1.5", "ttl": 120})
    cf = provider(fake, tmp_path, zone_id=zid)
    rec = cf.get_record("db.messaging.example.")  # the A record sorts after the TXT page
    assert rec is not None and rec.value == "10.0.1.5" and rec.ttl == 120
    pages = [r.query.get("page", ["1"])[0] for r in fake.requests_to("GET", r"/dns_records$")]
    assert pages == ["1", "2"]  # and no third, empty page: result_info.total_pages says 2
    assert not fake.requests_to("GET", r"^/zones$")  # zone given by id: no lookup


def test_error_envelope_becomes_a_dns_error(fake: FakeCloudflare, tmp_path: Path) -> None:
    fake.add_zone(ZONE)
    with pytest.raises(DnsError) as unknown:
        provider(fake, tmp_path, zone_id="0" * 32).get_record("db.messaging.example.")
    assert unknown.value.code == "1001" and "Invalid zone identifier" in str(unknown.value)
    with pytest.raises(DnsError) as denied:
        provider(fake, tmp_path, token="wrong").get_record("db.messaging.example.")
    assert denied.value.code == "10000" and "wrong" not in str(denied.value)
    with pytest.raises(DnsError, match="no zone named"):
        Cloudflare(provider(fake, tmp_path).sdk, "other.example.").zone_id()


def test_429_is_retried_and_retry_after_honoured(fake: FakeCloudflare, tmp_path: Path) -> None:
    zid = fake.add_zone(ZONE)
    fake.put_record(zid, {"name": "db.messaging.example", "type": "A", "content": "10.0.1.5", "ttl": 60})
    cf = provider(fake, tmp_path, zone_id=zid)
    fake.fail_next(429, times=2, retry_after=0.2)
    rec = cf.get_record("db.messaging.example.")
    assert rec is not None and rec.value == "10.0.1.5"
    calls = fake.requests_to("GET", r"/dns_records$")
    assert len(calls) == 3 and calls[2].at - calls[1].at >= 0.19
    fake.fail_next(429, times=5, retry_after=0.05)  # beyond max_retries: a DnsError naming the code
    with pytest.raises(DnsError, match="971"):
        cf.get_record("db.messaging.example.")


@pytest.mark.slow
def test_cloudflare_drill_switches_and_restores_the_record(drill_env: EnvFactory, fake: FakeCloudflare) -> None:
    env = drill_env()
    zid = fake.add_zone(ZONE)
    record = "_postgresql._tcp.db.messaging.example."
    token = env.state_dir / "secrets" / "cloudflare-token"
    token.write_text(fake.token + "\n")
    data = yaml.safe_load(env.config_path.read_text())
    data["dns"] = {**data["dns"], "provider": "cloudflare", "zone": ZONE + ".", "records": {"db": record},
                   "api_token": {"file": str(token)}, "api_url": fake.url, "ttl": 60}
    env.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    cfg = env.config()
    fake.put_record(zid, {"name": record.rstrip("."), "type": "SRV", "ttl": 60,
                          "data": {"priority": 0, "weight": 0, "port": env.east1.port, "target": "127.0.0.1"}})

    def throttle(_d: FailoverDrill) -> None:
        fake.fail_next(429, times=1, retry_after=0.1)  # the switch's first call is rate limited

    rep = run_drill(cfg, env.store(), DrillRequest("us-east-1", "eu-west-1", failback=True, reason="cloudflare",
                                                   actor="test", hooks={"before:dns": throttle}))
    assert rep["status"] == "passed", rep["message"]
    writes = [r for r in fake.requests if r.method in ("PUT", "POST") and "dns_records" in r.path]
    assert [w.body["data"]["port"] for w in writes] == [env.west1.port, env.east1.port]  # switched, then back
    throttled = [r for r in fake.requests if r.method == "GET" and "dns_records" in r.path]
    assert len(throttled) >= 2  # the 429 was answered and the same call repeated
    (only,) = fake.find(zid, record)
    assert only["data"]["port"] == env.east1.port
    assert writable(env.east1) and streaming(env.east1, env.west1)  # the original topology is back
    assert rep["estimate"] is not None and rep["switches"][0]["dns_insync_seconds"] is not None

