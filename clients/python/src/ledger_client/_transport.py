"""Endpoints, leader following and safe retries: the rules of the Rust client (ledger-client's
retry.rs, endpoints.rs, client.rs), in Python.

Retrying a write is safe because every write is idempotent on the node (a transfer carries its
idempotency key; an asset or account that exists with the same fields answers EXISTS). What a
retry cannot do is tell whether an attempt that timed out was applied, so every failed attempt
is classified "certainly not applied" or "maybe applied", and a write whose attempts included a
maybe ends as OutcomeUnknownError: never as UnavailableError, and never as a refusal (a later
attempt's definite refusal does not prove the earlier attempt did nothing).
"""

from __future__ import annotations

import enum
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

import grpc
from google.protobuf.message import Message

from .errors import InvalidInputError, OutcomeUnknownError, UnavailableError, rejected

LEADER_METADATA_KEY = "x-ledger-leader"
OUTCOME_METADATA_KEY = "x-ledger-outcome"
STALENESS_METADATA_KEY = "x-ledger-max-staleness-ms"
#: Redirects add endpoints; a misbehaving server must not grow the list (and channels) forever.
ENDPOINTS_MAX = 64
MESSAGE_BYTES_MAX = 32 * 1024 * 1024

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)
T = TypeVar("T")


@dataclass(frozen=True)
class Tls:
    """TLS settings: the CA that signed the nodes' certificates, and optionally a client
    certificate and key (nodes with client-certificate principals map it to a role)."""

    ca_pem: bytes
    cert_pem: bytes | None = None
    key_pem: bytes | None = None

    @staticmethod
    def from_files(ca: str | Path, cert: str | Path | None = None, key: str | Path | None = None) -> Tls:
        if (cert is None) != (key is None):
            raise InvalidInputError("a client certificate needs its key, and a key its certificate")
        return Tls(
            ca_pem=Path(ca).read_bytes(),
            cert_pem=None if cert is None else Path(cert).read_bytes(),
            key_pem=None if key is None else Path(key).read_bytes(),
        )

    def __repr__(self) -> str:
        return f"Tls(ca_pem=<{len(self.ca_pem)} bytes>, client_cert={self.cert_pem is not None}, key=<redacted>)"


def normalize_endpoint(endpoint: str, tls: bool) -> str:
    """`http://host:port` (a bare `host:port` gets the client's scheme); no trailing slash.
    The scheme must match the client's TLS setting: a redirect to plaintext is never followed."""
    text = endpoint.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = ("https" if tls else "http"), text
    rest = rest.rstrip("/")
    if scheme not in ("http", "https"):
        raise InvalidInputError(f"endpoint {endpoint!r}: unsupported scheme {scheme!r} (http or https)")
    if (scheme == "https") != tls:
        raise InvalidInputError(
            f"endpoint {endpoint!r}: " + ("https needs tls=Tls(...)" if not tls else "plaintext http with TLS settings")
        )
    host, colon, port = rest.rpartition(":")
    if not colon or not host or not port.isdigit() or "/" in rest or " " in rest:
        raise InvalidInputError(f"endpoint {endpoint!r}: expected {scheme}://host:port")
    return f"{scheme}://{rest}"


class Endpoints:
    """The known endpoints, the one to try first, and one lazily created channel per endpoint."""

    def __init__(self, urls: Sequence[str], tls: Tls | None, options: list[tuple[str, int]]) -> None:
        if isinstance(urls, str):
            raise InvalidInputError("endpoints is a list of URLs, not one string")
        unique: list[str] = []
        for url in urls:
            normalized = normalize_endpoint(url, tls is not None)
            if normalized not in unique:
                unique.append(normalized)
        if not unique:
            raise InvalidInputError("no endpoints given")
        if len(unique) > ENDPOINTS_MAX:
            raise InvalidInputError(f"more than {ENDPOINTS_MAX} endpoints")
        self._tls = tls
        self._options = options
        self._lock = threading.Lock()
        self._urls = unique
        self._preferred = 0
        self._channels: dict[str, grpc.Channel] = {}

    @property
    def tls_on(self) -> bool:
        return self._tls is not None

    def list(self) -> list[str]:
        with self._lock:
            return list(self._urls)

    def preferred(self) -> str:
        with self._lock:
            return self._urls[self._preferred]

    def channel(self, url: str) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(url)
            if channel is None:
                target = url.partition("://")[2]
                if self._tls is None:
                    channel = grpc.insecure_channel(target, options=self._options)
                else:
                    credentials = grpc.ssl_channel_credentials(self._tls.ca_pem, self._tls.key_pem, self._tls.cert_pem)
                    channel = grpc.secure_channel(target, credentials, options=self._options)
                self._channels[url] = channel
            return channel

    def prefer(self, url: str) -> None:
        with self._lock:
            if url in self._urls:
                self._preferred = self._urls.index(url)

    def redirect(self, leader: str) -> bool:
        """A follower named the leader: add it if new (within ENDPOINTS_MAX) and prefer it."""
        try:
            url = normalize_endpoint(leader, self._tls is not None)
        except InvalidInputError:
            return False
        with self._lock:
            if url not in self._urls:
                if len(self._urls) >= ENDPOINTS_MAX:
                    return False
                self._urls.append(url)
            self._preferred = self._urls.index(url)
            return True

    def rotate_after(self, failed: str) -> None:
        """`failed` did not answer: move on, unless a concurrent call already moved elsewhere."""
        with self._lock:
            if self._urls[self._preferred] == failed:
                self._preferred = (self._preferred + 1) % len(self._urls)

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()


class Kind(enum.Enum):
    READ = "read"  # a failed read changed nothing: exhausted retries are UnavailableError
    WRITE = "write"  # a failed write may have applied: after a maybe, OutcomeUnknownError


class Outcome(enum.Enum):
    FATAL = "fatal"  # a definite answer: the same request fails the same way
    NOT_APPLIED = "not_applied"  # refused before proposing, or never sent
    MAYBE_APPLIED = "maybe_applied"  # sent, then lost: it may have been committed


@dataclass(frozen=True)
class Disposition:
    outcome: Outcome
    leader: str | None = None


# Messages gRPC core gives a call that never left this process (no connection to send it on).
_NEVER_SENT = ("failed to connect to all addresses", "dns resolution failed", "connection refused")
# The node's own text for NotLeader without a known leader (ledger-node api/status.rs).
_NOT_LEADER_PREFIX = "this node is not the leader"


def metadata_of(error: grpc.RpcError) -> dict[str, str]:
    """Initial and trailing metadata (a trailers-only error response may carry either)."""
    found: dict[str, str] = {}
    for getter in ("initial_metadata", "trailing_metadata"):
        method = getattr(error, getter, None)
        entries = method() if callable(method) else None
        for key, value in entries or ():
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            found.setdefault(str(key).lower(), str(value))
    return found


def classify(code: grpc.StatusCode, details: str, metadata: dict[str, str]) -> Disposition:
    """What a failed attempt proves. Only what is proven counts as "not applied": an UNAVAILABLE
    that is neither a node's refusal nor a connect failure may be a connection lost mid-call."""
    if code == grpc.StatusCode.UNAVAILABLE:
        leader = metadata.get(LEADER_METADATA_KEY, "").strip() or None
        if metadata.get(OUTCOME_METADATA_KEY, "").strip().lower() == "unknown":
            # e.g. a follower's failed forward: maybe applied, and the leader is worth trying next.
            return Disposition(Outcome.MAYBE_APPLIED, leader)
        if LEADER_METADATA_KEY in metadata:
            return Disposition(Outcome.NOT_APPLIED, leader)
        lowered = details.lower()
        if lowered.startswith(_NOT_LEADER_PREFIX) or any(text in lowered for text in _NEVER_SENT):
            return Disposition(Outcome.NOT_APPLIED)
        return Disposition(Outcome.MAYBE_APPLIED)
    if code in (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    ):
        return Disposition(Outcome.MAYBE_APPLIED)
    return Disposition(Outcome.FATAL)


@dataclass(frozen=True)
class Backoff:
    """`initial` doubling per retry up to `max`, with equal jitter (half fixed, half random)."""

    initial_s: float = 0.05
    max_s: float = 1.0

    def ceiling(self, retry: int) -> float:
        return float(min(self.initial_s * (2 ** min(retry, 30)), self.max_s))

    def delay(self, retry: int) -> float:
        half = self.ceiling(retry) / 2
        return half + random.uniform(0, half)


@dataclass(frozen=True)
class Rpc(Generic[Req, Resp]):
    """One method of a service: its path and message types, checked against the descriptor."""

    path: str
    request_type: type[Req]
    response_type: type[Resp]


def rpc(service: object, method: str, request_type: type[Req], response_type: type[Resp]) -> Rpc[Req, Resp]:
    """`service` is a generated ServiceDescriptor (e.g. ledger_pb2.DESCRIPTOR.services_by_name["Ledger"])."""
    descriptor = getattr(service, "methods_by_name")[method]
    if (
        descriptor.input_type.full_name != request_type.DESCRIPTOR.full_name
        or descriptor.output_type.full_name != response_type.DESCRIPTOR.full_name
    ):
        raise TypeError(f"{method}: message types differ from the proto")
    return Rpc(f"/{getattr(service, 'full_name')}/{method}", request_type, response_type)


@dataclass(frozen=True)
class Settings:
    timeout_s: float
    max_attempts: int
    backoff: Backoff
    token: str | None = field(repr=False)  # a secret: never in a repr or a log
    max_staleness_ms: int | None = None


class Transport:
    """Sends one RPC with leader following and classified retries."""

    def __init__(self, endpoints: Endpoints, settings: Settings) -> None:
        self.endpoints = endpoints
        self.settings = settings

    def metadata(self, kind: Kind) -> tuple[tuple[str, str | bytes], ...]:
        entries: list[tuple[str, str | bytes]] = []
        if self.settings.token is not None:
            entries.append(("authorization", f"Bearer {self.settings.token}"))
        if kind is Kind.READ and self.settings.max_staleness_ms is not None:
            entries.append((STALENESS_METADATA_KEY, str(self.settings.max_staleness_ms)))
        return tuple(entries)

    def unary(
        self, method: Rpc[Req, Resp], request: Req, kind: Kind, *, timeout_s: float | None = None, pinned: str | None = None
    ) -> Resp:
        """One unary call. Every attempt has a deadline (`timeout_s`, default the client's)."""

        def attempt(url: str, deadline_s: float) -> Resp:
            call = self.endpoints.channel(url).unary_unary(
                method.path,
                request_serializer=method.request_type.SerializeToString,
                response_deserializer=method.response_type.FromString,
            )
            return call(request, timeout=deadline_s, metadata=self.metadata(kind))

        return self.with_retries(method.path, kind, attempt, timeout_s=timeout_s, pinned=pinned)

    def with_retries(
        self,
        name: str,
        kind: Kind,
        attempt: Callable[[str, float], T],
        *,
        timeout_s: float | None = None,
        pinned: str | None = None,
    ) -> T:
        settings = self.settings
        deadline_s = settings.timeout_s if timeout_s is None else timeout_s
        maybe_applied = False
        last_error = ""
        last_code: grpc.StatusCode | None = None
        backoffs = 0
        for number in range(1, settings.max_attempts + 1):
            url = pinned or self.endpoints.preferred()
            try:
                result = attempt(url, deadline_s)
            except grpc.RpcError as error:
                code, details = status_of(error)
                disposition = classify(code, details, metadata_of(error))
            else:
                if pinned is None:
                    self.endpoints.prefer(url)
                return result
            last_error, last_code = f"{url}: {code.name}: {details}", code
            if disposition.outcome is Outcome.FATAL:
                if maybe_applied and kind is Kind.WRITE:
                    raise OutcomeUnknownError(
                        f"{name}: outcome unknown: an earlier attempt may have been applied; then {last_error}",
                        number,
                        code,
                    )
                raise rejected(code, details)
            maybe_applied |= disposition.outcome is Outcome.MAYBE_APPLIED
            if number == settings.max_attempts:
                break
            leader = disposition.leader
            if pinned is None and leader is not None and self._redirect(url, leader):
                continue  # the follower named the leader: go there at once
            if pinned is None:
                self.endpoints.rotate_after(url)
            time.sleep(settings.backoff.delay(backoffs))
            backoffs += 1
        attempts = settings.max_attempts
        if maybe_applied and kind is Kind.WRITE:
            raise OutcomeUnknownError(
                f"{name}: commit outcome unknown after {attempts} attempts: {last_error}", attempts, last_code
            )
        raise UnavailableError(f"{name}: ledger unavailable after {attempts} attempts: {last_error}", attempts)

    def _redirect(self, url: str, leader: str) -> bool:
        try:
            if normalize_endpoint(leader, self.endpoints.tls_on) == url:
                return False
        except InvalidInputError:
            return False
        return self.endpoints.redirect(leader)

    def stream(
        self,
        method: Rpc[Req, Resp],
        request: Req,
        *,
        timeout_s: float,
        end_at_deadline: bool = False,
        pinned: str | None = None,
    ) -> Iterator[Resp]:
        """A server stream (a read): opened with retries until its first message arrives, then
        read to the end; the whole stream has the deadline `timeout_s`, which is never retried
        (it would restart the wait). With `end_at_deadline` (a watch) the deadline ends the
        stream quietly; otherwise it raises UnavailableError. A failure after the first message
        raises (UnavailableError or RejectedError): restart the read."""
        deadline_code = grpc.StatusCode.DEADLINE_EXCEEDED

        def attempt(url: str, deadline_s: float) -> tuple[Iterator[Resp], Resp | None]:
            call = self.endpoints.channel(url).unary_stream(
                method.path,
                request_serializer=method.request_type.SerializeToString,
                response_deserializer=method.response_type.FromString,
            )
            responses: Iterator[Resp] = call(request, timeout=deadline_s, metadata=self.metadata(Kind.READ))
            try:
                return responses, next(responses, None)
            except grpc.RpcError as error:
                if status_of(error)[0] != deadline_code:
                    raise
                if end_at_deadline:
                    return responses, None
                raise UnavailableError(f"{method.path}: no answer within {deadline_s} s", 1) from None

        responses, first = self.with_retries(method.path, Kind.READ, attempt, timeout_s=timeout_s, pinned=pinned)
        try:
            if first is None:
                return
            yield first
            yield from responses
        except grpc.RpcError as error:
            code, details = status_of(error)
            if code == deadline_code and end_at_deadline:
                return
            if classify(code, details, metadata_of(error)).outcome is Outcome.FATAL:
                raise rejected(code, details) from None
            raise UnavailableError(f"{method.path}: stream broken: {code.name}: {details}", 1) from None
        finally:
            # A consumer that stops early (break, close, garbage collection) ends the call.
            cancel = getattr(responses, "cancel", None)
            if callable(cancel):
                cancel()


def status_of(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    code_method = getattr(error, "code", None)
    details_method = getattr(error, "details", None)
    code = code_method() if callable(code_method) else grpc.StatusCode.UNKNOWN
    details = details_method() if callable(details_method) else str(error)
    return (code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN), str(details or "")


def channel_options() -> list[tuple[str, int]]:
    return [
        ("grpc.max_send_message_length", MESSAGE_BYTES_MAX),
        ("grpc.max_receive_message_length", MESSAGE_BYTES_MAX),
        # Pings find a dead peer on idle connections and long watch streams.
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # A restarted node is found again within a second (gRPC's default backoff reaches 120 s).
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1_000),
    ]
