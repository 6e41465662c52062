"""Every error the client raises, split by what the caller can conclude about a write.

    LedgerError
    ├── InvalidInputError    bad input caught locally; nothing was sent (also a ValueError)
    ├── UnavailableError     no node took the request: nothing was applied; retry later
    ├── OutcomeUnknownError  a write MAY have been applied: repeat it with the same idempotency
    │                        key (never a new one) to learn its result
    ├── RejectedError        a definite gRPC refusal (status_code attached); not applied
    │   ├── InvalidArgumentError, NotFoundError, PermissionDeniedError,
    │   └── FailedPreconditionError, ResourceExhaustedError, DataLossError
    ├── ProtocolError        the response broke the API contract (a server bug)
    └── RefusedError         the ledger refused an item with a ResultCode (code attached)
        ├── ValidationError, NotFoundRefusedError, ConflictError, InsufficientFundsError,
        └── AccountStateError, PendingStateError, LimitExceededError, WalletError

Result codes map to a category by NAME (the proto's numbers may change; names do not), and a
code this client does not know maps to `RefusedError` itself.
"""

from __future__ import annotations

import grpc

from ._enums import ResultCode


class LedgerError(Exception):
    """Base of every error raised by ledger_client."""


class InvalidInputError(LedgerError, ValueError):
    """The caller's input is invalid; nothing was sent."""


class UnavailableError(LedgerError):
    """Every attempt failed before the request was accepted (could not connect, not the leader,
    no quorum), or a read failed: nothing was applied."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class OutcomeUnknownError(LedgerError):
    """A write may or may not have been committed: some attempt was sent and then timed out, lost
    its connection or was answered `x-ledger-outcome: unknown`, and no later attempt got a
    definite success. A definite refusal after such an attempt is reported here too (an earlier
    attempt may have applied). Repeat the same write with the same idempotency key to learn its
    result (the node replays the first result), or look it up by key."""

    def __init__(self, message: str, attempts: int, last_status: grpc.StatusCode | None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last_status = last_status


class RejectedError(LedgerError):
    """The node answered with a definite gRPC error: the request was not applied, and repeating
    it will fail the same way."""

    def __init__(self, status_code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{status_code.name}: {details}")
        self.status_code = status_code
        self.details = details


class InvalidArgumentError(RejectedError):
    """INVALID_ARGUMENT or OUT_OF_RANGE: the request breaks a bound or does not decode."""


class NotFoundError(RejectedError):
    """NOT_FOUND (e.g. an unknown token or external reference)."""


class PermissionDeniedError(RejectedError):
    """PERMISSION_DENIED or UNAUTHENTICATED: no token, an unknown one, or a role without access."""


class FailedPreconditionError(RejectedError):
    """FAILED_PRECONDITION: refused for good as asked (e.g. a membership change)."""


class ResourceExhaustedError(RejectedError):
    """RESOURCE_EXHAUSTED: a message over the size limit, or too many streams/exports at once."""


class DataLossError(RejectedError):
    """DATA_LOSS: the node found corrupted state and refuses to serve it."""


_REJECTED_BY_STATUS: dict[grpc.StatusCode, type[RejectedError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: PermissionDeniedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.DATA_LOSS: DataLossError,
}


def rejected(status_code: grpc.StatusCode, details: str) -> RejectedError:
    return _REJECTED_BY_STATUS.get(status_code, RejectedError)(status_code, details)


class ProtocolError(LedgerError):
    """The server's response breaks the API contract (an id not 16 bytes, a bad decimal, a
    missing result). Never retried."""


class RefusedError(LedgerError):
    """The ledger refused an item: `code` says why, `index` is its position in the request,
    `leg_index` the transfer leg that broke a rule (if one did)."""

    def __init__(self, code: ResultCode, index: int = 0, leg_index: int | None = None, id: int | None = None) -> None:
        leg = "" if leg_index is None else f" (leg {leg_index})"
        super().__init__(f"refused: {code.name.lower()}{leg}")
        self.code = code
        self.index = index
        self.leg_index = leg_index
        self.id = id


class ValidationError(RefusedError):
    """A field is malformed or out of its range (amount, id, key, legs, metadata, ...)."""


class NotFoundRefusedError(RefusedError):
    """An asset, account, pending transfer or token named by the item does not exist."""


class ConflictError(RefusedError):
    """The id, key or reference is taken by something else (or exists with other fields)."""


class InsufficientFundsError(RefusedError):
    """A balance rule would break (debits above credits, a 128-bit overflow)."""


class AccountStateError(RefusedError):
    """The account is frozen or closed, or cannot close with a balance."""


class PendingStateError(RefusedError):
    """The pending transfer was already posted, voided or expired, or cannot post that much."""


class LimitExceededError(RefusedError):
    """A risk limit or an offline allowance would be exceeded."""


class WalletError(RefusedError):
    """An offline wallet rule: MAC, sequence, token state, blocklist."""


_CATEGORY_BY_NAME: dict[str, type[RefusedError]] = {
    **dict.fromkeys(
        ["ID_MUST_NOT_BE_ZERO", "IDEMPOTENCY_KEY_INVALID", "ASSET_SCALE_OUT_OF_RANGE", "ACCOUNTS_MUST_BE_DIFFERENT",
         "LEGS_EMPTY", "LEGS_TOO_MANY", "AMOUNT_ZERO", "AMOUNT_NEGATIVE", "AMOUNT_SCALE_EXCEEDED", "AMOUNT_OVERFLOW",
         "POST_AMOUNTS_MISMATCH", "TIMEOUT_RESERVED_FOR_PENDING", "FLAGS_ARE_MUTUALLY_EXCLUSIVE",
         "ACCOUNT_CODE_MUST_NOT_BE_ZERO", "LEGS_NOT_ALLOWED", "TIMEOUT_TOO_LARGE", "UNSPECIFIED"],
        ValidationError,
    ),
    **dict.fromkeys(
        ["ASSET_NOT_FOUND", "ACCOUNT_NOT_FOUND", "DEBIT_ACCOUNT_NOT_FOUND", "CREDIT_ACCOUNT_NOT_FOUND",
         "PENDING_TRANSFER_NOT_FOUND", "TOKEN_NOT_FOUND", "EXTERNAL_REF_NOT_BOUND", "REFUND_ORIGINAL_NOT_FOUND"],
        NotFoundRefusedError,
    ),
    **dict.fromkeys(
        ["EXISTS_WITH_DIFFERENT_FIELDS", "ID_ALREADY_USED", "IDEMPOTENCY_KEY_CONFLICT", "EXTERNAL_REF_ALREADY_USED",
         "ASSET_MISMATCH", "ACCOUNT_HAS_EXTERNAL_REF", "REFUND_ASSET_MISMATCH", "REFUND_ACCOUNTS_MISMATCH",
         "REFUND_ORIGINAL_NOT_POSTED", "REFUND_EXCEEDS_REFUNDABLE", "LINKED_EVENT_FAILED", "LINKED_EVENT_CHAIN_OPEN"],
        ConflictError,
    ),
    **dict.fromkeys(["EXCEEDS_CREDITS", "EXCEEDS_DEBITS", "OVERFLOWS_BALANCE"], InsufficientFundsError),
    **dict.fromkeys(["ACCOUNT_FROZEN", "ACCOUNT_CLOSED", "BALANCE_NOT_ZERO", "OVERDRAFT_BELOW_DRAWN"], AccountStateError),
    **dict.fromkeys(
        ["PENDING_TRANSFER_NOT_PENDING", "PENDING_TRANSFER_ALREADY_POSTED", "PENDING_TRANSFER_ALREADY_VOIDED",
         "PENDING_TRANSFER_EXPIRED", "POST_AMOUNT_EXCEEDS_PENDING"],
        PendingStateError,
    ),
    **dict.fromkeys(
        ["DEBIT_LIMIT_EXCEEDED", "DAILY_DEBIT_AMOUNT_EXCEEDED", "DAILY_DEBIT_COUNT_EXCEEDED",
         "OFFLINE_LIMIT_EXCEEDED", "OFFLINE_COUNT_EXCEEDED", "RISK_AMOUNT_EXCEEDED", "RISK_COUNT_EXCEEDED",
         "RISK_BALANCE_EXCEEDED"],
        LimitExceededError,
    ),
    **dict.fromkeys(["MAC_INVALID", "SEQUENCE_REUSED", "TOKEN_NOT_ACTIVE", "SYNC_INCOMPLETE", "BLOCKED"], WalletError),
}


def refusal_class(code: ResultCode) -> type[RefusedError]:
    """The exception class of a refusal code; any `*_INVALID` is a ValidationError."""
    category = _CATEGORY_BY_NAME.get(code.name)
    if category is not None:
        return category
    if code.name.endswith("_INVALID"):
        return ValidationError
    return RefusedError


SUCCESS_NAMES = frozenset(["OK", "EXISTS"])


def is_success(code: ResultCode) -> bool:
    """OK, or EXISTS (an asset or account already there with the same fields)."""
    return code.name in SUCCESS_NAMES
