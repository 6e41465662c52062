"""The retry rules against in-process fake nodes that answer exactly what a test scripts:
leader redirects, unknown outcomes, refusals after an unknown outcome, connect failures,
deadlines on every attempt."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any
from decimal import Decimal

import grpc
import pytest

import ledger_client as lc
from ledger_client._proto.ledger.v1 import ledger_pb2

Answer = Callable[[ledger_pb2.CreateTransfersRequest, grpc.ServicerContext], ledger_pb2.CreateTransfersResponse]


@dataclass
class FakeNode:
    """A `ledger.v1.Ledger` server whose CreateTransfers and LookupAccounts run scripted answers."""

    answers: list[Answer] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)
    metadata: list[dict[str, str]] = field(default_factory=list)
    deadlines: list[float | None] = field(default_factory=list)
    port: int = 0
    server: grpc.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle(self, request: ledger_pb2.CreateTransfersRequest, context: grpc.ServicerContext) -> ledger_pb2.CreateTransfersResponse:
        self.requests.append(request.SerializeToString())
        self.metadata.append({k: str(v) for k, v in context.invocation_metadata()})
        self.deadlines.append(context.time_remaining())
        answer = self.answers.pop(0) if self.answers else ok
        return answer(request, context)

    def lookup(self, request: ledger_pb2.LookupAccountsRequest, context: grpc.ServicerContext) -> ledger_pb2.LookupAccountsResponse:
        self.requests.append(request.SerializeToString())
        self.metadata.append({k: str(v) for k, v in context.invocation_metadata()})
        answer = self.answers.pop(0) if self.answers else ok
        answer(ledger_pb2.CreateTransfersRequest(), context)
        return ledger_pb2.LookupAccountsResponse()

    def start(self) -> FakeNode:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "CreateTransfers": grpc.unary_unary_rpc_method_handler(
                self.handle,
                request_deserializer=ledger_pb2.CreateTransfersRequest.FromString,
                response_serializer=ledger_pb2.CreateTransfersResponse.SerializeToString,
            ),
            "LookupAccounts": grpc.unary_unary_rpc_method_handler(
                self.lookup,
                request_deserializer=ledger_pb2.LookupAccountsRequest.FromString,
                response_serializer=ledger_pb2.LookupAccountsResponse.SerializeToString,
            ),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("ledger.v1.Ledger", handlers),))
        self.port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self.server = server
        return self


def ok(request: ledger_pb2.CreateTransfersRequest, context: grpc.ServicerContext) -> ledger_pb2.CreateTransfersResponse:
    results = [
        ledger_pb2.WriteResult(index=i, code="OK", timestamp_ns=1 + i, id=t.id)
        for i, t in enumerate(request.transfers)
    ]
    return ledger_pb2.CreateTransfersResponse(results=results)


def redirect_to(url: str) -> Answer:
    def answer(request: ledger_pb2.CreateTransfersRequest, context: grpc.ServicerContext) -> ledger_pb2.CreateTransfersResponse:
        context.set_trailing_metadata((("x-ledger-leader", url),))
        context.abort(grpc.StatusCode.UNAVAILABLE, "this node is not the leader; leader: " + url)

    return answer


def outcome_unknown(request: ledger_pb2.CreateTransfersRequest, context: grpc.ServicerContext) -> ledger_pb2.CreateTransfersResponse:
    context.set_trailing_metadata((("x-ledger-outcome", "unknown"),))
    context.abort(grpc.StatusCode.UNAVAILABLE, "commit outcome unknown: leadership changed")


def too_slow(request: ledger_pb2.CreateTransfersRequest, context: grpc.ServicerContext) -> ledger_pb2.CreateTransfersResponse:
    time.sleep(0.6)
    return ok(request, context)


def refuse(code: grpc.StatusCode) -> Answer:
    def answer(request: ledger_pb2.CreateTransfersRequest, context: grpc.ServicerContext) -> ledger_pb2.CreateTransfersResponse:
        context.abort(code, "refused for good")

    return answer


@pytest.fixture
def nodes() -> Iterator[Callable[[], FakeNode]]:
    started: list[FakeNode] = []

    def start() -> FakeNode:
        node = FakeNode().start()
        started.append(node)
        return node

    yield start
    for node in started:
        assert node.server is not None
        node.server.stop(None)


def fast_client(endpoints: list[str], **kwargs: object) -> lc.Client:
    return lc.Client(endpoints, timeout=0.3, max_attempts=4, backoff=lc.Backoff(0.01, 0.02), **kwargs)  # type: ignore[arg-type]


def transfer(key: str = "order-1") -> lc.Transfer:
    return lc.Transfer(key, "CNY", [lc.Leg(1, 2, Decimal("12.50"))])


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_follower_redirect_is_followed_at_once_with_the_same_request(nodes: Callable[[], FakeNode]) -> None:
    follower, leader = nodes(), nodes()
    follower.answers = [redirect_to(leader.url)]
    # A 5 s backoff: a redirect that waited for it would take that long.
    client = lc.Client([follower.url], timeout=2.0, backoff=lc.Backoff(5.0, 5.0), token="secret-token")
    started = time.monotonic()
    [result] = client.submit_transfers([transfer()])
    assert result.ok and result.id == lc.transfer_id_from_key("order-1")
    assert time.monotonic() - started < 2.5, "a redirect is followed at once, without a backoff"
    assert follower.requests == leader.requests, "the same bytes: same key, same id"
    assert client.endpoints == [follower.url, leader.url]
    client.submit_transfers([transfer("order-2")])
    assert len(follower.requests) == 1 and len(leader.requests) == 2, "the leader is preferred from now on"
    assert leader.metadata[0]["authorization"] == "Bearer secret-token"


def test_every_attempt_has_a_deadline(nodes: Callable[[], FakeNode]) -> None:
    node = nodes()
    node.answers = [outcome_unknown]
    fast_client([node.url]).submit_transfers([transfer()])
    assert len(node.deadlines) == 2
    for remaining in node.deadlines:
        assert remaining is not None and 0 < remaining <= 0.31  # 0.3 s, plus clock granularity


def test_unknown_outcome_then_a_definite_refusal_is_still_unknown(nodes: Callable[[], FakeNode]) -> None:
    node = nodes()
    node.answers = [too_slow, refuse(grpc.StatusCode.PERMISSION_DENIED)]
    with pytest.raises(lc.OutcomeUnknownError) as raised:
        fast_client([node.url]).submit_transfers([transfer()])
    assert raised.value.last_status == grpc.StatusCode.PERMISSION_DENIED
    assert len(set(node.requests)) == 1, "every retry is the same request (same idempotency key)"


def test_a_definite_refusal_without_an_earlier_unknown_is_rejected(nodes: Callable[[], FakeNode]) -> None:
    node = nodes()
    node.answers = [refuse(grpc.StatusCode.PERMISSION_DENIED)]
    with pytest.raises(lc.PermissionDeniedError) as raised:
        fast_client([node.url]).submit_transfers([transfer()])
    assert raised.value.status_code == grpc.StatusCode.PERMISSION_DENIED
    assert len(node.requests) == 1, "never retried"


def test_a_read_after_a_timeout_is_rejected_not_unknown(nodes: Callable[[], FakeNode]) -> None:
    node = nodes()
    node.answers = [too_slow, refuse(grpc.StatusCode.INVALID_ARGUMENT)]
    with pytest.raises(lc.InvalidArgumentError):
        fast_client([node.url]).lookup_accounts([1])


def test_unknown_on_every_attempt_is_unknown_for_writes_unavailable_for_reads(nodes: Callable[[], FakeNode]) -> None:
    node = nodes()
    node.answers = [outcome_unknown] * 4
    with pytest.raises(lc.OutcomeUnknownError) as raised:
        fast_client([node.url]).submit_transfers([transfer()])
    assert raised.value.attempts == 4 and len(node.requests) == 4
    node.answers = [outcome_unknown] * 4
    with pytest.raises(lc.UnavailableError):
        fast_client([node.url]).lookup_accounts([1])


def test_an_unknown_outcome_is_retried_on_the_next_node_with_the_same_key(nodes: Callable[[], FakeNode]) -> None:
    old_leader, new_leader = nodes(), nodes()
    old_leader.answers = [outcome_unknown]
    [result] = fast_client([old_leader.url, new_leader.url]).submit_transfers([transfer()])
    assert result.ok
    assert old_leader.requests == new_leader.requests


def test_nothing_reachable_is_unavailable_not_unknown() -> None:
    client = fast_client([f"http://127.0.0.1:{closed_port()}", f"http://127.0.0.1:{closed_port()}"])
    started = time.monotonic()
    with pytest.raises(lc.UnavailableError) as raised:
        client.submit_transfers([transfer()])
    assert raised.value.attempts == 4
    assert time.monotonic() - started < 3


def test_a_client_is_shared_by_threads(nodes: Callable[[], FakeNode]) -> None:
    node = nodes()
    client = fast_client([node.url])
    errors: list[BaseException] = []

    def submit(n: int) -> None:
        try:
            for i in range(10):
                assert client.submit_transfers([transfer(f"t{n}-{i}")])[0].ok
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(node.requests) == 40


def forward_failed(url: str) -> Answer:
    def answer(request: ledger_pb2.CreateTransfersRequest, context: grpc.ServicerContext) -> ledger_pb2.CreateTransfersResponse:
        context.set_trailing_metadata((("x-ledger-outcome", "unknown"), ("x-ledger-leader", url)))
        context.abort(grpc.StatusCode.UNAVAILABLE, "forward to the leader failed")

    return answer


def test_a_failed_forward_goes_to_the_named_leader_and_stays_maybe_applied(nodes: Callable[[], FakeNode]) -> None:
    follower, leader = nodes(), nodes()
    follower.answers = [forward_failed(leader.url)]
    [result] = fast_client([follower.url]).submit_transfers([transfer()])
    assert result.ok and follower.requests == leader.requests
    follower.answers = [forward_failed(leader.url)] * 4
    leader.answers = [outcome_unknown] * 4
    with pytest.raises(lc.OutcomeUnknownError):
        fast_client([follower.url]).submit_transfers([transfer()])


def test_bounded_staleness_is_asked_for_reads_only(nodes: Callable[[], FakeNode]) -> None:
    node = nodes()
    client = fast_client([node.url], max_staleness_ms=250)
    client.lookup_accounts([1])
    client.submit_transfers([transfer()])
    assert node.metadata[0].get("x-ledger-max-staleness-ms") == "250"
    assert "x-ledger-max-staleness-ms" not in node.metadata[1]
