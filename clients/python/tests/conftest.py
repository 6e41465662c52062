"""Harness for tests against the real `ledger-node` binary (as tests/src/lib.rs does for Rust):
a node on a free loopback port with its own data dir, SIGKILL, and 3-node clusters.

The binaries are found in $LEDGER_BIN_DIR, else $CARGO_TARGET_DIR/release, else the
repository's target/release; scripts/test.sh builds them first. A missing binary fails the
test (it is never skipped: a suite that skips is not a green one).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import ledger_client as lc

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 60.0


def binary(name: str) -> Path:
    if "LEDGER_BIN_DIR" in os.environ:
        directory = Path(os.environ["LEDGER_BIN_DIR"])
    elif "CARGO_TARGET_DIR" in os.environ:
        directory = Path(os.environ["CARGO_TARGET_DIR"]) / "release"
    else:
        directory = REPO / "target" / "release"
    path = directory / name
    if not path.is_file():
        pytest.fail(f"{path} not found: build it first (cargo build --release --workspace --bins, done by scripts/test.sh)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Node:
    """One ledger-node process (`dev` or `start`), its log in `<data_dir>.log`."""

    def __init__(self, data_dir: Path, args: list[str], port: int, node_id: int = 1) -> None:
        self.data_dir = data_dir
        self.args = args
        self.port = port
        self.node_id = node_id
        self.log_path = data_dir.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Node:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(binary("ledger-node")), *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "LEDGER_LOG": "info,openraft=warn"},
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"ledger-node exited with {self.process.returncode}; log:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.kill9()
        pytest.fail(f"ledger-node did not serve within {START_TIMEOUT_S} s; log:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def dev_node(data_dir: Path) -> Node:
    """`ledger-node dev`: a single-node cluster; it binds its port once it is leader."""
    port = free_port()
    return Node(data_dir, ["dev", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{port}"], port).start()


def cluster(directory: Path, nodes: list[Node], size: int = 3) -> list[Node]:
    """Nodes 2..size start empty and wait; node 1 bootstraps the cluster of all of them (the
    README's "Run a 3-node cluster"). Each node is appended to `nodes` before it starts, so the
    caller stops every one even when a start fails. Returns once the nodes agree on a leader."""
    ports = {node_id: free_port() for node_id in range(1, size + 1)}
    peers = [arg for node_id in range(2, size + 1) for arg in ("--peer", f"{node_id}=http://127.0.0.1:{ports[node_id]}")]
    for node_id in [*range(2, size + 1), 1]:
        args = start_args(node_id, directory, ports[node_id]) + (["--bootstrap", *peers] if node_id == 1 else [])
        nodes.append(Node(directory / f"n{node_id}", args, ports[node_id], node_id))
        nodes[-1].start()
    nodes.sort(key=lambda n: n.node_id)
    wait_for_leader(nodes)
    return nodes


def start_args(node_id: int, directory: Path, port: int) -> list[str]:
    return ["start", "--node-id", str(node_id), "--data-dir", str(directory / f"n{node_id}"),
            "--listen", f"127.0.0.1:{port}"]


def wait_for_leader(nodes: list[Node], timeout_s: float = 30.0) -> int:
    """The leader's node id, once every running node knows the same leader."""
    client = lc.Client([n.endpoint for n in nodes if n.running], timeout=1.0, max_attempts=1)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            try:
                leaders = {client.cluster_status(n.endpoint).leader_id for n in nodes if n.running}
            except lc.LedgerError:
                leaders = {None}
            if len(leaders) == 1 and None not in leaders:
                leader = leaders.pop()
                assert leader is not None
                return leader
            time.sleep(0.1)
    finally:
        client.close()
    logs = "\n".join(f"==== node {n.node_id} ====\n{n.log()}" for n in nodes)
    pytest.fail(f"no leader within {timeout_s} s\n{logs}")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    started = dev_node(tmp_path_factory.mktemp("dev") / "node")
    try:
        yield started
    finally:
        started.kill9()


@pytest.fixture
def three_nodes(tmp_path: Path) -> Iterator[list[Node]]:
    """A 3-node cluster; every node is SIGKILLed at teardown, whatever the test did."""
    nodes: list[Node] = []
    try:
        yield cluster(tmp_path, nodes)
    finally:
        for node in nodes:
            node.kill9()


@pytest.fixture
def client(node: Node) -> Iterator[lc.Client]:
    with lc.Client([node.endpoint], timeout=10.0) as c:
        yield c
