"""Settings: one `sre.yaml` plus `SRE_*` environment overrides, validated by pydantic.

The YAML describes the inventory (regions, databases, buckets, clusters, endpoints). Secrets
are never inlined: every credential is a `SecretRef` naming an environment variable or a file,
resolved only when used, and its value is a `SecretStr` so it never shows in `repr` or logs.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from sre.cron import crontab_trigger
from sre.errors import UsageError
from sre.redaction import register as register_secret

CONFIG_ENV = "SRE_CONFIG"
ENV_PREFIX = "SRE_"


class ConfigError(UsageError):
    """A configuration problem a person can fix; the CLI prints it and exits 2."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(where + "; ".join(problems))


# ---------------------------------------------------------------- units

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
def parse_duration(value: Any) -> float:
    """'15s', '5m', '1h', '1.5d' or a number of seconds -> seconds."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 15s, 5m or 1h")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"expected a duration such as 15s, 5m or 1h, got {value!r}")
    return float(m.group(1)) * _DURATION_UNITS[m.group(2)]


_BYTE_SIZE: TypeAdapter[ByteSize] = TypeAdapter(ByteSize)


def parse_size(value: Any) -> int:
    """'64MiB', '1GB', '512' or a number of bytes -> bytes, by pydantic's ByteSize (KB = 1000,
    KiB = 1024), with no negative sizes and the config's own words when a value is not a size."""
    if isinstance(value, bool) or (isinstance(value, int | float) and value < 0):
        raise ValueError("expected a size such as 64MiB or 1GB (not negative)")
    try:
        return int(_BYTE_SIZE.validate_python(value))
    except ValidationError:
        raise ValueError(f"expected a size such as 64MiB or 1GB, got {value!r}") from None


# What the JSON Schema (`sre config schema`, the chart's values.schema.json) says of each: a number
# or the string forms the parsers take, so an editor or Helm accepts `5m` and `64MiB` as sre does.
_DURATION_SCHEMA = {"anyOf": [{"type": "number", "minimum": 0},
                              {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d|w)?\s*$"}]}
_SIZE_SCHEMA = {"anyOf": [{"type": "number", "minimum": 0},
                          {"type": "string", "pattern": r"^\s*\d*\.?\d+\s*([KkMmGgTtPpEe][Ii]?)?[Bb]?\s*$"}]}
Seconds = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA)]
Bytes = Annotated[int, BeforeValidator(parse_size), WithJsonSchema(_SIZE_SCHEMA)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


# ---------------------------------------------------------------- secrets


class SecretRef(_Model):
    """Where a secret lives: an environment variable or a file (Kubernetes Secret, Vault agent)."""

    env: str | None = Field(None, description="Name of the environment variable holding the value.")
    file: Path | None = Field(None, description="Path of a file holding the value (trailing newline stripped).")

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file (secrets are never inlined)")
        return self

    def describe(self) -> str:
        return f"env {self.env}" if self.env else f"file {self.file}"

    def resolve(self) -> SecretStr:
        """Read the value now; raise ConfigError naming the reference, never the value.

        Every value read is registered for redaction before anyone can log it."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None or value == "":
                raise ConfigError([f"environment variable {self.env} is not set"])
        else:
            assert self.file is not None
            try:
                value = self.file.read_text().rstrip("\r\n")
            except OSError as exc:
                raise ConfigError([f"secret file {self.file}: {exc.strerror or exc}"]) from None
        register_secret(value)
        return SecretStr(value)

    def resolve_credential(self, key: str) -> SecretStr:
        """A value callers must present (a token, a password): at least MIN_CREDENTIAL_BYTES long.

        `key` names the config key in the error, never the value."""
        try:
            value = self.resolve()
        except ConfigError as exc:
            raise ConfigError([f"{key}: {p}" for p in exc.problems]) from None
        size = len(value.get_secret_value().strip().encode())
        if size < MIN_CREDENTIAL_BYTES:
            what = "is empty" if size == 0 else f"is {size} bytes long"
            raise ConfigError([f"{key}: the credential in {self.describe()} {what}; "
                               f"at least {MIN_CREDENTIAL_BYTES} bytes are needed (e.g. openssl rand -hex 32)"])
        return value


def _secret_ref(value: Any) -> Any:
    if isinstance(value, str):
        raise ValueError(
            "secrets are never inlined in sre.yaml: use {env: VAR_NAME} or {file: /path}"
        )
    return value


Secret = Annotated[SecretRef, BeforeValidator(_secret_ref)]
# Tokens and passwords the service checks: shorter ones (or empty files) refuse to start.
MIN_CREDENTIAL_BYTES = 16
_CREDENTIAL_KEYS = ("api.tokens.", "webhook.token", "webhook.password")


def is_credential(key: str) -> bool:
    """Whether the secret at config key `key` is one callers present to the service."""
    return key.startswith(_CREDENTIAL_KEYS)

# ---------------------------------------------------------------- inventory

Environment = Literal["dev", "staging", "production"]


class StateConfig(_Model):
    url: str | None = Field(
        None,
        description="SQLAlchemy URL of the state store. Default: a SQLite file under `dir`. "
        "Use postgresql+psycopg://... when several replicas share state.",
    )
    url_secret: Secret | None = Field(
        None, description="The URL from a secret instead (when it carries a password)."
    )
    dir: Path = Field(Path("var/sre"), description="State directory: SQLite file, reports, rendered files.")
    retention: Seconds = Field(
        90 * 86400.0, gt=0, description="The state.prune job deletes finished job runs (and their check "
        "results) older than this.",
    )

    def resolved_url(self) -> str:
        if self.url_secret is not None:
            return self.url_secret.resolve().get_secret_value()
        if self.url:
            # A password written into the plain URL is still a secret: masked in logs like the others.
            password = urlsplit(self.url).password
            if password:
                register_secret(unquote(password))
                register_secret(password)
            return self.url
        return f"sqlite:///{(self.dir / 'sre.db').resolve()}"


class LeaderConfig(_Model):
    """Leadership among replicas sharing a PostgreSQL state store (docs/operations.md)."""

    heartbeat: Seconds = Field(
        1.0, gt=0, description="The leader checks its lock connection this often; a failed check ends leadership."
    )
    retry: Seconds = Field(1.0, gt=0, description="A standby tries to take the lock this often.")
    timeout: Seconds = Field(
        2.0, gt=0, description="Statement and TCP timeout on the lock connection: a check slower than this fails."
    )
    catchup: Seconds = Field(
        60.0, ge=0, description="A new leader runs a slot the previous one missed when the job's last run is "
        "at most this much older than one interval (cron: the missed fire time at most this old).",
    )


class WebhookConfig(_Model):
    auth: Literal["bearer", "basic", "none"] = Field(
        "bearer", description="bearer: `token`; basic: `username` + `password`; none: only with --insecure-webhook."
    )
    token: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    max_body_bytes: Bytes = Field(1 << 20, description="Larger request bodies get 413.")

    @model_validator(mode="after")
    def _credentials_present(self) -> WebhookConfig:
        if self.auth == "bearer" and self.token is None:
            raise ValueError("auth bearer needs token: {env: ...} or {file: ...}")
        if self.auth == "basic" and (self.username is None or self.password is None):
            raise ValueError("auth basic needs username and password")
        return self


class ApiTokens(_Model):
    """Each role's tokens, as secret references. Several per role: add the new token, roll it out
    to the callers, then remove the old one, with no window of refusals."""

    webhook: list[Secret] = Field(
        default_factory=list, description="Alertmanager posting alerts (besides webhook.token / webhook.password)."
    )
    read: list[Secret] = Field(default_factory=list, description="The /api/* reads (remediations, runs, drills).")
    metrics: list[Secret] = Field(default_factory=list, description="Prometheus scraping /metrics.")
    operate: list[Secret] = Field(default_factory=list, description="Endpoints that change something (none yet).")


class ApiConfig(_Model):
    """Who may call the HTTP API (docs/operations.md#security). /healthz and /readyz are open."""

    tokens: ApiTokens = Field(default_factory=ApiTokens)
    docs: bool = Field(
        False, description="Serve /docs, /redoc and /openapi.json, without credentials (the sandbox; never in "
        "production, where it is refused).",
    )


class HttpEndpoint(_Model):
    url: str
    timeout: Seconds = 10.0


class GrafanaEndpoint(HttpEndpoint):
    token: Secret | None = Field(None, description="Service account token.")
    username: str | None = None
    password: Secret | None = None
    org_id: int | None = None


class ElasticsearchEndpoint(HttpEndpoint):
    api_key: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    ca_file: Path | None = None
    verify_certs: bool = True


class Endpoints(_Model):
    prometheus: HttpEndpoint | None = None
    alertmanager: HttpEndpoint | None = None
    grafana: GrafanaEndpoint | None = None
    elasticsearch: ElasticsearchEndpoint | None = None


class Objectives(_Model):
    rpo: Seconds = Field(300.0, description="Recovery point objective: most data loss allowed (and max backup age).")
    rto: Seconds = Field(60.0, description="Recovery time objective: most write unavailability allowed.")
    lag_warn: Seconds = 10.0
    lag_fail: Seconds = 60.0
    lag_warn_bytes: Bytes = 16 * 2**20
    lag_fail_bytes: Bytes = 64 * 2**20
    receiver_stale: Seconds = Field(
        30.0, description="A replica whose WAL receiver heard nothing for this long has a cut link (never less "
        "than wal_receiver_timeout/2 + 1 s, the silence of a healthy idle link; docs/replication.md)."
    )


class PgNode(_Model):
    name: str
    region: str
    dsn: Secret = Field(description="libpq DSN/URL of this node, as a secret reference.")
    application_name: str | None = Field(
        None, description="The application_name this replica sets in primary_conninfo, which is how the primary's "
        "pg_stat_replication names it (default: the node's name).",
    )
    slot: str | None = Field(
        None, description="The physical replication slot this replica streams through (default: a slot named like "
        "the node, if the primary has one).",
    )


class Heartbeat(_Model):
    enabled: bool = Field(
        False, description="Each replica check upserts one row on the primary and reads it back on every replica "
        "(docs/replication.md).",
    )
    table: str = Field("sre_heartbeat", description="Table of the heartbeat row ([schema.]name), created if missing.")


class PostgresCluster(_Model):
    database: str = "postgres"
    primary: PgNode
    replicas: list[PgNode] = Field(default_factory=list)
    objectives: Objectives = Field(default_factory=Objectives)
    heartbeat: Heartbeat = Field(default_factory=Heartbeat)
    connect_timeout: Seconds = Field(
        3.0, description="Bounds connecting to a node (libpq's floor is 2 s) and, again, all of its answers."
    )

    def nodes(self) -> list[PgNode]:
        return [self.primary, *self.replicas]

    def node(self, name: str) -> PgNode:
        for n in self.nodes():
            if n.name == name:
                return n
        raise KeyError(name)


class PostgresConfig(_Model):
    clusters: dict[str, PostgresCluster] = Field(default_factory=dict)


class RedisNode(_Model):
    name: str
    region: str
    url: Secret = Field(description="redis:// URL, as a secret reference.")


class RedisPair(_Model):
    primary: RedisNode
    replicas: list[RedisNode] = Field(default_factory=list)
    lag_warn_bytes: Bytes = 1 * 2**20
    lag_fail_bytes: Bytes = 16 * 2**20
    io_stale: Seconds = Field(
        15.0, description="A replica that heard nothing from its primary for longer has a stale link. Keep it above "
        "the primary's repl-ping-replica-period (10 s by default), or an idle link looks stale.",
    )
    connect_timeout: Seconds = Field(3.0, description="Bounds connecting to a node and each of its replies.")


class RedisConfig(_Model):
    pairs: dict[str, RedisPair] = Field(default_factory=dict)


class AwsConfig(_Model):
    region: str = "us-east-1"
    endpoint_url: str | None = Field(None, description="For S3/Route 53 compatible servers (moto in the sandbox).")
    access_key_id: Secret | None = None
    secret_access_key: Secret | None = None


class SanityQuery(_Model):
    name: str = Field(description="Named in the restore check's reason when the query fails.")
    sql: str = Field(description="Run on the restored database (and on the source for equal_source/within_tolerance).")
    expect: Literal["nonzero", "zero", "equal_source", "within_tolerance", "rows"] = Field(
        "nonzero", description="nonzero/zero: the first column of the first row; rows: at least one row; "
        "equal_source/within_tolerance: the same scalar on the source.",
    )
    tolerance: float = Field(0.0, description="Allowed relative difference for within_tolerance (0.05 = 5%).")


class BackupLayout(_Model):
    """Where the backups of one set are and how their time is read (docs/backups.md)."""

    key_template: str | None = Field(
        None, description="Key of one backup under the prefix; {stamp} is its time, {cluster} the cluster name. "
        "A trailing / makes each backup a folder. Default: {stamp}.dump (pg_dump), {stamp}/ (basebackup).",
    )
    stamp_format: str = Field("%Y%m%dT%H%M%SZ", description="strftime format of {stamp} (UTC).")
    time_from: Literal["key", "metadata", "last_modified"] = Field(
        "key", description="Where a backup's time comes from: the stamp in its key (free with the listing), "
        "object metadata (one HEAD for each of the two newest), or S3's LastModified. Falls back in that order.",
    )
    taken_at_metadata: str = Field("taken-at", description="User metadata key holding the ISO time taken.")
    checksum_metadata: str = Field("sha256", description="User metadata key holding the hex SHA-256 of the object.")


class BackupRestore(_Model):
    """The restore test's scratch PostgreSQL."""

    enabled: bool = Field(True, description="The backups.verify job restores the newest backup (off: integrity only).")
    scratch_dsn: Secret | None = Field(
        None, description="A server to restore into (a throwaway database is created and dropped there). "
        "Default: a private instance started by the check (initdb in scratch_dir) and removed after.",
    )
    scratch_dir: Path = Field(Path("/tmp"), description="Where the private instance's data directory is made.")
    pg_bin: Path | None = Field(
        None, description="Directory of pg_dump/pg_restore/initdb/postgres (default: PostgreSQL 15's, else PATH)."
    )
    timeout: Seconds = Field(3600.0, description="The restore test fails when it takes longer.")


class BackupTake(_Model):
    """`sre backup take`: how a backup is made and stored."""

    sse: Literal["AES256", "aws:kms"] = Field("AES256", description="Server-side encryption of uploaded objects.")
    kms_key_id: str | None = Field(None, description="KMS key for sse aws:kms (default: the bucket's).")
    basebackup_format: Literal["tar", "plain"] = Field("tar", description="pg_basebackup -F t or -F p (format basebackup).")
    part_size: Bytes = Field(16 * 2**20, description="Multipart upload part size (memory used: about 4 parts).")


class PgBackRestSet(_Model):
    """A pgBackRest stanza as a backup source (format: pgbackrest; docs/backups.md)."""

    stanza: str = Field(description="The stanza (--stanza).")
    config: Path | None = Field(None, description="pgBackRest configuration file (--config; default: pgBackRest's).")
    options: dict[str, str] = Field(
        default_factory=dict, description="More pgBackRest options, passed as --key=value (e.g. repo1-path, "
        "repo1-type, repo1-s3-bucket); secrets belong in env, never here.",
    )
    env: dict[str, Secret] = Field(
        default_factory=dict, description="Environment of the pgbackrest commands, e.g. "
        "PGBACKREST_REPO1_S3_KEY_SECRET: {env: NAME}; nothing else of the service's environment is passed.",
    )
    os_user: str | None = Field("postgres", description="OS user the commands run as when the service is root.")
    binary: str = Field("pgbackrest", description="The pgbackrest executable.")
    verify: bool = Field(True, description="backups.verify also runs `pgbackrest verify` (checksums, archive).")
    timeout: Seconds = Field(3600.0, description="Longest run of one pgbackrest command.")


class PitrSettings(_Model):
    """The point-in-time recovery test: the canary table, the default target (docs/backups.md)."""

    enabled: bool = Field(True, description="backups.verify restores to a point in time (formats with a WAL archive).")
    target: str = Field(
        "latest-minus 5m", description="Default target: an ISO time, 'latest', or 'latest-minus <duration>'."
    )
    canary_table: str = Field(
        "sre_pitr_canary", description="Table (seq, at) the backups.canary job writes on the primary every few "
        "seconds; a PITR must hold every row up to the target and none after it.",
    )
    boundary: Seconds = Field(
        1.0, description="Rows this close before the target may be missing (written before, committed after it).",
    )
    wal_segment_size: Bytes = Field(16 * 2**20, description="WAL segment size of the cluster (initdb --wal-segsize).")


class BackupConfig(_Model):
    cluster: str = Field("", description="Name under postgres.clusters of the database backed up "
                         "(PostgreSQL formats).")
    bucket: str = Field("", description="S3 bucket holding the backups (in aws.region); not for pgbackrest.")
    prefix: str = Field("", description="Key prefix of this set's backups, e.g. postgres/main/.")
    format: Literal["pg_dump", "basebackup", "pgbackrest", "redis-rdb"] = Field(
        "pg_dump", description="pg_dump: custom-format dumps (pg_dump -Fc); basebackup: pg_basebackup, tar or plain; "
        "pgbackrest: a pgBackRest stanza (pgbackrest:); redis-rdb: Redis RDB snapshots (redis:).",
    )
    pgbackrest: PgBackRestSet | None = Field(None, description="The stanza and repository (format pgbackrest).")
    pitr: PitrSettings = Field(default_factory=PitrSettings)
    redis: str | None = Field(
        None, description="Name under redis.pairs whose snapshots these are (format redis-rdb): taken from its primary."
    )
    replica_bucket: str | None = Field(
        None, description="The other region's bucket the backup bucket must replicate to (bucket posture)."
    )
    wal_prefix: str | None = Field(
        None, description="Prefix of the WAL archive: its newest segment must be younger than the RPO."
    )
    min_size_ratio: float = Field(0.5, description="A backup smaller than this fraction of the previous one fails.")
    object_lock: bool = Field(False, description="The bucket must have S3 Object Lock enabled.")
    sanity: list[SanityQuery] = Field(default_factory=list, description="Queries run on the restored database.")
    tables: list[str] = Field(default_factory=list, description="Tables whose row counts are compared with the source.")
    row_tolerance: float = Field(0.05, description="Allowed relative difference of restored and source row counts.")
    canary: str | None = Field(None, description="SQL returning at least one row in a good restore.")
    max_age: Seconds | None = Field(
        None, description="The newest backup may be this old at most (default: the cluster's objectives.rpo)."
    )
    source_node: str | None = Field(
        None, description="Node backups are taken from and row counts compared with (default: the primary)."
    )
    layout: BackupLayout = Field(default_factory=BackupLayout)
    restore: BackupRestore = Field(default_factory=BackupRestore)
    take: BackupTake = Field(default_factory=BackupTake)


class BucketConfig(_Model):
    name: str = Field(description="S3 bucket name (bucket posture is checked hourly).")
    replica_bucket: str | None = Field(None, description="The other region's bucket it must replicate to.")
    object_lock: bool = Field(False, description="The bucket must have S3 Object Lock enabled.")


class DnsConfig(_Model):
    provider: Literal["route53", "cloudflare"] = "route53"
    zone: str = Field(description="Hosted zone name, e.g. example.internal.")
    zone_id: str | None = Field(None, description="Cloudflare: the zone's id (default: looked up by zone name).")
    api_token: Secret | None = Field(None, description="Cloudflare: API token with Zone.DNS edit on the zone.")
    api_url: str | None = Field(None, description="Cloudflare: API base URL (default: the SDK's, api.cloudflare.com).")
    max_retries: int = Field(4, ge=0, description="Cloudflare: retries of 429/5xx answers (Retry-After honoured).")
    timeout: Seconds = Field(15.0, description="Cloudflare: timeout of each API request.")
    records: dict[str, str] = Field(default_factory=dict, description="Logical name -> record name.")
    ttl: int = 30
    node_targets: dict[str, str] = Field(
        default_factory=dict, description="PostgreSQL node name -> the value the record holds when it is primary: an IP "
        "address (A/AAAA), a host name (CNAME), or host:port (an SRV record '0 0 <port> <host>.'; [v6]:port for IPv6)."
    )


class KubeRegion(_Model):
    context: str | None = None
    namespaces: list[str] = Field(default_factory=list)
    deployments: dict[str, int] = Field(
        default_factory=dict, description="namespace/name -> replicas at production size (drills scale to these)."
    )


class KubernetesConfig(_Model):
    kubeconfig: Path | None = None
    host: str | None = Field(None, description="API server URL, instead of a kubeconfig (tests, in-cluster proxies).")
    token: Secret | None = None
    regions: dict[str, KubeRegion] = Field(default_factory=dict)


class JobConfig(_Model):
    """A job's trigger and enablement. `{enabled: false}` alone turns a job off; without `every` or
    `cron` a job keeps its default trigger (a job with none needs one)."""

    every: Seconds | None = None
    cron: str | None = None
    enabled: bool = True
    only_environments: list[Environment] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_trigger(self) -> JobConfig:
        if self.every is not None and self.cron is not None:
            raise ValueError("give one of every or cron, not both")
        return self


class BreakerConfig(_Model):
    max_actions: int = 20
    max_failures: int = 5
    window: Seconds = 600.0


class RecurringWindow(_Model):
    """Planned maintenance: remediation pauses from each cron fire time for `duration` (UTC)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Shown as the window's id: config:<name>.")
    cron: str = Field(description="Five-field crontab, UTC, e.g. '0 2 * * 0' (Sundays 02:00; 0 and 7 are Sunday).")
    duration: Seconds = Field(gt=0)
    reason: str = ""
    namespace: str | None = Field(None, description="Pause only this Kubernetes namespace.")
    alert: str | None = Field(None, description="Pause only this alert.")
    cluster: str | None = Field(None, description="Pause only this PostgreSQL cluster.")

    @model_validator(mode="after")
    def _one_scope(self) -> RecurringWindow:
        if sum(v is not None for v in (self.namespace, self.alert, self.cluster)) > 1:
            raise ValueError("give at most one of namespace, alert, cluster")
        crontab_trigger(self.cron)  # a ValueError names what is wrong
        return self


class RemediationConfig(_Model):
    enabled: bool = True
    dry_run: bool = False
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    public_url: str | None = Field(
        None, description="The service's URL as people reach it (https://sre.example.com): escalations link "
        "their graph as <public_url>/api/remediations/<id>/graph.png.",
    )
    maintenance: list[RecurringWindow] = Field(
        default_factory=list, description="Recurring maintenance windows (cron + duration): remediation in "
        "their scope is paused, like `sre remediation pause`.",
    )
    escalation_webhook: str | None = None
    runbooks_dir: Path | None = None


class AlertsConfig(_Model):
    runbook_base_url: str = "https://github.com/example/sre/blob/main/runbooks"
    rules_dir: Path | None = Field(None, description="Directory a Prometheus reads rule files from (plan/apply).")
    apply: bool = Field(False, description="The alerts.reconcile job applies its plan (to the rules directory or as "
                        "PrometheusRule objects); off: it plans and reports drift only.")
    prune: bool = Field(False, description="The alerts.reconcile job also deletes rule files / PrometheusRules sre "
                        "wrote that are gone from the tree (never others).")
    prometheusrule_labels: dict[str, str] = Field(default_factory=lambda: {"release": "kube-prometheus-stack"})
    prometheusrule_namespace: str = Field("monitoring", description="Namespace of the PrometheusRule objects.")
    source_dir: Path | None = Field(None, description="The rules tree: rule groups, slos/, tests/ (default: the "
                                    "alerts/ directory shipped with sre; runbooks: "
                             "remediation.runbooks_dir, default runbooks/).")
    live_absent: dict[str, str] = Field(
        default_factory=dict,
        description="Selectors this Prometheus is known to lack, each a regular expression matching the whole "
                    "selector as lint prints it (`kube_.*`, `sre_job_runs_total\\{.*status=\"error\".*\\}`), with the "
                    "reason. `sre alerts lint --live` and `sre dashboards validate --live` list them apart "
                    "instead of failing.")

    @field_validator("live_absent")
    @classmethod
    def _patterns_compile(cls, value: dict[str, str]) -> dict[str, str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"live_absent: {pattern!r} is not a regular expression: {exc}") from None
        return value
    slo_severity: dict[str, str] = Field(
        default_factory=lambda: {"page": "page", "ticket": "ticket"},
        description="The severity label of the SLO burn alerts: page (fast burn) and ticket (slow burn); e.g. "
                    "{page: ticket} where a fast burn should not wake anyone.")

    @field_validator("slo_severity")
    @classmethod
    def _slo_severity(cls, value: dict[str, str]) -> dict[str, str]:
        for kind, severity in value.items():
            if kind not in ("page", "ticket"):
                raise ValueError(f"{kind!r}: the SLO alerts are page and ticket")
            if severity not in ("page", "ticket", "info"):
                raise ValueError(f"{kind}: {severity!r} is not one of page, ticket, info (the severities runbooks "
                                 "and routes know)")
        return {"page": "page", "ticket": "ticket", **value}


class ElkConfig(_Model):
    dir: Path | None = Field(
        None, description="Directory of ILM policies and templates (default: the elk/ directory shipped with sre)."
    )
    apply: bool = Field(False, description="The elk.reconcile job applies its plan; off: it plans and reports only.")
    prune: bool = Field(
        False, description="Delete managed objects no longer in the directory (never a policy or template in use)."
    )
    data_streams: list[str] = Field(
        default_factory=list,
        description="Data streams to pre-create on apply, e.g. logs-messaging.api-production (each needs a template).",
    )
    verify: bool = Field(
        True, description="After apply, simulate a new index of each data stream and check its policy and mappings."
    )


class DashboardsConfig(_Model):
    dir: Path | None = Field(
        None, description="Directory of dashboards as code (default: the dashboards/ directory shipped with sre)."
    )
    every: Seconds | None = Field(
        None, description="Run the dashboards.reconcile job at this interval (off when unset); "
        "the same as jobs.dashboards.reconcile.every, give one of the two.",
    )
    apply: bool = Field(False, description="The dashboards.reconcile job applies its plan; off: it plans and reports only.")
    prune: bool = Field(False, description="Delete dashboards tagged managed-by:sre that are gone from code (never others).")
    deep: bool = Field(
        False, description="Plan fetches every managed dashboard (one GET each) to catch hand edits inside panels; "
        "off: one paged search, which sees edits of title, tags and folder.",
    )
    concurrency: int = Field(4, ge=1, le=32, description="Grafana requests at once during plan and apply.")


class DrillNode(_Model):
    """How a drill controls one PostgreSQL node's server: needed for unplanned drills (stop it as a
    region loss would), for --failback and for undoing a promotion (pg_rewind runs beside the data)."""

    datadir: Path = Field(description="The node's data directory, on the machine the drill runs on.")
    bin_dir: Path = Field(Path("/usr/lib/postgresql/15/bin"), description="Where pg_ctl and pg_rewind are.")
    os_user: str | None = Field("postgres", description="Run pg_ctl/pg_rewind as this user when the drill runs as root.")
    start_options: str = Field("", description="`pg_ctl start -o` options, e.g. '-p 5433 -k /run/postgresql'.")
    log_file: Path | None = Field(None, description="Server log for `pg_ctl start -l` (default: <datadir>/../<name>.log).")


class PatroniMember(_Model):
    """One node of a Patroni cluster, as a drill reaches it."""

    url: str = Field(description="Base URL of this node's Patroni REST API, e.g. http://db-east1:8008.")
    fault: list[str] = Field(
        default_factory=list, description="Command (argv) that stops this node's Patroni and PostgreSQL as a lost "
        "machine would (unplanned and observed drills), e.g. ssh db-east1 sudo systemctl kill -s KILL patroni.")
    restore: list[str] = Field(
        default_factory=list, description="Command (argv) that starts them again; Patroni then rejoins the node as "
        "a standby of the new leader.")


class PatroniHa(_Model):
    """Patroni's REST API (docs/drills.md, "HA backends")."""

    members: dict[str, PatroniMember] = Field(default_factory=dict, description="PostgreSQL node name -> its "
                                              "Patroni (the member name must be the node name).")
    username: str | None = Field(None, description="restapi.authentication.username of Patroni.")
    password: Secret | None = Field(None, description="restapi.authentication.password of Patroni.")
    ca_file: Path | None = Field(None, description="CA bundle for an HTTPS REST API.")
    timeout: Seconds = Field(5.0, gt=0, description="Timeout of each REST API request (a switchover waits longer).")


class KubernetesHa(_Model):
    """Database pods in Kubernetes, run by Patroni or an operator (docs/drills.md, "HA backends")."""

    namespace: str = Field(description="Namespace of the database pods.")
    pods: dict[str, str] = Field(default_factory=dict, description="PostgreSQL node name -> its pod.")
    statefulsets: dict[str, str] = Field(
        default_factory=dict, description="PostgreSQL node name -> the StatefulSet of its pod (fault scale_to_zero).")
    fault: Literal["delete_pod", "scale_to_zero"] = Field(
        "delete_pod", description="How the primary is lost: its pod deleted (the StatefulSet recreates it), or its "
        "StatefulSet scaled to zero (restored afterwards).")
    role_label: str = Field("role", description="Pod label holding the role (Patroni on Kubernetes: role; the "
                            "Zalando operator: spilo-role).")
    leader_values: list[str] = Field(default_factory=lambda: ["master", "primary"],
                                     description="Values of role_label that mark the primary's pod.")


class HaConfig(_Model):
    """How a drill controls the database nodes: itself, or through the platform's HA layer."""

    backend: Literal["local", "patroni", "kubernetes"] = Field(
        "local", description="local: pg_ctl/pg_rewind beside the data directories (drills.nodes); patroni: "
        "Patroni's REST API; kubernetes: lose the primary's pod through the Kubernetes API.")
    patroni: PatroniHa | None = None
    kubernetes: KubernetesHa | None = None
    stop_after: float = Field(3.0, gt=0, description="Observed drills: with nothing recovered after "
                              "objectives.rto times this factor, the drill stops, restores what it can and fails.")
    probe_interval: Seconds = Field(0.05, gt=0, description="Split-brain probe: one write to each node, directly, "
                                    "per interval.")
    poll: Seconds = Field(0.05, gt=0, description="How often an observed drill reads the HA layer's state.")


class DrillAlertsPerMode(_Model):
    planned: list[str] | None = Field(None, description="Alert names for planned drills (unset: the default).")
    unplanned: list[str] | None = Field(None, description="Alert names for unplanned drills (unset: the default).")


class DrillAlertsConfig(_Model):
    """What a drill expects of the alerting around it (docs/drills.md, "Alerting")."""

    enabled: bool = Field(True, description="Silence, watch and grade the alerts of each drill (needs "
                          "endpoints.alertmanager; endpoints.prometheus for the rules' bounds and ALERTS).")
    expected: DrillAlertsPerMode = Field(
        default_factory=DrillAlertsPerMode, description="Alerts that must fire for the drilled cluster "
        "(default: unplanned PostgresPrimaryDown and ReplicaDisconnected, planned none).")
    may_fire: DrillAlertsPerMode = Field(
        default_factory=DrillAlertsPerMode, description="Alerts of the drilled cluster that may fire without "
        "failing anything (default: the replication and PostgreSQL availability alerts).")
    stop_on: list[str] = Field(default_factory=list, description="Alerts that abort the drill (and undo it) "
                               "when they fire, e.g. the API's SLO fast burn; never silenced.")
    margin: Seconds = Field(60.0, description="Added to a rule's `for:` and evaluation interval: the bound "
                            "within which an expected alert must fire after the fault (scrape and check delays).")
    poll: Seconds = Field(2.0, gt=0, description="How often the drill reads Alertmanager's alerts.")
    settle: Seconds = Field(300.0, description="Longest wait, after a drill, for its silenced alerts to resolve "
                            "before the silences are removed.")
    deadline: Seconds = Field(3600.0, gt=0, description="A drill still running this long after it started is "
                              "stopped and undone; its silences end then.")


class DrillsConfig(_Model):
    """Failover drills (docs/drills.md)."""

    cluster: str | None = Field(None, description="postgres.clusters entry drilled (default: the only one).")
    record: str = Field("db", description="Key under dns.records of the record the application connects through.")
    app_dsn: Secret | None = Field(
        None, description="The DSN the application uses (its host is the DNS record). Default: the primary's DSN "
        "with host and port taken from the record.",
    )
    resolve: Literal["route53", "system"] = Field(
        "route53", description="How the canary finds the database: the record read through the DNS provider's API "
        "on each reconnect (no resolver serves the zone), or the system resolver.",
    )
    canary_interval: Seconds = Field(0.05, description="One canary row per interval.")
    canary_table: str = Field("sre_drill_canary", description="Table on the primary receiving canary rows.")
    health_urls: list[str] = Field(default_factory=list, description="HTTP endpoints that must answer 2xx to verify.")
    catchup_timeout: Seconds = Field(60.0, description="Longest wait for the replica to replay the final LSN.")
    http_timeout: Seconds = Field(10.0, description="Timeout of each health endpoint request.")
    nodes: dict[str, DrillNode] = Field(default_factory=dict, description="PostgreSQL node name -> server control.")
    reports_dir: Path | None = Field(None, description="Where reports are written (default: <state.dir>/reports).")
    alerts: DrillAlertsConfig = Field(default_factory=DrillAlertsConfig)
    ha: HaConfig = Field(default_factory=HaConfig)
    max_age: Seconds = Field(
        30 * 86400.0, description="DR readiness: without a passed drill of a region pair this recent, it is not ready.",
    )
    rto_history: int = Field(5, ge=1, description="DR readiness: the RTO estimate takes the median of this many "
                             "last passed drills of the pair.")


class DrConfig(_Model):
    """DR readiness (docs/dr.md): the terms of the RTO estimate a drill does not measure."""

    startup: dict[str, Seconds] = Field(
        default_factory=dict, description="namespace/name -> time a new pod of that deployment takes to serve.",
    )
    default_startup: Seconds = Field(60.0, description="Start-up time of a deployment not named in dr.startup.")
    min_replicas: int = Field(
        1, ge=0, description="A target-region deployment running fewer replicas than this makes the pair degraded.",
    )
    detection_alerts: list[str] = Field(
        default_factory=lambda: ["PostgresPrimaryDown"],
        description="Alerts that detect an unplanned loss of the source region: their longest `for:` plus the "
        "evaluation interval is the detection term.",
    )
    evaluation_interval: Seconds = Field(60.0, description="Prometheus rule evaluation interval.")
    dns_propagation: Seconds | None = Field(
        None, description="Provider propagation time to assume before a drill has measured one.",
    )


class SreConfig(_Model):
    """The whole of sre.yaml."""

    environment: Environment = "dev"
    regions: list[str] = Field(default_factory=lambda: ["us-east-1", "eu-west-1"])
    state: StateConfig = Field(default_factory=StateConfig)
    leader: LeaderConfig = Field(default_factory=LeaderConfig)
    webhook: WebhookConfig | None = None
    api: ApiConfig = Field(default_factory=ApiConfig)
    endpoints: Endpoints = Field(default_factory=Endpoints)
    postgres: PostgresConfig = Field(default_factory=PostgresConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    aws: AwsConfig = Field(default_factory=AwsConfig)
    backups: dict[str, BackupConfig] = Field(default_factory=dict)
    buckets: dict[str, BucketConfig] = Field(default_factory=dict)
    dns: DnsConfig | None = None
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig)
    jobs: dict[str, JobConfig] = Field(default_factory=dict)
    remediation: RemediationConfig = Field(default_factory=RemediationConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    drills: DrillsConfig = Field(default_factory=DrillsConfig)
    dr: DrConfig = Field(default_factory=DrConfig)
    elk: ElkConfig = Field(default_factory=ElkConfig)
    dashboards: DashboardsConfig = Field(default_factory=DashboardsConfig)

    @model_validator(mode="after")
    def _cross_refs(self) -> SreConfig:
        known = set(self.regions)
        for cname, cluster in self.postgres.clusters.items():
            for node in cluster.nodes():
                if node.region not in known:
                    raise ValueError(
                        f"postgres.clusters.{cname}: node {node.name} is in region {node.region!r}, "
                        f"not one of regions {sorted(known)}"
                    )
        for bname, backup in self.backups.items():
            if backup.format == "redis-rdb":
                if backup.redis is not None and backup.redis not in self.redis.pairs:
                    raise ValueError(f"backups.{bname}.redis: no redis pair named {backup.redis!r}")
            elif backup.cluster not in self.postgres.clusters:
                raise ValueError(f"backups.{bname}.cluster: no postgres cluster named {backup.cluster!r}")
            if backup.format == "pgbackrest" and backup.pgbackrest is None:
                raise ValueError(f"backups.{bname}.pgbackrest: required with format pgbackrest (stanza, repository)")
            if backup.format != "pgbackrest" and not backup.bucket:
                raise ValueError(f"backups.{bname}.bucket: required with format {backup.format}")
        return self

    @model_validator(mode="after")
    def _no_docs_in_production(self) -> SreConfig:
        if self.api.docs and self.environment == "production":
            raise ValueError("api.docs: the API's schema and docs pages are not served in production")
        return self

    @model_validator(mode="after")
    def _dashboards_interval(self) -> SreConfig:
        if self.dashboards.every is not None:
            job = self.jobs.get("dashboards.reconcile")
            if job is None:
                self.jobs["dashboards.reconcile"] = JobConfig(every=self.dashboards.every)
            elif job.every != self.dashboards.every:
                raise ValueError("dashboards.every and jobs.dashboards.reconcile both set the interval: keep one")
        return self


# ---------------------------------------------------------------- loading


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "tagged-union")) or part in ("list", "dict"):
            continue
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def format_validation_error(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        problems.append(f"{_format_loc(tuple(err['loc']))}: {msg}")
    return problems


def _set_path(data: dict[str, Any], path: list[str], value: Any) -> None:
    node = data
    for key in path[:-1]:
        nxt = node.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            node[key] = nxt
        node = nxt
    node[path[-1]] = value


def env_overrides(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """SRE_ENVIRONMENT=staging, SRE_STATE__URL=...: `__` separates nesting levels.

    Values are parsed as YAML scalars/flows so SRE_REGIONS='[a, b]' works.
    """
    environ = dict(os.environ if environ is None else environ)
    out: dict[str, Any] = {}
    top = set(SreConfig.model_fields)
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        if path[0] not in top:
            continue  # SRE_* variables that are not config (secrets named by the user) are left alone
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        _set_path(out, path, value)
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_path(explicit: str | Path | None = None) -> Path | None:
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else None


def load_config(path: str | Path | None = None, environ: dict[str, str] | None = None) -> SreConfig:
    """Read sre.yaml (or embedded defaults when no file is named), apply SRE_* overrides, validate."""
    p = config_path(path)
    data: dict[str, Any] = {}
    source = str(p) if p else "embedded defaults"
    if p is not None:
        try:
            text = p.read_text()
        except OSError as exc:
            raise ConfigError([f"cannot read config file: {exc.strerror or exc}"], source) from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            raise ConfigError([f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"], source) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(["(top level): expected a mapping of keys"], source)
        data = loaded
    data = _merge(data, env_overrides(environ))
    try:
        cfg = SreConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc), source) from None
    if p is not None and not cfg.state.dir.is_absolute():
        cfg.state.dir = (p.parent / cfg.state.dir).resolve()
    return cfg


def json_schema() -> dict[str, Any]:
    return SreConfig.model_json_schema()
