"""S3 through boto3: one client per config, paged listings, streamed reads and multipart writes.

Everything here streams: a listing is a generator over pages, a download yields chunks, an
upload reads from a file object in parts. Nothing holds a whole object in memory, so the size
of a backup never decides the memory of the process that checks it.

Two answers differ between AWS and S3-compatible servers and are normalised here: a bucket with
no default encryption raises `ServerSideEncryptionConfigurationNotFoundError` on moto and old
buckets, while AWS has answered SSE-S3 (AES256) for every bucket since January 2023.
"""

from __future__ import annotations

import base64
import hashlib
import io
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from sre.errors import UnreachableError

if TYPE_CHECKING:
    from sre.config import AwsConfig

S3Client = Any  # boto3's clients are generated at runtime; no stubs are installed

CHUNK = 1 << 20  # read size of streamed downloads: big enough for throughput, small for memory
LIST_PAGE = 1000  # S3's own maximum keys per ListObjectsV2 page

# Error codes meaning "this bucket has no such configuration", per sub-resource.
NOT_CONFIGURED = frozenset({
    "ServerSideEncryptionConfigurationNotFoundError",
    "NoSuchPublicAccessBlockConfiguration",
    "ReplicationConfigurationNotFoundError",
    "ObjectLockConfigurationNotFoundError",
    "NoSuchBucketPolicy",
    "NoSuchLifecycleConfiguration",
})


class S3Error(UnreachableError):
    """S3 refused or failed one call after the client's retries."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime
    etag: str = ""


@dataclass
class ObjectHead:
    key: str
    size: int
    last_modified: datetime
    metadata: dict[str, str] = field(default_factory=dict)
    etag: str = ""
    checksum_sha256: str | None = None  # base64; "-N" suffix (or parts_count > 1) means composite
    parts_count: int = 1
    sse: str | None = None

    @property
    def composite(self) -> bool:
        return self.parts_count > 1


def client(aws: AwsConfig, region: str | None = None, **config: Any) -> S3Client:
    """A boto3 S3 client for `aws` (endpoint, region, credentials from secret references)."""
    import boto3
    from botocore.config import Config

    kwargs: dict[str, Any] = {"region_name": region or aws.region}
    if aws.endpoint_url:
        kwargs["endpoint_url"] = aws.endpoint_url
    if aws.access_key_id is not None and aws.secret_access_key is not None:
        kwargs["aws_access_key_id"] = aws.access_key_id.resolve().get_secret_value()
        kwargs["aws_secret_access_key"] = aws.secret_access_key.resolve().get_secret_value()
    options: dict[str, Any] = {
        "retries": {"mode": "standard", "max_attempts": 5},
        "connect_timeout": 5,
        "read_timeout": 120,
        "max_pool_connections": 16,
        # We hash every byte ourselves (SHA-256): a second CRC pass by botocore is only cost.
        "response_checksum_validation": "when_required",
        **config,
    }
    if aws.endpoint_url:
        options.setdefault("s3", {"addressing_style": "path"})
    session = boto3.session.Session()
    return session.client("s3", config=Config(**options), **kwargs)


def error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def wrap(exc: BaseException, what: str) -> S3Error:
    """One line for a failed call: its purpose, the error code and message, never credentials."""
    code = error_code(exc)
    if code is not None:
        msg = getattr(exc, "response", {}).get("Error", {}).get("Message") or code
        return S3Error(f"S3 {what}: {code}: {msg}", code)
    return S3Error(f"S3 {what}: {exc.__class__.__name__}: {exc}")


def _call(fn: Callable[..., Any], what: str, **kwargs: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise wrap(exc, what) from None


def list_objects(s3: S3Client, bucket: str, prefix: str = "", *, page_size: int = LIST_PAGE,
                 start_after: str | None = None) -> Iterator[ObjectInfo]:
    """Every object under `prefix`, in key order, one ListObjectsV2 page at a time."""
    from botocore.exceptions import BotoCoreError, ClientError

    paginator = s3.get_paginator("list_objects_v2")
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix,
                              "PaginationConfig": {"PageSize": page_size}}
    if start_after:
        params["StartAfter"] = start_after
    try:
        for page in paginator.paginate(**params):
            for obj in page.get("Contents", []):
                yield ObjectInfo(obj["Key"], int(obj["Size"]), obj["LastModified"], obj.get("ETag", "").strip('"'))
    except (ClientError, BotoCoreError) as exc:
        raise wrap(exc, f"list s3://{bucket}/{prefix}") from None


def head(s3: S3Client, bucket: str, key: str) -> ObjectHead:
    r = _call(s3.head_object, f"head s3://{bucket}/{key}", Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    etag = str(r.get("ETag", "")).strip('"')
    checksum = r.get("ChecksumSHA256")
    parts = 1
    # AWS marks a composite (per-part) checksum with "-N"; some servers only say so in the ETag.
    if checksum and "-" in checksum:
        checksum, _, n = checksum.partition("-")
        parts = int(n)
    elif "-" in etag:
        parts = int(etag.rsplit("-", 1)[1])
    return ObjectHead(key=key, size=int(r["ContentLength"]), last_modified=r["LastModified"],
                      metadata={k.lower(): v for k, v in r.get("Metadata", {}).items()}, etag=etag,
                      checksum_sha256=checksum, parts_count=parts, sse=r.get("ServerSideEncryption"))


def exists(s3: S3Client, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise wrap(exc, f"head s3://{bucket}/{key}") from None


def part_sizes(s3: S3Client, bucket: str, key: str, parts_count: int) -> list[int]:
    """The size of each part of a multipart object, to recompute its composite checksum."""
    sizes: list[int] = []
    for n in range(1, parts_count + 1):
        r = _call(s3.head_object, f"head part {n} of s3://{bucket}/{key}", Bucket=bucket, Key=key, PartNumber=n)
        sizes.append(int(r["ContentLength"]))
    return sizes


def read_text(s3: S3Client, bucket: str, key: str, limit: int = 1 << 16) -> str:
    r = _call(s3.get_object, f"get s3://{bucket}/{key}", Bucket=bucket, Key=key, Range=f"bytes=0-{limit - 1}")
    return bytes(r["Body"].read()).decode("utf-8", errors="replace")


def iter_object(s3: S3Client, bucket: str, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
    """The object's bytes in chunks of at most `chunk_size`, read as they arrive."""
    from botocore.exceptions import BotoCoreError, ClientError

    r = _call(s3.get_object, f"get s3://{bucket}/{key}", Bucket=bucket, Key=key)
    body = r["Body"]
    try:
        yield from body.iter_chunks(chunk_size)
    except (ClientError, BotoCoreError) as exc:
        raise wrap(exc, f"read s3://{bucket}/{key}") from None
    finally:
        body.close()


def readahead(chunks: Iterable[bytes], depth: int = 8) -> Iterator[bytes]:
    """`chunks` fetched by a thread up to `depth` ahead of the consumer (memory: depth chunks).

    A slow consumer (pg_restore behind a pipe) and the download then stop waiting on each
    other's scheduling; exceptions of the fetching side come out of this generator.
    """
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def fetch() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        q.put(("data", chunk), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", None))
        except BaseException as exc:  # handed to the consumer
            q.put(("error", exc))

    thread = threading.Thread(target=fetch, name="s3-readahead", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "data":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()


def transfer_config(part_size: int = 16 << 20, concurrency: int = 4) -> Any:
    from boto3.s3.transfer import TransferConfig

    # S3 refuses parts under 5 MiB (but the last one).
    part_size = max(part_size, 5 << 20)
    return TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size,
                          max_concurrency=concurrency, use_threads=True)


def upload_stream(s3: S3Client, fileobj: IO[bytes] | io.RawIOBase, bucket: str, key: str, *, extra: dict[str, Any] | None = None,
                  part_size: int = 16 << 20, concurrency: int = 4) -> None:
    """Upload from a readable stream (a pipe is fine): multipart above `part_size`.

    An exception raised by `fileobj.read` aborts the multipart upload, so no partial object
    is ever committed.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3.upload_fileobj(fileobj, bucket, key, ExtraArgs=extra or {},
                          Config=transfer_config(part_size, concurrency))
    except (ClientError, BotoCoreError) as exc:
        raise wrap(exc, f"upload s3://{bucket}/{key}") from None


def put_bytes(s3: S3Client, bucket: str, key: str, data: bytes, **extra: Any) -> None:
    _call(s3.put_object, f"put s3://{bucket}/{key}", Bucket=bucket, Key=key, Body=data, **extra)


def download_file(s3: S3Client, bucket: str, key: str, path: str, *, part_size: int = 16 << 20,
                  concurrency: int = 4, callback: Callable[[int], None] | None = None) -> None:
    """Download to a file with parallel ranged GETs (for files a tool must seek in)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3.download_file(bucket, key, path, Config=transfer_config(part_size, concurrency), Callback=callback)
    except (ClientError, BotoCoreError) as exc:
        raise wrap(exc, f"download s3://{bucket}/{key}") from None


def bucket_config(s3: S3Client, op: str, bucket: str) -> dict[str, Any] | None:
    """A bucket sub-resource (get_bucket_versioning, ...); None when the bucket has none set."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        r = getattr(s3, op)(Bucket=bucket)
    except ClientError as exc:
        if error_code(exc) in NOT_CONFIGURED:
            return None
        raise wrap(exc, f"{op.replace('_', ' ')} {bucket}") from None
    except BotoCoreError as exc:
        raise wrap(exc, f"{op.replace('_', ' ')} {bucket}") from None
    r.pop("ResponseMetadata", None)
    return dict(r)


def default_encryption(s3: S3Client, bucket: str) -> str | None:
    """The bucket's default SSE algorithm (AES256, aws:kms, aws:kms:dsse), or None when unset."""
    conf = bucket_config(s3, "get_bucket_encryption", bucket)
    if conf is None:
        return None
    for rule in conf.get("ServerSideEncryptionConfiguration", {}).get("Rules", []):
        algo = rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
        if algo:
            return str(algo)
    return None


def bucket_exists(s3: S3Client, bucket: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
        return True
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise wrap(exc, f"head bucket {bucket}") from None


def sha256_b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


class CompositeSha256:
    """S3's composite checksum of a multipart object: SHA-256 over the SHA-256 of each part."""

    def __init__(self, sizes: list[int]) -> None:
        self.sizes = sizes
        self._part = 0
        self._left = sizes[0] if sizes else 0
        self._h = hashlib.sha256()
        self.digests: list[bytes] = []

    def update(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._left == 0:
                # More bytes than the parts add up to: leave it to the size comparison.
                self._h.update(view)
                return
            take = min(self._left, len(view))
            self._h.update(view[:take])
            self._left -= take
            view = view[take:]
            if self._left == 0:
                self._close_part()

    def _close_part(self) -> None:
        self.digests.append(self._h.digest())
        self._h = hashlib.sha256()
        self._part += 1
        if self._part < len(self.sizes):
            self._left = self.sizes[self._part]

    def b64(self) -> str:
        return sha256_b64(hashlib.sha256(b"".join(self.digests)).digest())
