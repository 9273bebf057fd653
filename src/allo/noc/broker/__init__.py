"""Alarms through a stream broker (Redis Streams), one engine process per topology region.

For operators whose alarm volume outgrows one process: a publisher routes each alarm to
the stream of its partition (:mod:`.publisher`), chosen so that devices close in the
topology share a partition (:mod:`.partition`) and related alarms meet in one engine;
one consumer process per partition feeds its own :class:`~allo.noc.engine.NocEngine` and
acknowledges entries only after the engine committed them (:mod:`.consumer`), so a
``kill -9`` loses nothing and counts nothing twice. The ``redis`` client is an optional
extra (``pip install 'allo[broker]'``), imported only when a broker is used.
"""

from allo.errors import BrokerError
from allo.noc.broker.codec import MalformedEntry, decode_alarm, encode_alarm
from allo.noc.broker.consumer import ConsumerReport, PartitionConsumer, engine_stream
from allo.noc.broker.latency import LatencyHistogram
from allo.noc.broker.lease import PartitionLease
from allo.noc.broker.partition import (
    Partitioning,
    PartitionQuality,
    hash_partition,
    partition_topology,
)
from allo.noc.broker.publisher import AlarmPublisher, PublishReport, prefixed_ids
from allo.noc.broker.streams import Layout, StreamKeys, connect, safe_url

__all__ = [
    "AlarmPublisher",
    "BrokerError",
    "ConsumerReport",
    "LatencyHistogram",
    "Layout",
    "MalformedEntry",
    "PartitionConsumer",
    "PartitionLease",
    "PartitionQuality",
    "Partitioning",
    "PublishReport",
    "StreamKeys",
    "connect",
    "decode_alarm",
    "encode_alarm",
    "engine_stream",
    "hash_partition",
    "partition_topology",
    "prefixed_ids",
    "safe_url",
]
