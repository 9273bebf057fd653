"""Redis Streams plumbing shared by the publisher and the consumers.

Keys (``prefix`` defaults to ``allo:alarms``; a different prefix keeps two deployments
apart on one server):

- ``<prefix>:<p>``: the stream of partition ``p``, read by the consumer group ``allo-noc``;
- ``<prefix>:dead``: entries that are not alarms, kept with the reason (dead letters);
- ``<prefix>:layout``: how many partitions the publisher routes to, and the topology's
  map fingerprint, so that a consumer started with another count stops with a clear error;
- ``<prefix>:warm-up``: a lock taken while an engine migrates the schema and reloads, so
  that consumers starting together do not race on a fresh database;
- ``<prefix>:owner:<p>``: the lease of partition ``p``, held by its one consumer
  (:mod:`.lease`).

Messages never show a password: URLs are printed through :func:`safe_url`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from allo.errors import BrokerError, ConfigError, InvalidInputError

DEFAULT_PREFIX = "allo:alarms"
GROUP = "allo-noc"
MIN_VERSION = (6, 2)  # XAUTOCLAIM
_PREFIX = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_SCHEMES = ("redis", "rediss", "unix")


def text(value: bytes | str) -> str:
    """A Redis reply as text (redis-py returns bytes unless told to decode)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def safe_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for messages and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}{port}", parts.path, parts.query, ""))


@dataclass(frozen=True)
class StreamKeys:
    """The Redis keys of one deployment (see the module docstring)."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not _PREFIX.match(self.prefix):
            raise InvalidInputError(
                f"key prefix {self.prefix!r}: use 1-64 letters, digits, '_', '.', ':' or '-'"
            )

    def partition(self, partition: int) -> str:
        return f"{self.prefix}:{partition}"

    @property
    def dead(self) -> str:
        return f"{self.prefix}:dead"

    @property
    def layout(self) -> str:
        return f"{self.prefix}:layout"

    @property
    def warm_up_lock(self) -> str:
        return f"{self.prefix}:warm-up"

    def owner(self, partition: int) -> str:
        return f"{self.prefix}:owner:{partition}"


def connect(url: str, *, timeout: float = 5.0) -> Any:
    """A checked connection to Redis (``redis://``, ``rediss://`` or ``unix://`` URL).

    Raises :class:`ConfigError` without the ``redis`` package or with a bad URL, and
    :class:`BrokerError` when the server cannot be reached or used.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in _SCHEMES:
        raise InvalidInputError(
            f"broker URL {safe_url(url)!r}: expected redis://host:port/db, rediss://... "
            "or unix:///path/to/redis.sock"
        )
    try:
        import redis
    except ModuleNotFoundError as exc:
        raise ConfigError(
            "the Redis broker needs the redis client: pip install 'allo[broker]'"
        ) from exc
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, health_check_interval=30)
        client.ping()
        info = client.info("server")
    except redis.AuthenticationError as exc:
        raise BrokerError(
            f"Redis at {safe_url(url)} refused the credentials: check the user and password "
            "in the URL",
            retryable=False,
        ) from exc
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise BrokerError(
            f"cannot reach Redis at {safe_url(url)} ({type(exc).__name__}): start redis-server "
            "or fix --redis; retrying later can help",
            retryable=True,
        ) from exc
    except (redis.RedisError, ValueError) as exc:
        raise BrokerError(
            f"Redis at {safe_url(url)} cannot be used: {exc}", retryable=False
        ) from exc
    version = str(info.get("redis_version", "0"))
    numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
    if numbers < MIN_VERSION:
        raise BrokerError(
            f"Redis at {safe_url(url)} is version {version}; streams with consumer-group "
            f"recovery need {MIN_VERSION[0]}.{MIN_VERSION[1]} or newer",
            retryable=False,
        )
    return client


def ensure_group(client: Any, key: str, group: str = GROUP) -> None:
    """Create the stream and its consumer group, reading from the very first entry, so
    that alarms published before any consumer started are not skipped (idempotent)."""
    import redis

    try:
        client.xgroup_create(key, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


@dataclass(frozen=True)
class Layout:
    """What the publisher routes by: the partition count and the map's fingerprint."""

    partitions: int
    digest: str

    def to_json(self) -> str:
        return json.dumps({"partitions": self.partitions, "digest": self.digest})

    @classmethod
    def read(cls, client: Any, keys: StreamKeys) -> Layout | None:
        raw = client.get(keys.layout)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return cls(int(data["partitions"]), str(data["digest"]))
        except (ValueError, KeyError, TypeError):
            return None


def claim_layout(client: Any, keys: StreamKeys, layout: Layout) -> Layout | None:
    """Record ``layout`` unless another one is there; returns the one found before (or
    ``None``), so that the caller can refuse a different partition count."""
    if client.set(keys.layout, layout.to_json(), nx=True):
        return None
    return Layout.read(client, keys)


def partition_mismatch(found: Layout, partitions: int, keys: StreamKeys) -> str:
    """The message for a partition count that differs from the recorded one."""
    return (
        f"the streams under {keys.prefix!r} were published for {found.partitions} "
        f"partition(s), not {partitions}: use --partitions {found.partitions}, or drain them "
        f"and delete {keys.layout!r} before changing the count, or use another --key-prefix"
    )
