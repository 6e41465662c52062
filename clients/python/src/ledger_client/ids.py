"""128-bit ids: Python ints on the API, exactly 16 big-endian bytes on the wire."""

from __future__ import annotations

import hashlib

from .errors import InvalidInputError, ProtocolError

ID_BYTES = 16
ID_MAX = 2**128 - 1


def encode_id(value: int, what: str = "id") -> bytes:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 <= value <= ID_MAX:
        raise InvalidInputError(f"{what} {value} is outside 0..2^128-1")
    return value.to_bytes(ID_BYTES, "big")


def decode_id(raw: bytes, what: str = "id") -> int:
    """Exactly 16 bytes; any other length is a broken response, never a zero-padded id."""
    if len(raw) != ID_BYTES:
        raise ProtocolError(f"{what} is {len(raw)} bytes, not {ID_BYTES}")
    return int.from_bytes(raw, "big")


def decode_optional_id(raw: bytes, what: str = "id") -> int | None:
    """Empty bytes mean "none" (e.g. `pending_id`, `WriteResult.id` of some refusals)."""
    return None if raw == b"" else decode_id(raw, what)


def transfer_id_from_key(idempotency_key: str) -> int:
    """The transfer id derived from an idempotency key, as the `ledger` CLI derives it: the first
    16 bytes (big-endian) of SHA-256("ledger.transfer-id.v1\\0" + key), never zero.

    The transfer id is part of what the node compares on a repeated key, so a retry must reuse
    it: deriving it from the key makes a retry after a crash (a new process) safe too."""
    digest = hashlib.sha256(b"ledger.transfer-id.v1\0" + idempotency_key.encode("utf-8")).digest()
    return max(int.from_bytes(digest[:ID_BYTES], "big"), 1)
