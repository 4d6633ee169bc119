"""Redis clients with short timeouts and no silent retries.

redis-py retries a failed command three times by default, with backoff: a node that stopped
answering would then cost four timeouts instead of one. Every client made here fails once, on
time, with an UnreachableError that names the node (never its URL, which may hold a password).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sre.errors import UnreachableError

if TYPE_CHECKING:
    import redis

    from sre.config import RedisNode


def label(node: RedisNode | str) -> str:
    return "Redis" if isinstance(node, str) else node.name


def client(node: RedisNode | str, *, timeout: float = 3.0) -> redis.Redis:
    """A client for one node: `timeout` bounds both connecting and every reply."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    url = node if isinstance(node, str) else node.url.resolve().get_secret_value()
    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                                retry=Retry(NoBackoff(), 0), retry_on_timeout=False,
                                health_check_interval=0, decode_responses=True)


def call(node: RedisNode | str, fn: Any, *, timeout: float = 3.0, name: str | None = None) -> Any:
    """`fn(client)` on a fresh connection, closed afterwards; errors become UnreachableError."""
    import redis

    who = name or label(node)
    c = client(node, timeout=timeout)
    try:
        return fn(c)
    except redis.exceptions.TimeoutError:
        raise UnreachableError(f"{who}: did not answer within {timeout:g}s") from None
    except redis.exceptions.RedisError as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise UnreachableError(f"{who}: {text}") from None
    finally:
        c.close()


def info(node: RedisNode | str, section: str = "replication", *, timeout: float = 3.0,
         name: str | None = None) -> dict[str, Any]:
    """`INFO <section>` parsed by redis-py (slaveN lines become dicts)."""
    result: dict[str, Any] = call(node, lambda c: c.info(section), timeout=timeout, name=name)
    return result
