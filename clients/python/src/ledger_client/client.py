"""`Client`: typed calls to `ledger.v1.Ledger`, with leader following and safe retries.

Blocking and thread-safe: one Client can be shared by threads (channels are per endpoint and
multiplex calls). Close it (or use it as a context manager) to release the channels.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import cast

from . import ids
from ._audit import AuditCalls
from ._enums import AccountStatus, ResultCode, TransferKind
from ._proto.ledger.v1 import ledger_pb2
from ._transport import Backoff, Endpoints, Kind, Settings, Tls, Transport, channel_options, normalize_endpoint, rpc
from ._wallet import WalletCalls
from .errors import InvalidInputError, NotFoundError
from .health import HealthCalls
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
    Transfer,
    TransferRecord,
    WriteResult,
    write_results,
)

_LEDGER = ledger_pb2.DESCRIPTOR.services_by_name["Ledger"]
_CREATE_ASSETS = rpc(_LEDGER, "CreateAssets", ledger_pb2.CreateAssetsRequest, ledger_pb2.CreateAssetsResponse)
_CREATE_ACCOUNTS = rpc(_LEDGER, "CreateAccounts", ledger_pb2.CreateAccountsRequest, ledger_pb2.CreateAccountsResponse)
_CREATE_TRANSFERS = rpc(
    _LEDGER, "CreateTransfers", ledger_pb2.CreateTransfersRequest, ledger_pb2.CreateTransfersResponse
)
_SET_STATUS = rpc(_LEDGER, "SetAccountStatus", ledger_pb2.SetAccountStatusRequest, ledger_pb2.SetAccountStatusResponse)
_LOOKUP_ASSETS = rpc(_LEDGER, "LookupAssets", ledger_pb2.LookupAssetsRequest, ledger_pb2.LookupAssetsResponse)
_LOOKUP_ACCOUNTS = rpc(_LEDGER, "LookupAccounts", ledger_pb2.LookupAccountsRequest, ledger_pb2.LookupAccountsResponse)
_LOOKUP_TRANSFERS = rpc(
    _LEDGER, "LookupTransfers", ledger_pb2.LookupTransfersRequest, ledger_pb2.LookupTransfersResponse
)
_BY_KEY = rpc(
    _LEDGER,
    "GetTransferByIdempotencyKey",
    ledger_pb2.GetTransferByIdempotencyKeyRequest,
    ledger_pb2.GetTransferByIdempotencyKeyResponse,
)
_BY_REF = rpc(
    _LEDGER, "GetAccountByExternalRef", ledger_pb2.GetAccountByExternalRefRequest, ledger_pb2.GetAccountByExternalRefResponse
)
_ENTRIES = rpc(
    _LEDGER, "ListAccountEntries", ledger_pb2.ListAccountEntriesRequest, ledger_pb2.ListAccountEntriesResponse
)
_BALANCE_AT = rpc(_LEDGER, "GetBalanceAt", ledger_pb2.GetBalanceAtRequest, ledger_pb2.GetBalanceAtResponse)
_WATCH = rpc(_LEDGER, "WatchAccount", ledger_pb2.WatchAccountRequest, ledger_pb2.AccountEntry)
_CLUSTER_STATUS = rpc(_LEDGER, "ClusterStatus", ledger_pb2.ClusterStatusRequest, ledger_pb2.ClusterStatusResponse)

#: Entries per ListAccountEntries page when iterating (the node's maximum).
PAGE_ENTRIES_MAX = 1000


@dataclass(frozen=True)
class EntriesPage:
    entries: list[AccountEntry]
    #: Pass as `cursor_timestamp_ns` for the next page; None when there is none.
    next_cursor_timestamp_ns: int | None


@dataclass(frozen=True)
class Statement:
    """An account's statement for `from_ns..=to_ns`: the balance before it, then every entry
    (each with the running balance after it), fetched page by page as `entries` is iterated."""

    account_id: int
    from_ns: int
    to_ns: int | None
    opening: Balances
    entries: Iterator[AccountEntry]


class Client(AuditCalls, WalletCalls, HealthCalls):
    """A client of one ledger cluster.

    `endpoints`: the nodes' URLs (`http://127.0.0.1:7070`; a bare `host:port` gets the scheme).
    Writes go to the leader: a follower's UNAVAILABLE naming the leader in `x-ledger-leader` is
    followed at once. `token`: sent as `authorization: Bearer ...`. `tls`: `Tls.from_files(ca)`
    for `https://` nodes. `timeout`: the deadline of every attempt, in seconds.
    `max_attempts`: attempts per call (retries with backoff, on the next endpoint).
    `max_staleness_ms`: reads may be answered from a follower's state up to that old."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        token: str | None = None,
        tls: Tls | None = None,
        timeout: float = 10.0,
        max_attempts: int = 9,
        backoff: Backoff = Backoff(),
        max_staleness_ms: int | None = None,
    ) -> None:
        if token is not None and (not token or not all(33 <= ord(c) <= 126 for c in token)):
            raise InvalidInputError("a token is 1 or more visible ASCII characters")
        if not timeout > 0 or max_attempts < 1:
            raise InvalidInputError("timeout must be > 0 and max_attempts >= 1")
        if max_staleness_ms is not None and not 1 <= max_staleness_ms <= 60_000:
            raise InvalidInputError("max_staleness_ms is 1..=60000")
        self._transport = Transport(
            Endpoints(endpoints, tls, channel_options()),
            Settings(timeout, max_attempts, backoff, token, max_staleness_ms),
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._transport.endpoints.close()

    def __repr__(self) -> str:
        return f"Client(endpoints={self.endpoints!r})"

    @property
    def endpoints(self) -> list[str]:
        """Known endpoints, including those learned from leader redirects."""
        return self._transport.endpoints.list()

    # ---- writes ----

    def create_assets(self, assets: Sequence[tuple[str, int]]) -> list[WriteResult]:
        """`(code, scale)` pairs; one result per asset (EXISTS when created before alike)."""
        if not assets:
            return []
        request = ledger_pb2.CreateAssetsRequest(assets=[ledger_pb2.Asset(code=c, scale=s) for c, s in assets])
        response = self._transport.unary(_CREATE_ASSETS, request, Kind.WRITE)
        return write_results(response.results, len(assets))

    def create_asset(self, code: str, scale: int) -> WriteResult:
        """Creates an asset (EXISTS if it exists with this scale); raises on a refusal."""
        return self.create_assets([(code, scale)])[0].raise_for_code()

    def create_accounts(self, accounts: Sequence[NewAccount]) -> list[WriteResult]:
        if not accounts:
            return []
        request = ledger_pb2.CreateAccountsRequest(accounts=[a.to_proto() for a in accounts])
        response = self._transport.unary(_CREATE_ACCOUNTS, request, Kind.WRITE)
        return write_results(response.results, len(accounts))

    def submit_transfers(self, transfers: Sequence[Transfer]) -> list[WriteResult]:
        """One result per transfer, in order. Each transfer's legs apply all or none; a refused
        one names the leg (`leg_index`). A repeat of the same key and content answers the first
        result with `replay=True`. Raises OutcomeUnknownError when the batch may have been
        committed: call again with the same transfers (same keys) to learn the results."""
        if not transfers:
            return []
        request = ledger_pb2.CreateTransfersRequest(transfers=[t.to_proto() for t in transfers])
        response = self._transport.unary(_CREATE_TRANSFERS, request, Kind.WRITE)
        return write_results(response.results, len(transfers))

    def submit_transfer(
        self, idempotency_key: str, asset: str, legs: Sequence[Leg], *, id: int | None = None, code: int = 0
    ) -> WriteResult:
        """A posted transfer of one or more legs; raises the refusal's RefusedError subclass."""
        transfer = Transfer(idempotency_key, asset, tuple(legs), TransferKind.POSTED, id=id, code=code)
        return self.submit_transfers([transfer])[0].raise_for_code()

    def hold(
        self,
        idempotency_key: str,
        asset: str,
        legs: Sequence[Leg],
        *,
        timeout_ms: int = 0,
        id: int | None = None,
        code: int = 0,
    ) -> WriteResult:
        """A pending (two-phase) transfer: the amounts are held in the pending balances until
        `post_pending`, `void_pending` or the timeout (0: none). `result.id` is the hold's id."""
        transfer = Transfer(
            idempotency_key, asset, tuple(legs), TransferKind.PENDING, id=id, timeout_ms=timeout_ms, code=code
        )
        return self.submit_transfers([transfer])[0].raise_for_code()

    def post_pending(
        self, idempotency_key: str, pending_id: int, amounts: Sequence[Decimal] = (), *, id: int | None = None
    ) -> WriteResult:
        """Posts a hold: all of it, or `amounts` (one per leg of the hold)."""
        transfer = Transfer(
            idempotency_key, kind=TransferKind.POST_PENDING, id=id, pending_id=pending_id, post_amounts=tuple(amounts)
        )
        return self.submit_transfers([transfer])[0].raise_for_code()

    def void_pending(self, idempotency_key: str, pending_id: int, *, id: int | None = None) -> WriteResult:
        """Releases a hold."""
        transfer = Transfer(idempotency_key, kind=TransferKind.VOID_PENDING, id=id, pending_id=pending_id)
        return self.submit_transfers([transfer])[0].raise_for_code()

    def set_account_status(self, account_id: int, status: AccountStatus, reason: str = "") -> WriteResult:
        """Active, frozen (no debits) or closed (final); raises on a refusal."""
        change = ledger_pb2.AccountStatusChange(
            account_id=ids.encode_id(account_id, "account id"), status=cast(ledger_pb2.AccountStatus, status.value), reason=reason
        )
        request = ledger_pb2.SetAccountStatusRequest(changes=[change])
        response = self._transport.unary(_SET_STATUS, request, Kind.WRITE)
        return write_results(response.results, 1)[0].raise_for_code()

    # ---- reads (linearizable on every node unless max_staleness_ms) ----

    def lookup_assets(self, codes: Sequence[str]) -> list[AssetRecord]:
        response = self._transport.unary(_LOOKUP_ASSETS, ledger_pb2.LookupAssetsRequest(codes=list(codes)), Kind.READ)
        return [AssetRecord(a.asset.code, a.asset.scale, a.timestamp_ns) for a in response.assets]

    def lookup_accounts(self, account_ids: Sequence[int]) -> list[AccountRecord]:
        """The accounts found, in request order; ids not found are left out."""
        request = ledger_pb2.LookupAccountsRequest(ids=[ids.encode_id(i, "account id") for i in account_ids])
        response = self._transport.unary(_LOOKUP_ACCOUNTS, request, Kind.READ)
        return [AccountRecord.from_proto(a) for a in response.accounts]

    def lookup_account(self, account_id: int) -> AccountRecord | None:
        return next((a for a in self.lookup_accounts([account_id]) if a.id == account_id), None)

    def lookup_transfers(self, transfer_ids: Sequence[int]) -> list[TransferRecord]:
        """The transfers found, in request order; ids not found are left out."""
        request = ledger_pb2.LookupTransfersRequest(ids=[ids.encode_id(i, "transfer id") for i in transfer_ids])
        response = self._transport.unary(_LOOKUP_TRANSFERS, request, Kind.READ)
        return [TransferRecord.from_proto(t) for t in response.transfers]

    def get_transfer(self, transfer_id: int) -> TransferRecord | None:
        return next((t for t in self.lookup_transfers([transfer_id]) if t.id == transfer_id), None)

    def get_transfer_by_idempotency_key(self, idempotency_key: str) -> IdempotencyRecord | None:
        """What the key is bound to (its first result, a failure included), or None if unused."""
        request = ledger_pb2.GetTransferByIdempotencyKeyRequest(idempotency_key=idempotency_key)
        try:
            response = self._transport.unary(_BY_KEY, request, Kind.READ)
        except NotFoundError:  # API revision 2; revision 1 answered found=false
            return None
        if not response.found:
            return None
        return IdempotencyRecord(
            code=ResultCode(response.code),
            transfer_id=ids.decode_id(response.transfer_id, "transfer id"),
            timestamp_ns=response.timestamp_ns,
            transfer=TransferRecord.from_proto(response.transfer) if response.HasField("transfer") else None,
        )

    def get_account_by_external_ref(self, external_ref: str) -> AccountRecord | None:
        request = ledger_pb2.GetAccountByExternalRefRequest(external_ref=external_ref)
        try:
            response = self._transport.unary(_BY_REF, request, Kind.READ)
        except NotFoundError:
            return None
        return AccountRecord.from_proto(response.account) if response.HasField("account") else None

    def list_account_entries(
        self, account_id: int, cursor_timestamp_ns: int = 0, limit: int = 0, reverse: bool = False
    ) -> EntriesPage:
        """One page of entries strictly after the cursor (before it when `reverse`); cursor 0
        starts at the beginning (or the end). `limit` 1..=1000, 0 means 100."""
        request = ledger_pb2.ListAccountEntriesRequest(
            account_id=ids.encode_id(account_id, "account id"),
            cursor_timestamp_ns=cursor_timestamp_ns,
            limit=limit,
            reverse=reverse,
        )
        response = self._transport.unary(_ENTRIES, request, Kind.READ)
        entries = [AccountEntry.from_proto(e) for e in response.entries]
        return EntriesPage(entries, response.next_cursor_timestamp_ns or None)

    def account_entries(
        self, account_id: int, from_ns: int = 0, to_ns: int | None = None, page_entries: int = PAGE_ENTRIES_MAX
    ) -> Iterator[AccountEntry]:
        """Every entry with `from_ns <= timestamp_ns <= to_ns`, oldest first, fetched a page at a
        time (memory: one page, whatever the account's history)."""
        cursor = max(from_ns - 1, 0)
        while True:
            page = self.list_account_entries(account_id, cursor, page_entries)
            for entry in page.entries:
                if entry.timestamp_ns < from_ns:
                    continue
                if to_ns is not None and entry.timestamp_ns > to_ns:
                    return
                yield entry
            next_cursor = page.next_cursor_timestamp_ns
            if next_cursor is None or (to_ns is not None and next_cursor > to_ns) or next_cursor <= cursor:
                return
            cursor = next_cursor

    def balance_at(self, account_id: int, timestamp_ns: int) -> BalanceAt:
        """Balances as of the last entry at or before `timestamp_ns`."""
        request = ledger_pb2.GetBalanceAtRequest(account_id=ids.encode_id(account_id, "account id"), timestamp_ns=timestamp_ns)
        response = self._transport.unary(_BALANCE_AT, request, Kind.READ)
        return BalanceAt(Balances.from_proto(response.balances), response.as_of_timestamp_ns or None)

    def statement(self, account_id: int, from_ns: int = 0, to_ns: int | None = None) -> Statement:
        """The opening balance (as of `from_ns - 1`) and the entries of `from_ns..=to_ns`."""
        zero = Decimal(0)
        opening = Balances(zero, zero, zero, zero) if from_ns == 0 else self.balance_at(account_id, from_ns - 1).balances
        return Statement(account_id, from_ns, to_ns, opening, self.account_entries(account_id, from_ns, to_ns))

    def watch_account(self, account_id: int, *, timeout: float = 3600.0) -> Iterator[AccountEntry]:
        """Entries committed on the account from now on; the iteration ends after `timeout`
        seconds (the stream's deadline). A broken connection raises UnavailableError: resubscribe
        and fill the gap with `account_entries(from_ns=last timestamp + 1)`."""
        request = ledger_pb2.WatchAccountRequest(account_id=ids.encode_id(account_id, "account id"))
        for entry in self._transport.stream(_WATCH, request, timeout_s=timeout, end_at_deadline=True):
            yield AccountEntry.from_proto(entry)

    def cluster_status(self, endpoint: str | None = None) -> ClusterStatus:
        """The status as one node sees it: `endpoint` (no failover), or the preferred node."""
        request = ledger_pb2.ClusterStatusRequest()
        response = self._transport.unary(_CLUSTER_STATUS, request, Kind.READ, pinned=self._known(endpoint))
        return ClusterStatus.from_proto(response)

    def _known(self, endpoint: str | None) -> str | None:
        if endpoint is None:
            return None
        url = normalize_endpoint(endpoint, self._transport.endpoints.tls_on)
        if url not in self.endpoints:
            raise InvalidInputError(f"{endpoint!r} is not one of the client's endpoints")
        return url

