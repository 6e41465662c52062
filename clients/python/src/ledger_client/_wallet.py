"""The `ledger.v1.Wallet` calls (offline HCE wallets: tokens, offline records, reconciliation)
and the record MAC, computed exactly as the node verifies it. All wallet writes are safe to
retry: an issue repeats as EXISTS, a record is de-duplicated by (token, sequence), a revoke is a set.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from . import amounts, ids
from ._enums import ResultCode
from ._proto.ledger.v1 import ledger_pb2, wallet_pb2
from ._transport import Kind, Transport, rpc
from .errors import NotFoundError
from .types import AccountRecord, WriteResult

_WALLET = wallet_pb2.DESCRIPTOR.services_by_name["Wallet"]
_ISSUE = rpc(_WALLET, "IssueToken", wallet_pb2.IssueTokenRequest, wallet_pb2.IssueTokenResponse)
_SYNC = rpc(_WALLET, "SyncOfflineRecords", wallet_pb2.SyncOfflineRecordsRequest, wallet_pb2.SyncOfflineRecordsResponse)
_REVOKE = rpc(_WALLET, "RevokeToken", wallet_pb2.RevokeTokenRequest, ledger_pb2.WriteResult)
_GET = rpc(_WALLET, "GetToken", wallet_pb2.GetTokenRequest, wallet_pb2.GetTokenResponse)
_EXCEPTIONS = rpc(_WALLET, "ListExceptions", wallet_pb2.ListExceptionsRequest, wallet_pb2.ListExceptionsResponse)
_RECONCILE = rpc(_WALLET, "Reconcile", wallet_pb2.ReconcileRequest, wallet_pb2.ReconcileResponse)


def record_mac(
    key: bytes, token_id: int, sequence: int, amount: Decimal, asset_scale: int, merchant_account_id: int,
    device_time_ms: int,
) -> bytes:
    """HMAC-SHA-256(token key, token id || sequence || amount minor || merchant || device time),
    ids and the amount as 16 big-endian bytes, sequence and device time as 8."""
    message = (
        ids.encode_id(token_id, "token id")
        + sequence.to_bytes(8, "big")
        + amounts.to_minor_units(amount, asset_scale).to_bytes(16, "big")
        + ids.encode_id(merchant_account_id, "merchant account id")
        + device_time_ms.to_bytes(8, "big")
    )
    return hmac.new(key, message, hashlib.sha256).digest()


@dataclass(frozen=True)
class Token:
    token_id: int
    account_id: int
    clearing_account_id: int
    device_id: str
    asset: str
    offline_limit: Decimal
    max_offline_count: int
    issued_at_ns: int
    expires_at_ns: int
    status: str  # "active", "revoked", "released"
    hold_placed: Decimal
    hold_remaining: Decimal  # the offline allowance
    hold_capped: bool
    generation: int
    seq_base: int
    seq_high: int

    @staticmethod
    def from_proto(p: wallet_pb2.Token) -> Token:
        return Token(
            token_id=ids.decode_id(p.token_id, "token id"),
            account_id=ids.decode_id(p.account_id, "account id"),
            clearing_account_id=ids.decode_id(p.clearing_account_id, "clearing account id"),
            device_id=p.device_id,
            asset=p.asset,
            offline_limit=amounts.from_wire(p.offline_limit or "0"),
            max_offline_count=p.max_offline_count,
            issued_at_ns=p.issued_at_ns,
            expires_at_ns=p.expires_at_ns,
            status=p.status,
            hold_placed=amounts.from_wire(p.hold_placed or "0"),
            hold_remaining=amounts.from_wire(p.hold_remaining or "0"),
            hold_capped=p.hold_capped,
            generation=p.generation,
            seq_base=p.seq_base,
            seq_high=p.seq_high,
        )


@dataclass(frozen=True)
class IssuedToken:
    result: WriteResult
    token: Token | None
    #: The token's 32-byte MAC key, returned only by the issue: keep it in the device's keystore.
    mac_key: bytes | None

    def __repr__(self) -> str:
        return f"IssuedToken(result={self.result!r}, token={self.token!r}, mac_key=<redacted>)"


@dataclass(frozen=True)
class OfflineRecord:
    sequence: int
    amount: Decimal
    merchant_account_id: int
    device_time_ms: int
    mac: bytes

    def to_proto(self) -> wallet_pb2.OfflineRecord:
        return wallet_pb2.OfflineRecord(
            sequence=self.sequence,
            amount=amounts.to_wire(self.amount),
            merchant_account_id=ids.encode_id(self.merchant_account_id, "merchant account id"),
            device_time_ms=self.device_time_ms,
            mac=self.mac,
        )


@dataclass(frozen=True)
class SyncOutcome:
    results: list[WriteResult]  # one per record: ok, ok + replay, or the exception's code
    reissue: WriteResult | None
    token: Token | None
    account: AccountRecord | None  # the wallet after the sync


@dataclass(frozen=True)
class OfflineException:
    sequence: int
    amount: Decimal
    merchant_account_id: int
    device_time_ms: int
    reason: ResultCode
    timestamp_ns: int


@dataclass(frozen=True)
class Reconciliation:
    token: Token | None
    account: AccountRecord | None
    ledger_balance: Decimal
    difference: Decimal  # device - ledger
    ledger_last_sequence: int
    missing_sequences: list[int]
    device_sequence_out_of_window: bool


class WalletCalls:
    _transport: Transport

    def issue_token(
        self,
        token_id: int,
        account_id: int,
        clearing_account_id: int,
        device_id: str,
        offline_limit: Decimal,
        max_offline_count: int,
        validity_ms: int = 0,
    ) -> IssuedToken:
        """Issues a token and holds its offline limit (capped by what the wallet can spend)."""
        request = wallet_pb2.IssueTokenRequest(
            token_id=ids.encode_id(token_id, "token id"),
            account_id=ids.encode_id(account_id, "account id"),
            clearing_account_id=ids.encode_id(clearing_account_id, "clearing account id"),
            device_id=device_id,
            offline_limit=amounts.to_wire(offline_limit, "offline_limit"),
            max_offline_count=max_offline_count,
            validity_ms=validity_ms,
        )
        response = self._transport.unary(_ISSUE, request, Kind.WRITE)
        token = Token.from_proto(response.token) if response.HasField("token") else None
        return IssuedToken(WriteResult.from_proto(response.result), token, response.token.mac_key or None)

    def sync_offline_records(
        self, token_id: int, records: Sequence[OfflineRecord], reissue_through_sequence: int = 0
    ) -> SyncOutcome:
        request = wallet_pb2.SyncOfflineRecordsRequest(
            token_id=ids.encode_id(token_id, "token id"),
            records=[r.to_proto() for r in records],
            reissue_through_sequence=reissue_through_sequence,
        )
        response = self._transport.unary(_SYNC, request, Kind.WRITE)
        return SyncOutcome(
            results=[WriteResult.from_proto(r) for r in response.results],
            reissue=WriteResult.from_proto(response.reissue) if response.HasField("reissue") else None,
            token=Token.from_proto(response.token) if response.HasField("token") else None,
            account=AccountRecord.from_proto(response.account) if response.HasField("account") else None,
        )

    def revoke_token(self, token_id: int, reason: str = "") -> WriteResult:
        request = wallet_pb2.RevokeTokenRequest(token_id=ids.encode_id(token_id, "token id"), reason=reason)
        return WriteResult.from_proto(self._transport.unary(_REVOKE, request, Kind.WRITE))

    def get_token(self, token_id: int) -> Token | None:
        request = wallet_pb2.GetTokenRequest(token_id=ids.encode_id(token_id, "token id"))
        try:
            response = self._transport.unary(_GET, request, Kind.READ)
        except NotFoundError:
            return None
        return Token.from_proto(response.token) if response.HasField("token") else None

    def list_exceptions(self, token_id: int, limit: int = 0) -> list[OfflineException]:
        request = wallet_pb2.ListExceptionsRequest(token_id=ids.encode_id(token_id, "token id"), limit=limit)
        response = self._transport.unary(_EXCEPTIONS, request, Kind.READ)
        return [
            OfflineException(
                e.sequence, amounts.from_wire(e.amount), ids.decode_id(e.merchant_account_id, "merchant account id"),
                e.device_time_ms, ResultCode(e.reason), e.timestamp_ns,
            )
            for e in response.exceptions
        ]

    def reconcile(self, token_id: int, device_balance: Decimal, device_last_sequence: int) -> Reconciliation | None:
        """What the device reports against the ledger; None for an unknown token."""
        request = wallet_pb2.ReconcileRequest(
            token_id=ids.encode_id(token_id, "token id"),
            device_balance=amounts.to_wire(device_balance, "device_balance"),
            device_last_sequence=device_last_sequence,
        )
        try:
            r = self._transport.unary(_RECONCILE, request, Kind.READ)
        except NotFoundError:
            return None
        return Reconciliation(
            token=Token.from_proto(r.token) if r.HasField("token") else None,
            account=AccountRecord.from_proto(r.account) if r.HasField("account") else None,
            ledger_balance=amounts.from_wire(r.ledger_balance or "0"),
            difference=amounts.from_wire(r.difference or "0"),
            ledger_last_sequence=r.ledger_last_sequence,
            missing_sequences=list(r.missing_sequences),
            device_sequence_out_of_window=r.device_sequence_out_of_window,
        )
