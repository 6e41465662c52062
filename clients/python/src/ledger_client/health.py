"""`grpc.health.v1.Health/Check` on each node (public: no token needed).

The two messages are tiny and fixed by the gRPC spec, so they are encoded here by hand rather
than generated: registering grpc/health/v1/health.proto in the default descriptor pool would
clash with grpcio-health-checking in the same process.
"""

from __future__ import annotations

import enum

import grpc

from ._transport import Transport, normalize_endpoint, status_of

_CHECK = "/grpc.health.v1.Health/Check"


class HealthStatus(enum.Enum):
    UNKNOWN = 0
    SERVING = 1  # the node knows a current leader: it can take writes (forwarded) and reads
    NOT_SERVING = 2
    SERVICE_UNKNOWN = 3
    UNREACHABLE = -1  # no answer (not a gRPC status: the call failed)


def _encode_request(service: str) -> bytes:
    data = service.encode("utf-8")
    return (b"\x0a" + _varint(len(data)) + data) if data else b""


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _decode_status(data: bytes) -> HealthStatus:
    """Field 1 (varint) of HealthCheckResponse; unknown fields are skipped as the spec asks."""
    status, position = 0, 0
    while position < len(data):
        key, position = _read_varint(data, position)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _read_varint(data, position)
            if field == 1:
                status = value
        elif wire_type == 2:
            length, position = _read_varint(data, position)
            position += length
        else:
            break
    try:
        return HealthStatus(status)
    except ValueError:
        return HealthStatus.UNKNOWN


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while position < len(data):
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    return value, position


def _identity(data: bytes) -> bytes:
    return data


class HealthCalls:
    _transport: Transport

    def health(self, *, timeout: float = 2.0) -> dict[str, HealthStatus]:
        """Every known endpoint's health (one attempt each, `timeout` seconds)."""
        return {url: self.health_of(url, timeout=timeout) for url in self._transport.endpoints.list()}

    def health_of(self, endpoint: str, *, timeout: float = 2.0) -> HealthStatus:
        url = normalize_endpoint(endpoint, self._transport.endpoints.tls_on)
        channel = self._transport.endpoints.channel(url)
        call = channel.unary_unary(_CHECK, request_serializer=_identity, response_deserializer=_identity)
        try:
            return _decode_status(call(_encode_request(""), timeout=timeout))
        except grpc.RpcError as error:
            code, _ = status_of(error)
            return HealthStatus.NOT_SERVING if code == grpc.StatusCode.NOT_FOUND else HealthStatus.UNREACHABLE
