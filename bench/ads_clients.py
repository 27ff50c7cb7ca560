"""Many lightweight ADS clients in one process, for the ACK latency benchmark.

    python -m bench.ads_clients --server HOST:PORT --clients N [--first 0]
        [--channels C] [--namespaces 3] [--delta]

Each client is one ADS stream (SotW or Delta) with its own node id and the
node metadata of a sidecar (`NodeProfile.metadata()`) in one of the
namespaces `ns-0` ... `ns-<namespaces-1>`; streams are spread over a few
channels (one TCP connection each). A client behaves as Envoy does on ADS: it
subscribes to CDS (wildcard), then to EDS for every EDS cluster it receives,
then to LDS (wildcard) once endpoints arrived, then to RDS for the route
configurations the listeners name, and ACKs every response with its nonce
(and, for SotW, its version).

Prints `synced N streams in S s` once every stream has ACKed all four types,
and on SIGTERM or SIGINT a summary line (`responses ...`, `cpu ...`) before it
exits. A stream that ends with an error is reported on stderr and makes the
exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import struct_pb2

from api import contract
from bench.models import namespace

CDS, EDS, LDS, RDS = (
    contract.TYPE_CLUSTER,
    contract.TYPE_ENDPOINT,
    contract.TYPE_LISTENER,
    contract.TYPE_ROUTE,
)
ALL_TYPES = frozenset({CDS, EDS, LDS, RDS})
ADS = "/envoy.service.discovery.v3.AggregatedDiscoveryService/"
SOTW_METHOD = ADS + "StreamAggregatedResources"
DELTA_METHOD = ADS + "DeltaAggregatedResources"
_EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]  # missing from grpc-stubs 1.53


def node(index: int, namespaces: int) -> Any:
    """The node of client `index`: `bench-<index>.<ns>` with a sidecar's metadata."""
    ns = namespace(index % namespaces)
    metadata = struct_pb2.Struct()
    metadata.update(contract.NodeProfile(namespace=ns).metadata())
    return base_pb2.Node(id=contract.node_id(f"bench-{index}", ns), metadata=metadata)


class Names:
    """What the resources a client holds refer to, memoized on their bytes.

    Every client receives the same encoded clusters and listeners, so each
    distinct resource is parsed once per process.
    """

    def __init__(self) -> None:
        self._eds: dict[bytes, str | None] = {}
        self._rds: dict[bytes, tuple[str, ...]] = {}

    def eds_name(self, value: bytes) -> str | None:
        """The EDS service name of an encoded Cluster, or None if it is not EDS."""
        if value not in self._eds:
            cluster = cluster_pb2.Cluster.FromString(value)
            eds = cluster.HasField("eds_cluster_config")
            self._eds[value] = (
                (cluster.eds_cluster_config.service_name or cluster.name) if eds else None
            )
        return self._eds[value]

    def route_names(self, value: bytes) -> tuple[str, ...]:
        """The RDS names an encoded Listener's HTTP connection managers use."""
        found = self._rds.get(value)
        if found is None:
            names = []
            for chain in listener_pb2.Listener.FromString(value).filter_chains:
                for f in chain.filters:
                    if f.typed_config.type_url.endswith(".HttpConnectionManager"):
                        hcm = hcm_pb2.HttpConnectionManager.FromString(f.typed_config.value)
                        if hcm.HasField("rds"):
                            names.append(hcm.rds.route_config_name)
            found = self._rds[value] = tuple(names)
        return found


@dataclass
class Tally:
    """Shared by the streams of one process."""

    clients: int
    started: float = field(default_factory=time.monotonic)
    synced: int = 0
    responses: int = 0
    response_bytes: int = 0
    failures: int = 0
    names: Names = field(default_factory=Names)

    def stream_synced(self) -> None:
        self.synced += 1
        if self.synced == self.clients:
            elapsed = time.monotonic() - self.started
            print(f"synced {self.clients} streams in {elapsed:.3f} s", flush=True)


class SotwClient:
    """The requests of one State of the World stream, from the responses it gets."""

    def __init__(self, node_: Any, tally: Tally) -> None:
        self.node = node_
        self.tally = tally
        self.names: dict[str, tuple[str, ...]] = {}
        self.versions: dict[str, str] = {}
        self.nonces: dict[str, str] = {}
        self.acked: set[str] = set()

    def first(self) -> Any:
        return discovery_pb2.DiscoveryRequest(node=self.node, type_url=CDS)

    def answer(self, response: Any) -> list[Any]:
        t = response.type_url
        out: list[Any] = []
        self.versions[t], self.nonces[t] = response.version_info, response.nonce
        if t == CDS:
            eds = {self.tally.names.eds_name(r.value) for r in response.resources}
            self._subscribe(EDS, tuple(sorted(n for n in eds if n is not None)), out)
        elif t == LDS:
            rds = {n for r in response.resources for n in self.tally.names.route_names(r.value)}
            self._subscribe(RDS, tuple(sorted(rds)), out)
        out.append(self._request(t))
        self._acked(t, out)
        return out

    def _subscribe(self, type_url: str, names: tuple[str, ...], out: list[Any]) -> None:
        if self.names.get(type_url) == names:
            return
        self.names[type_url] = names
        if names:
            out.append(self._request(type_url))
        else:
            self._acked(type_url, out)  # nothing of this type to wait for

    def _request(self, type_url: str) -> Any:
        return discovery_pb2.DiscoveryRequest(
            type_url=type_url,
            resource_names=self.names.get(type_url, ()),
            version_info=self.versions.get(type_url, ""),
            response_nonce=self.nonces.get(type_url, ""),
        )

    def _acked(self, type_url: str, out: list[Any]) -> None:
        if type_url in self.acked:
            return
        self.acked.add(type_url)
        if type_url == EDS and LDS not in self.acked and LDS not in self.nonces:
            out.append(discovery_pb2.DiscoveryRequest(type_url=LDS))
        if self.acked == ALL_TYPES:
            self.tally.stream_synced()


class DeltaClient:
    """The requests of one Delta stream: subscription changes, then the ACK."""

    def __init__(self, node_: Any, tally: Tally) -> None:
        self.node = node_
        self.tally = tally
        self.held: dict[str, dict[str, tuple[str, ...]]] = {CDS: {}, LDS: {}}
        self.names: dict[str, set[str]] = {EDS: set(), RDS: set()}
        self.acked: set[str] = set()
        self.lds_requested = False

    def first(self) -> Any:
        return discovery_pb2.DeltaDiscoveryRequest(node=self.node, type_url=CDS)

    def answer(self, response: Any) -> list[Any]:
        t = response.type_url
        out: list[Any] = []
        held = self.held.get(t)
        if held is not None:
            for name in response.removed_resources:
                held.pop(name, None)
            for r in response.resources:
                held[r.name] = self._refs(t, r.resource.value)
            child = EDS if t == CDS else RDS
            self._subscribe(child, {n for refs in held.values() for n in refs}, out)
        out.append(discovery_pb2.DeltaDiscoveryRequest(type_url=t, response_nonce=response.nonce))
        self._acked(t, out)
        return out

    def _refs(self, type_url: str, value: bytes) -> tuple[str, ...]:
        if type_url == CDS:
            name = self.tally.names.eds_name(value)
            return () if name is None else (name,)
        return self.tally.names.route_names(value)

    def _subscribe(self, type_url: str, wanted: set[str], out: list[Any]) -> None:
        have = self.names[type_url]
        if wanted != have:
            self.names[type_url] = wanted
            out.append(
                discovery_pb2.DeltaDiscoveryRequest(
                    type_url=type_url,
                    resource_names_subscribe=sorted(wanted - have),
                    resource_names_unsubscribe=sorted(have - wanted),
                )
            )
        if not wanted:
            self._acked(type_url, out)  # nothing of this type to wait for

    def _acked(self, type_url: str, out: list[Any]) -> None:
        if type_url in self.acked:
            return
        self.acked.add(type_url)
        if type_url == EDS and not self.lds_requested:
            self.lds_requested = True
            out.append(discovery_pb2.DeltaDiscoveryRequest(type_url=LDS))
        if self.acked == ALL_TYPES:
            self.tally.stream_synced()


async def run_stream(channel: grpc.aio.Channel, client: SotwClient | DeltaClient) -> None:
    delta = isinstance(client, DeltaClient)
    response_type = (
        discovery_pb2.DeltaDiscoveryResponse if delta else discovery_pb2.DiscoveryResponse
    )
    request_type = discovery_pb2.DeltaDiscoveryRequest if delta else discovery_pb2.DiscoveryRequest
    tally = client.tally

    def parse(data: bytes) -> Any:
        tally.response_bytes += len(data)
        return response_type.FromString(data)

    call = channel.stream_stream(
        DELTA_METHOD if delta else SOTW_METHOD,
        request_serializer=request_type.SerializeToString,
        response_deserializer=parse,
    )(None)
    await call.write(client.first())
    while True:
        response = await call.read()
        if response is _EOF:
            return
        tally.responses += 1
        for request in client.answer(response):
            await call.write(request)


async def run(args: argparse.Namespace) -> int:
    tally = Tally(args.clients)
    channels = [
        grpc.aio.insecure_channel(
            args.server,
            options=[
                ("grpc.use_local_subchannel_pool", 1),  # one TCP connection per channel
                ("grpc.max_receive_message_length", 64 << 20),
            ],
        )
        for _ in range(max(1, min(args.channels, args.clients)))
    ]
    kind = DeltaClient if args.delta else SotwClient
    print(
        f"connecting {args.clients} {'delta' if args.delta else 'sotw'} streams "
        f"over {len(channels)} channels",
        flush=True,
    )

    async def one(index: int) -> None:
        client = kind(node(index, args.namespaces), tally)
        try:
            await run_stream(channels[index % len(channels)], client)
        except grpc.aio.AioRpcError as e:
            if not stopping.is_set():
                tally.failures += 1
                print(f"stream {index}: {e.code().name}: {e.details()}", file=sys.stderr)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    tasks = [asyncio.create_task(one(i)) for i in range(args.first, args.first + args.clients)]
    finished = asyncio.gather(*tasks)
    finished.add_done_callback(lambda _: stopping.set())
    await stopping.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(finished, return_exceptions=True)
    for channel in channels:
        await channel.close(None)
    cpu = time.process_time()
    print(
        f"responses {tally.responses} ({tally.response_bytes} bytes), "
        f"failures {tally.failures}, cpu {cpu:.3f} s",
        flush=True,
    )
    return 1 if tally.failures else 0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ads_clients", description=__doc__)
    parser.add_argument("--server", required=True, help="HOST:PORT of the xDS server")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--first", type=int, default=0, help="index of the first client")
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--namespaces", type=int, default=3)
    parser.add_argument("--delta", action="store_true", help="Delta xDS instead of SotW")
    sys.exit(asyncio.run(run(parser.parse_args(argv))))


if __name__ == "__main__":
    main()
