"""The `ledger.v1.Audit` calls: the journal head and a streamed export of a journal range."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from . import amounts, ids
from ._proto.ledger.v1 import audit_pb2
from ._transport import Kind, Transport, rpc
from .errors import ProtocolError

_AUDIT = audit_pb2.DESCRIPTOR.services_by_name["Audit"]
_HEAD = rpc(_AUDIT, "GetJournalHead", audit_pb2.GetJournalHeadRequest, audit_pb2.JournalHead)
_EXPORT = rpc(_AUDIT, "ExportJournal", audit_pb2.ExportJournalRequest, audit_pb2.ExportMessage)


@dataclass(frozen=True)
class JournalHead:
    seq: int  # 0: the journal is empty
    hash: bytes  # SHA-256 of the chain up to `seq`
    timestamp_ns: int

    @property
    def pin(self) -> str:
        """`seq:hex`, as `ledger audit head` prints it (for `ledger audit verify --pin`)."""
        return f"{self.seq}:{self.hash.hex()}"

    @staticmethod
    def from_proto(p: audit_pb2.JournalHead) -> JournalHead:
        return JournalHead(p.seq, p.hash, p.timestamp_ns)


@dataclass(frozen=True)
class ExportHeader:
    from_seq: int
    to_seq: int
    hash_before: bytes
    opening_timestamp_ns: int
    closing_timestamp_ns: int
    head: JournalHead


@dataclass(frozen=True)
class JournalLine:
    seq: int
    hash: bytes  # SHA-256(previous hash || line)
    line: str  # canonical JSON: exactly the bytes hashed


@dataclass(frozen=True)
class ExportBalance:
    debits_posted: Decimal
    credits_posted: Decimal
    debits_pending: Decimal
    credits_pending: Decimal

    @staticmethod
    def from_proto(p: audit_pb2.Balance) -> ExportBalance:
        return ExportBalance(
            amounts.from_wire(p.debits_posted or "0"),
            amounts.from_wire(p.credits_posted or "0"),
            amounts.from_wire(p.debits_pending or "0"),
            amounts.from_wire(p.credits_pending or "0"),
        )


@dataclass(frozen=True)
class AccountBalances:
    account_id: int
    asset: str
    code: int
    opening: ExportBalance
    closing: ExportBalance


@dataclass(frozen=True)
class ExportTrailer:
    lines: int
    accounts: int


ExportItem = ExportHeader | JournalLine | AccountBalances | ExportTrailer


def _items(message: audit_pb2.ExportMessage) -> Iterator[ExportItem]:
    part = message.WhichOneof("part")
    if part == "header":
        h = message.header
        yield ExportHeader(h.from_seq, h.to_seq, h.hash_before, h.opening_timestamp_ns, h.closing_timestamp_ns,
                           JournalHead.from_proto(h.head))
    elif part == "lines":
        for line in message.lines.lines:
            yield JournalLine(line.seq, line.hash, line.line)
    elif part == "balances":
        for a in message.balances.accounts:
            yield AccountBalances(ids.decode_id(a.account_id, "account id"), a.asset, a.code,
                                  ExportBalance.from_proto(a.opening), ExportBalance.from_proto(a.closing))
    elif part == "trailer":
        yield ExportTrailer(message.trailer.lines, message.trailer.accounts)
    else:
        raise ProtocolError(f"export message without a part: {part!r}")


class AuditCalls:
    _transport: Transport

    def journal_head(self) -> JournalHead:
        """The newest journal line: pin it to check a later export against it."""
        response = self._transport.unary(_HEAD, audit_pb2.GetJournalHeadRequest(), Kind.READ)
        return JournalHead.from_proto(response)

    def export_journal(
        self,
        *,
        from_seq: int = 0,
        to_seq: int = 0,
        from_timestamp_ns: int = 0,
        to_timestamp_ns: int = 0,
        timeout: float = 600.0,
    ) -> Iterator[ExportItem]:
        """A range of the journal from one consistent snapshot, streamed: an ExportHeader, the
        JournalLines in order, every account's AccountBalances (opening and closing), then an
        ExportTrailer. Unset ends mean the first line and the head. `timeout` is the deadline of
        the whole stream; memory is one message (at most 1,024 lines or accounts)."""
        request = audit_pb2.ExportJournalRequest(
            from_seq=from_seq, to_seq=to_seq, from_timestamp_ns=from_timestamp_ns, to_timestamp_ns=to_timestamp_ns
        )
        trailer_seen = False
        for message in self._transport.stream(_EXPORT, request, timeout_s=timeout):
            for item in _items(message):
                trailer_seen |= isinstance(item, ExportTrailer)
                yield item
        if not trailer_seen:
            raise ProtocolError("the export ended without its trailer")
