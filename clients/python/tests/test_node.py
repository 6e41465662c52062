"""The client against one real `ledger-node dev`."""

from __future__ import annotations

import hashlib
import itertools
import subprocess
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

import ledger_client as lc
from conftest import Node, binary

D = Decimal
_ids = itertools.count(1_000)


def new_ids(n: int) -> list[int]:
    return [next(_ids) for _ in range(n)]


def setup_accounts(client: lc.Client, asset: str, scale: int, count: int, limited: bool = False) -> list[int]:
    client.create_asset(asset, scale)
    account_ids = new_ids(count)
    accounts = [lc.NewAccount(account_ids[0], asset, 100)]  # the source: no balance rule
    accounts += [lc.NewAccount(i, asset, 1, debits_must_not_exceed_credits=limited) for i in account_ids[1:]]
    assert all(r.ok for r in client.create_accounts(accounts))
    return account_ids


def balances(client: lc.Client, account_id: int) -> lc.Balances:
    record = client.lookup_account(account_id)
    assert record is not None
    return record.balances


def test_a_three_leg_transfer_moves_exact_amounts(client: lc.Client) -> None:
    src, a, b, c = setup_accounts(client, "CNY", 2, 4)
    legs = [lc.Leg(src, a, D("100.00")), lc.Leg(a, b, D("12.34")), lc.Leg(a, c, D("0.01"))]
    result = client.submit_transfer("three-legs-1", "CNY", legs)
    assert result.ok and not result.replay and result.id == lc.transfer_id_from_key("three-legs-1")
    assert balances(client, a).net_posted == D("87.65")
    assert balances(client, b).credits_posted == D("12.34")
    record = client.get_transfer(lc.transfer_id_from_key("three-legs-1"))
    assert record is not None and list(record.transfer.legs) == legs
    assert client.get_transfer(12345678) is None


def test_a_repeat_with_the_same_key_replays_and_moves_nothing(client: lc.Client) -> None:
    src, a = setup_accounts(client, "EUR", 2, 2)
    transfer = lc.Transfer("pay-1", "EUR", [lc.Leg(src, a, D("5.00"))])
    [first] = client.submit_transfers([transfer])
    [again] = client.submit_transfers([transfer])
    assert first.ok and not first.replay
    assert again.ok and again.replay and again.timestamp_ns == first.timestamp_ns
    assert balances(client, a).credits_posted == D("5.00")
    with pytest.raises(lc.ConflictError) as conflict:
        client.submit_transfer("pay-1", "EUR", [lc.Leg(src, a, D("6.00"))])
    assert conflict.value.code is lc.ResultCode.IDEMPOTENCY_KEY_CONFLICT
    bound = client.get_transfer_by_idempotency_key("pay-1")
    assert bound is not None and bound.code is lc.ResultCode.OK and bound.transfer_id == transfer.transfer_id
    assert client.get_transfer_by_idempotency_key("never-used") is None


def test_refusals_raise_their_category_with_the_code_and_leg(client: lc.Client) -> None:
    src, wallet, shop = setup_accounts(client, "USD", 2, 3, limited=True)
    client.submit_transfer("usd-topup", "USD", [lc.Leg(src, wallet, D("10.00"))])
    legs = [lc.Leg(wallet, shop, D("4.00")), lc.Leg(wallet, shop, D("6.01"))]
    with pytest.raises(lc.InsufficientFundsError) as raised:
        client.submit_transfer("usd-too-much", "USD", legs)
    assert raised.value.code is lc.ResultCode.EXCEEDS_CREDITS and raised.value.leg_index == 1
    assert balances(client, shop).credits_posted == D("0"), "all legs or none"
    [scale] = client.submit_transfers([lc.Transfer("usd-scale", "USD", [lc.Leg(src, shop, D("0.001"))])])
    assert scale.code is lc.ResultCode.AMOUNT_SCALE_EXCEEDED and isinstance(scale.error(), lc.ValidationError)
    client.set_account_status(wallet, lc.AccountStatus.FROZEN, "investigation")
    with pytest.raises(lc.AccountStateError):
        client.submit_transfer("usd-frozen", "USD", [lc.Leg(wallet, shop, D("1.00"))])


def test_amounts_are_exact_at_38_digits(client: lc.Client) -> None:
    big = D("12345678901234567890.123456789012345678")  # 38 digits at scale 18
    src, a = setup_accounts(client, "BIG18", 18, 2)
    client.submit_transfer("big-18", "BIG18", [lc.Leg(src, a, big)])
    assert balances(client, a).credits_posted == big
    assert balances(client, src).net_posted == big.copy_negate()  # exact; unary minus rounds at 28 digits
    nines = D("9" * 38)  # 38 digits at scale 0
    src0, b = setup_accounts(client, "BIG0", 0, 2)
    client.submit_transfer("big-0", "BIG0", [lc.Leg(src0, b, nines)])
    assert str(balances(client, b).credits_posted) == "9" * 38
    [entry] = list(client.account_entries(b))
    assert entry.amount == nines and entry.balances_after.credits_posted == nines


def test_a_two_phase_hold_is_posted_in_part_or_voided(client: lc.Client) -> None:
    src, payer, shop = setup_accounts(client, "HKD", 2, 3, limited=True)
    client.submit_transfer("hkd-topup", "HKD", [lc.Leg(src, payer, D("100.00"))])
    hold = client.hold("order-9-hold", "HKD", [lc.Leg(payer, shop, D("30.00"))], timeout_ms=60_000)
    assert hold.id == lc.transfer_id_from_key("order-9-hold")
    assert balances(client, payer).debits_pending == D("30.00")
    client.post_pending("order-9-capture", hold.id, [D("25.00")])
    after = balances(client, payer)
    assert (after.debits_posted, after.debits_pending) == (D("25.00"), D("0.00"))
    record = client.get_transfer(hold.id)
    assert record is not None and record.pending_state is lc.PendingState.POSTED
    second = client.hold("order-10-hold", "HKD", [lc.Leg(payer, shop, D("10.00"))])
    client.void_pending("order-10-void", second.id)
    assert balances(client, payer).debits_pending == D("0.00")
    with pytest.raises(lc.PendingStateError):
        client.post_pending("order-10-capture", second.id)


def test_a_statement_has_the_opening_balance_and_running_balances(client: lc.Client) -> None:
    src, a = setup_accounts(client, "SGD", 2, 2)
    stamps = [client.submit_transfer(f"sgd-{i}", "SGD", [lc.Leg(src, a, D(f"{i}.50"))]).timestamp_ns for i in range(1, 6)]
    statement = client.statement(a, from_ns=stamps[2], to_ns=stamps[3])
    assert statement.opening.credits_posted == D("4.00")  # 1.50 + 2.50
    rows = list(statement.entries)
    assert [e.amount for e in rows] == [D("3.50"), D("4.50")]
    assert [e.balances_after.net_posted for e in rows] == [D("7.50"), D("12.00")]
    everything = list(client.account_entries(a, page_entries=2))
    assert [e.timestamp_ns for e in everything] == stamps, "paged with a cursor, no gap, no repeat"


def test_the_audit_export_streams_a_verifiable_hash_chain(client: lc.Client) -> None:
    head = client.journal_head()
    assert head.seq > 0 and len(head.hash) == 32
    items = list(client.export_journal(to_seq=head.seq))
    header, trailer = items[0], items[-1]
    assert isinstance(header, lc.ExportHeader) and isinstance(trailer, lc.ExportTrailer)
    lines = [i for i in items if isinstance(i, lc.JournalLine)]
    assert len(lines) == trailer.lines == head.seq
    chain = header.hash_before
    for line in lines:
        chain = hashlib.sha256(chain + line.line.encode("utf-8")).digest()
        assert chain == line.hash, f"line {line.seq}"
    assert chain == head.hash
    accounts = [i for i in items if isinstance(i, lc.AccountBalances)]
    assert len(accounts) == trailer.accounts > 0


def test_the_cli_derives_the_same_transfer_id_from_a_key(client: lc.Client, node: Node) -> None:
    src, a = setup_accounts(client, "JPY", 0, 2)
    command = [str(binary("ledger")), "--endpoint", node.endpoint, "transfer", "submit", "--asset", "JPY",
               "--leg", f"{src}:{a}:700", "--idempotency-key", "cli-made-1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    bound = client.get_transfer_by_idempotency_key("cli-made-1")
    assert bound is not None and bound.transfer_id == lc.transfer_id_from_key("cli-made-1")
    again = client.submit_transfer("cli-made-1", "JPY", [lc.Leg(src, a, D("700"))])
    assert again.replay, "a Python retry of a CLI transfer replays it"


def test_wallet_token_issue_offline_sync_and_reconcile(client: lc.Client) -> None:
    src, wallet, merchant, clearing = setup_accounts(client, "WAL", 2, 4)
    client.submit_transfer("wal-topup", "WAL", [lc.Leg(src, wallet, D("500.00"))])
    token_id = new_ids(1)[0]
    issued = client.issue_token(token_id, wallet, clearing, "device-1", D("100.00"), 10)
    assert issued.result.ok and issued.token is not None and issued.mac_key is not None
    assert issued.token.hold_placed == D("100.00")
    mac = lc.record_mac(issued.mac_key, token_id, 1, D("30.00"), 2, merchant, 1_700_000_000_000)
    record = lc.OfflineRecord(1, D("30.00"), merchant, 1_700_000_000_000, mac)
    synced = client.sync_offline_records(token_id, [record])
    assert [r.code for r in synced.results] == [lc.ResultCode.OK]
    assert balances(client, merchant).credits_posted == D("30.00")
    token = client.get_token(token_id)
    assert token is not None and token.hold_remaining == D("70.00")
    reconciled = client.reconcile(token_id, D("470.00"), 1)
    assert reconciled is not None and reconciled.ledger_balance == D("470.00") and reconciled.difference == D("0.00")
    forged = lc.OfflineRecord(2, D("1.00"), merchant, 1, bytes(32))
    assert client.sync_offline_records(token_id, [forged]).results[0].code is lc.ResultCode.MAC_INVALID
    assert client.get_token(new_ids(1)[0]) is None


def test_health_lookups_and_external_refs(client: lc.Client, node: Node) -> None:
    assert client.health() == {node.endpoint: lc.HealthStatus.SERVING}
    ids = new_ids(2)
    client.create_asset("KRW", 0)
    client.create_accounts([lc.NewAccount(ids[0], "KRW", 1, external_ref="+86-138-0000", metadata={"tier": "gold"})])
    record = client.get_account_by_external_ref("+86-138-0000")
    assert record is not None and record.id == ids[0] and record.account.metadata == {"tier": "gold"}
    assert client.get_account_by_external_ref("nobody") is None
    assert [r.id for r in client.lookup_accounts([ids[1], ids[0]])] == [ids[0]], "missing ids are left out"
    assert client.create_asset("KRW", 0).code is lc.ResultCode.EXISTS
    with pytest.raises(lc.ConflictError):
        client.create_asset("KRW", 2)
    status = client.cluster_status()
    assert status.role == "leader" and status.leader_id == status.node_id


def test_watch_account_streams_new_entries(client: lc.Client) -> None:
    src, a = setup_accounts(client, "WATCH", 2, 2)
    watch = client.watch_account(a, timeout=20.0)

    def pay_soon() -> None:
        time.sleep(0.5)
        client.submit_transfer("watch-1", "WATCH", [lc.Leg(src, a, D("2.25"))])

    payer = threading.Thread(target=pay_soon)
    payer.start()
    entry = next(watch)
    payer.join()
    assert (entry.account_id, entry.amount, entry.is_debit) == (a, D("2.25"), False)
    assert entry.transfer_id == lc.transfer_id_from_key("watch-1")


def test_the_readme_example_runs(node: Node) -> None:
    """clients/python/README.md's example, against this node: the README stays true."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    example = readme.split("```python\n", 1)[1].split("```", 1)[0]
    endpoints = '"http://127.0.0.1:7070", "http://127.0.0.1:7071", "http://127.0.0.1:7072"'
    assert endpoints in example
    scope: dict[str, object] = {}
    exec(compile(example.replace(endpoints, repr(node.endpoint)), "README.md", "exec"), scope)
    result = scope["result"]
    assert isinstance(result, lc.WriteResult) and result.ok


def test_a_watch_ends_quietly_at_its_deadline(client: lc.Client) -> None:
    (account,) = setup_accounts(client, "QUIET", 2, 1)
    started = time.monotonic()
    assert list(client.watch_account(account, timeout=1.0)) == []
    assert 0.9 < time.monotonic() - started < 5, "one deadline, not retried"
