"""A 3-node cluster whose leader is SIGKILLed while clients write: the client follows the new
leader, an unknown outcome is retried with the same key only, and every acknowledged transfer
is there afterwards, exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal

import ledger_client as lc
from conftest import Node, wait_for_leader

WRITERS = 3
BEFORE_KILL = 20  # acknowledged transfers per writer before the kill
AFTER_KILL = 20  # and after it
AMOUNT = Decimal("0.01")
RUN_TIMEOUT_S = 60.0


class Writer(threading.Thread):
    """Submits one-leg transfers with its own keys; a transfer whose outcome is unknown is
    submitted again, unchanged (same key, same id), until its result is known."""

    def __init__(self, client: lc.Client, number: int, source: int, target: int, killed: threading.Event) -> None:
        super().__init__(daemon=True)
        self.client, self.number, self.source, self.target, self.killed = client, number, source, target, killed
        self.acknowledged: list[lc.Transfer] = []
        self.unknown_outcomes = 0
        self.replays = 0
        self.acked_after_kill = 0
        self.first_ack_after_kill: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.write()
        except BaseException as error:  # noqa: BLE001 - the test reports it
            self.error = error

    def write(self) -> None:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        sequence = 0
        while self.acked_after_kill < AFTER_KILL:
            assert time.monotonic() < deadline, f"writer {self.number}: no progress"
            transfer = lc.Transfer(f"w{self.number}-{sequence}", "CNY", [lc.Leg(self.source, self.target, AMOUNT)])
            result = self.submit_until_known(transfer)
            assert result.ok, result
            self.replays += result.replay
            self.acknowledged.append(transfer)
            sequence += 1
            if self.killed.is_set():
                self.acked_after_kill += 1
                if self.first_ack_after_kill is None:
                    self.first_ack_after_kill = time.monotonic()

    def submit_until_known(self, transfer: lc.Transfer) -> lc.WriteResult:
        while True:
            try:
                [result] = self.client.submit_transfers([transfer])
                return result
            except lc.OutcomeUnknownError:
                self.unknown_outcomes += 1  # the same transfer again: the key makes it safe
            except lc.UnavailableError:
                pass  # nothing was applied; the same transfer again is still the right move


def test_the_client_survives_a_leader_killed_mid_run(three_nodes: list[Node]) -> None:
    nodes = three_nodes
    by_id = {n.node_id: n for n in nodes}
    first_leader = wait_for_leader(nodes)
    follower = next(n for n in nodes if n.node_id != first_leader)
    with lc.Client([follower.endpoint]) as via_follower:
        assert via_follower.create_asset("CNY", 2).ok
        # The follower redirected (x-ledger-leader: the client learned the leader's address) or
        # forwarded the write to the leader itself.
        assert via_follower.endpoints in ([follower.endpoint], [follower.endpoint, by_id[first_leader].endpoint])
    # Follower first: the writers start with a redirect.
    endpoints = [follower.endpoint] + [n.endpoint for n in nodes if n is not follower]
    client = lc.Client(endpoints, timeout=2.0, max_attempts=12, backoff=lc.Backoff(0.05, 0.5))
    source, target = 1, 2
    assert all(r.ok for r in client.create_accounts([lc.NewAccount(source, "CNY", 100), lc.NewAccount(target, "CNY", 1)]))

    killed = threading.Event()
    writers = [Writer(client, n, source, target, killed) for n in range(WRITERS)]
    for writer in writers:
        writer.start()
    wait_until(lambda: all(len(w.acknowledged) >= BEFORE_KILL for w in writers) or any(w.error for w in writers))
    leader_id = wait_for_leader(nodes)
    by_id[leader_id].kill9()
    killed_at = time.monotonic()
    killed.set()
    for writer in writers:
        writer.join(RUN_TIMEOUT_S + 10)
        assert writer.error is None, f"writer {writer.number}: {writer.error!r}\n{logs(nodes)}"
    client.close()
    failover_s = min(w.first_ack_after_kill or float("inf") for w in writers) - killed_at
    print(f"failover: first write acknowledged {failover_s:.2f} s after SIGKILL of leader {leader_id}; "
          f"unknown outcomes retried: {sum(w.unknown_outcomes for w in writers)}, "
          f"replays: {sum(w.replays for w in writers)}")

    survivors = [n for n in nodes if n.running]
    new_leader = wait_for_leader(survivors)
    assert new_leader != leader_id
    with lc.Client([n.endpoint for n in survivors]) as reader:
        acknowledged = [t for w in writers for t in w.acknowledged]
        found = {r.id: r for r in reader.lookup_transfers([t.transfer_id for t in acknowledged])}
        assert len(acknowledged) >= WRITERS * (BEFORE_KILL + AFTER_KILL)
        assert set(found) == {t.transfer_id for t in acknowledged}, "every acknowledged transfer is committed"
        for transfer in acknowledged:
            assert found[transfer.transfer_id].transfer.idempotency_key == transfer.idempotency_key
        credited = reader.lookup_account(target)
        assert credited is not None
        assert credited.balances.credits_posted == AMOUNT * len(acknowledged), "each exactly once"
        for node in survivors:
            status = reader.cluster_status(node.endpoint)
            assert status.leader_id == new_leader


def wait_until(condition: Callable[[], bool], timeout_s: float = RUN_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def logs(nodes: list[Node]) -> str:
    return "\n".join(f"==== node {n.node_id} ====\n{n.log()[-4000:]}" for n in nodes)

