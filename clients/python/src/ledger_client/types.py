"""The client's value types: what callers build and read.

Ids are ints (0..2^128-1), amounts `Decimal`, timestamps int nanoseconds since the Unix epoch
(assigned by the Raft leader, unique). Each `from_proto` checks every id, decimal and enum of a
response; each `to_proto` checks the caller's input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import cast

from . import amounts, ids
from ._enums import AccountStatus, EntryKind, PendingState, ResultCode, TransferKind
from ._proto.ledger.v1 import ledger_pb2
from .errors import InvalidInputError, ProtocolError, RefusedError, is_success, refusal_class

IDEMPOTENCY_KEY_MAX_BYTES = 128


@dataclass(frozen=True)
class WriteResult:
    """The result of one item of a write, in request order."""

    index: int
    code: ResultCode
    timestamp_ns: int
    leg_index: int | None
    replay: bool
    #: The account's id (accounts, status changes) or the id of the transfer the idempotency
    #: key is bound to (transfers); 0 when the node sent none (assets, some refusals).
    id: int

    @property
    def ok(self) -> bool:
        """OK, or EXISTS (created before with the same fields: an idempotent success)."""
        return is_success(self.code)

    def error(self) -> RefusedError | None:
        """The exception of this refusal (its class is the code's category); None on success."""
        if self.ok:
            return None
        return refusal_class(self.code)(self.code, self.index, self.leg_index, self.id or None)

    def raise_for_code(self) -> WriteResult:
        """Raises the refusal's exception; returns self on success."""
        error = self.error()
        if error is not None:
            raise error
        return self

    @staticmethod
    def from_proto(p: ledger_pb2.WriteResult) -> WriteResult:
        return WriteResult(
            index=p.index,
            code=ResultCode(p.code),
            timestamp_ns=p.timestamp_ns,
            leg_index=p.leg_index if p.HasField("leg_index") else None,
            replay=p.replay,
            id=ids.decode_optional_id(p.id, "WriteResult.id") or 0,
        )


def write_results(results: Sequence[ledger_pb2.WriteResult], expected: int) -> list[WriteResult]:
    """One result per item, in request order, or the response breaks the contract."""
    if len(results) != expected:
        raise ProtocolError(f"{len(results)} results for {expected} items")
    decoded = [WriteResult.from_proto(r) for r in results]
    if [r.index for r in decoded] != list(range(expected)):
        raise ProtocolError("results are not one per item in request order")
    return decoded


@dataclass(frozen=True)
class NewAccount:
    id: int
    asset: str
    code: int
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False
    overdraft_limit: Decimal | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    external_ref: str | None = None

    def to_proto(self) -> ledger_pb2.Account:
        return ledger_pb2.Account(
            id=ids.encode_id(self.id, "account id"),
            asset=self.asset,
            code=self.code,
            debits_must_not_exceed_credits=self.debits_must_not_exceed_credits,
            credits_must_not_exceed_debits=self.credits_must_not_exceed_debits,
            overdraft_limit="" if self.overdraft_limit is None else amounts.to_wire(self.overdraft_limit, "overdraft_limit"),
            metadata=dict(self.metadata),
            external_ref=self.external_ref or "",
        )

    @staticmethod
    def from_proto(p: ledger_pb2.Account) -> NewAccount:
        return NewAccount(
            id=ids.decode_id(p.id, "account id"),
            asset=p.asset,
            code=p.code,
            debits_must_not_exceed_credits=p.debits_must_not_exceed_credits,
            credits_must_not_exceed_debits=p.credits_must_not_exceed_debits,
            overdraft_limit=amounts.optional_from_wire(p.overdraft_limit, "overdraft_limit"),
            metadata=dict(sorted(p.metadata.items())),
            external_ref=p.external_ref or None,
        )


@dataclass(frozen=True)
class Balances:
    debits_posted: Decimal
    credits_posted: Decimal
    debits_pending: Decimal
    credits_pending: Decimal

    @property
    def net_posted(self) -> Decimal:
        """credits_posted - debits_posted, exact at any length (no context rounding)."""
        return _exact_sub(self.credits_posted, self.debits_posted)

    @staticmethod
    def from_proto(p: ledger_pb2.Balances) -> Balances:
        return Balances(
            debits_posted=amounts.from_wire(p.debits_posted or "0", "debits_posted"),
            credits_posted=amounts.from_wire(p.credits_posted or "0", "credits_posted"),
            debits_pending=amounts.from_wire(p.debits_pending or "0", "debits_pending"),
            credits_pending=amounts.from_wire(p.credits_pending or "0", "credits_pending"),
        )


def _exact_sub(a: Decimal, b: Decimal) -> Decimal:
    return amounts.LEDGER_CONTEXT.subtract(a, b)


@dataclass(frozen=True)
class AccountRecord:
    account: NewAccount
    status: AccountStatus
    balances: Balances
    timestamp_ns: int

    @property
    def id(self) -> int:
        return self.account.id

    @staticmethod
    def from_proto(p: ledger_pb2.AccountRecord) -> AccountRecord:
        return AccountRecord(
            account=NewAccount.from_proto(p.account),
            status=AccountStatus(p.status),
            balances=Balances.from_proto(p.balances),
            timestamp_ns=p.timestamp_ns,
        )


@dataclass(frozen=True)
class Leg:
    """Debit `debit`, credit `credit`, by `amount` (a Decimal with at most the asset's scale)."""

    debit: int
    credit: int
    amount: Decimal

    def to_proto(self) -> ledger_pb2.Leg:
        return ledger_pb2.Leg(
            debit_account_id=ids.encode_id(self.debit, "debit account id"),
            credit_account_id=ids.encode_id(self.credit, "credit account id"),
            amount=amounts.to_wire(self.amount),
        )

    @staticmethod
    def from_proto(p: ledger_pb2.Leg) -> Leg:
        return Leg(
            debit=ids.decode_id(p.debit_account_id, "debit account id"),
            credit=ids.decode_id(p.credit_account_id, "credit account id"),
            amount=amounts.from_wire(p.amount),
        )


@dataclass(frozen=True)
class Transfer:
    """A transfer to submit. `idempotency_key` is required: a repeat with the same key and
    content replays the first result and moves nothing. `id` defaults to one derived from the
    key (`transfer_id_from_key`), so a retry, even from a new process, reuses it."""

    idempotency_key: str
    asset: str = ""
    legs: Sequence[Leg] = ()
    kind: TransferKind = TransferKind.POSTED
    id: int | None = None
    pending_id: int | None = None
    timeout_ms: int = 0
    post_amounts: Sequence[Decimal] = ()
    code: int = 0

    @property
    def transfer_id(self) -> int:
        return self.id if self.id is not None else ids.transfer_id_from_key(self.idempotency_key)

    def to_proto(self) -> ledger_pb2.Transfer:
        key_bytes = len(self.idempotency_key.encode("utf-8")) if isinstance(self.idempotency_key, str) else 0
        if not 1 <= key_bytes <= IDEMPOTENCY_KEY_MAX_BYTES:
            raise InvalidInputError(f"an idempotency key is required: 1..={IDEMPOTENCY_KEY_MAX_BYTES} bytes of UTF-8")
        return ledger_pb2.Transfer(
            id=ids.encode_id(self.transfer_id, "transfer id"),
            idempotency_key=self.idempotency_key,
            asset=self.asset,
            legs=[leg.to_proto() for leg in self.legs],
            kind=cast(ledger_pb2.TransferKind, self.kind.value),
            pending_id=b"" if self.pending_id is None else ids.encode_id(self.pending_id, "pending id"),
            timeout_ms=self.timeout_ms,
            post_amounts=[amounts.to_wire(a, "post amount") for a in self.post_amounts],
            code=self.code,
        )

    @staticmethod
    def from_proto(p: ledger_pb2.Transfer) -> Transfer:
        return Transfer(
            idempotency_key=p.idempotency_key,
            asset=p.asset,
            legs=tuple(Leg.from_proto(leg) for leg in p.legs),
            kind=TransferKind(p.kind),
            id=ids.decode_id(p.id, "transfer id"),
            pending_id=ids.decode_optional_id(p.pending_id, "pending id"),
            timeout_ms=p.timeout_ms,
            post_amounts=tuple(amounts.from_wire(a, "post amount") for a in p.post_amounts),
            code=p.code,
        )


@dataclass(frozen=True)
class TransferRecord:
    transfer: Transfer
    timestamp_ns: int
    pending_state: PendingState
    expires_at_ns: int
    posted_legs: tuple[Leg, ...]
    owner: str

    @property
    def id(self) -> int:
        return self.transfer.transfer_id

    @staticmethod
    def from_proto(p: ledger_pb2.TransferRecord) -> TransferRecord:
        return TransferRecord(
            transfer=Transfer.from_proto(p.transfer),
            timestamp_ns=p.timestamp_ns,
            pending_state=PendingState(p.pending_state),
            expires_at_ns=p.expires_at_ns,
            posted_legs=tuple(Leg.from_proto(leg) for leg in p.posted_legs),
            owner=p.owner,
        )


@dataclass(frozen=True)
class IdempotencyRecord:
    """What an idempotency key is bound to: the first result recorded for it."""

    code: ResultCode
    transfer_id: int
    timestamp_ns: int
    transfer: TransferRecord | None


@dataclass(frozen=True)
class AssetRecord:
    code: str
    scale: int
    timestamp_ns: int


@dataclass(frozen=True)
class AccountEntry:
    """One change to one account's balances; `balances_after` is the running balance."""

    account_id: int
    timestamp_ns: int
    transfer_id: int
    leg_index: int
    kind: EntryKind
    is_debit: bool
    amount: Decimal
    balances_after: Balances

    @staticmethod
    def from_proto(p: ledger_pb2.AccountEntry) -> AccountEntry:
        return AccountEntry(
            account_id=ids.decode_id(p.account_id, "account id"),
            timestamp_ns=p.timestamp_ns,
            transfer_id=ids.decode_id(p.transfer_id, "transfer id"),
            leg_index=p.leg_index,
            kind=EntryKind(p.kind),
            is_debit=p.is_debit,
            amount=amounts.from_wire(p.amount),
            balances_after=Balances.from_proto(p.balances_after),
        )


@dataclass(frozen=True)
class BalanceAt:
    balances: Balances
    #: The last entry at or before the asked time; None when there is none.
    as_of_timestamp_ns: int | None


@dataclass(frozen=True)
class NodeStatus:
    node_id: int
    address: str
    role: str
    voter: bool


@dataclass(frozen=True)
class ClusterStatus:
    node_id: int
    role: str
    term: int
    leader_id: int | None
    leader_address: str
    committed_index: int
    applied_index: int
    nodes: tuple[NodeStatus, ...]

    @staticmethod
    def from_proto(p: ledger_pb2.ClusterStatusResponse) -> ClusterStatus:
        return ClusterStatus(
            node_id=p.node_id,
            role=p.role,
            term=p.term,
            leader_id=p.leader_id if p.HasField("leader_id") else None,
            leader_address=p.leader_address,
            committed_index=p.committed_index,
            applied_index=p.applied_index,
            nodes=tuple(NodeStatus(n.node_id, n.address, n.role, n.voter) for n in p.nodes),
        )
