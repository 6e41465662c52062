"""Python client for the ledger's gRPC API (`ledger.v1`): see clients/python/README.md.

The protobuf modules and the enums (`ResultCode`, `AccountStatus`, `TransferKind`,
`PendingState`, `EntryKind`) are generated from the repository's proto/ when the package is
built; nothing generated is checked in.
"""

from ._audit import AccountBalances, ExportBalance, ExportHeader, ExportItem, ExportTrailer, JournalHead, JournalLine
from ._enums import AccountStatus, EntryKind, PendingState, ResultCode, TransferKind
from ._transport import Backoff, Tls
from ._wallet import IssuedToken, OfflineException, OfflineRecord, Reconciliation, SyncOutcome, Token, record_mac
from .amounts import LEDGER_CONTEXT, to_minor_units
from .client import Client, EntriesPage, Statement
from .errors import (
    AccountStateError,
    ConflictError,
    DataLossError,
    FailedPreconditionError,
    InsufficientFundsError,
    InvalidArgumentError,
    InvalidInputError,
    LedgerError,
    LimitExceededError,
    NotFoundError,
    NotFoundRefusedError,
    OutcomeUnknownError,
    PendingStateError,
    PermissionDeniedError,
    ProtocolError,
    RefusedError,
    RejectedError,
    ResourceExhaustedError,
    UnavailableError,
    ValidationError,
    WalletError,
    refusal_class,
)
from .health import HealthStatus
from .ids import transfer_id_from_key
from .types import (
    AccountEntry,
    AccountRecord,
    AssetRecord,
    BalanceAt,
    Balances,
    ClusterStatus,
    IdempotencyRecord,
    Leg,
    NewAccount,
    NodeStatus,
    Transfer,
    TransferRecord,
    WriteResult,
)

__all__ = [
    "AccountBalances", "AccountEntry", "AccountRecord", "AccountStateError", "AccountStatus", "AssetRecord",
    "Backoff", "BalanceAt", "Balances", "Client", "ClusterStatus", "ConflictError", "DataLossError", "EntriesPage",
    "EntryKind", "ExportBalance", "ExportHeader", "ExportItem", "ExportTrailer", "FailedPreconditionError",
    "HealthStatus", "IdempotencyRecord", "InsufficientFundsError", "InvalidArgumentError", "InvalidInputError",
    "IssuedToken", "JournalHead", "JournalLine", "LEDGER_CONTEXT", "LedgerError", "Leg", "LimitExceededError",
    "NewAccount", "NodeStatus", "NotFoundError", "NotFoundRefusedError", "OfflineException", "OfflineRecord",
    "OutcomeUnknownError", "PendingState", "PendingStateError", "PermissionDeniedError", "ProtocolError",
    "Reconciliation", "RefusedError", "RejectedError", "ResourceExhaustedError", "ResultCode", "Statement",
    "SyncOutcome", "Tls", "Token", "Transfer", "TransferKind", "TransferRecord", "UnavailableError",
    "ValidationError", "WalletError", "WriteResult", "record_mac", "refusal_class", "to_minor_units",
    "transfer_id_from_key",
]
