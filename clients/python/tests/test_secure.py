"""TLS and bearer tokens against a real node: `ledger-node certs` makes the CA and the node's
certificate, the node serves clients over TLS (peers on their own port) and requires tokens."""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import ledger_client as lc
from conftest import Node, binary, free_port

ADMIN_TOKEN = "admin-" + "a1" * 20
AUDITOR_TOKEN = "auditor-" + "b2" * 20


def certs(directory: Path, *args: str) -> None:
    command = [str(binary("ledger-node")), "certs", "--cluster-name", "ledger", "--dir", str(directory), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def secure_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Path]]:
    directory = tmp_path_factory.mktemp("secure")
    pki = directory / "pki"
    certs(pki)
    certs(pki, "--node", "1=127.0.0.1,localhost")
    tokens = directory / "tokens.toml"
    tokens.write_text(
        "".join(
            f'[[token]]\nprincipal = "{name}"\nrole = "{name}"\nsha256 = "{hashlib.sha256(token.encode()).hexdigest()}"\n'
            for name, token in (("admin", ADMIN_TOKEN), ("auditor", AUDITOR_TOKEN))
        )
    )
    tokens.chmod(0o600)
    port, peer_port = free_port(), free_port()
    args = ["start", "--node-id", "1", "--data-dir", str(directory / "n1"), "--listen", f"127.0.0.1:{port}",
            "--peer-listen", f"127.0.0.1:{peer_port}", "--bootstrap",
            "--tls-cert", str(pki / "node-1.pem"), "--tls-key", str(pki / "node-1-key.pem"), "--tls-ca", str(pki / "ca.pem"),
            "--auth-tokens-file", str(tokens)]
    node = Node(directory / "n1", args, port).start()
    try:
        yield node, pki / "ca.pem"
    finally:
        node.kill9()


def test_tls_and_tokens(secure_node: tuple[Node, Path]) -> None:
    node, ca = secure_node
    endpoint = f"https://127.0.0.1:{node.port}"
    tls = lc.Tls.from_files(ca)
    with lc.Client([endpoint], tls=tls, token=ADMIN_TOKEN) as admin:
        deadline = time.monotonic() + 30
        while admin.health_of(endpoint) is not lc.HealthStatus.SERVING:  # health needs no token
            assert time.monotonic() < deadline, node.log()
            time.sleep(0.1)
        assert admin.create_asset("CNY", 2).ok
        assert "<redacted>" in repr(tls) and "BEGIN" not in repr(tls)
    with lc.Client([endpoint], tls=tls) as anonymous, pytest.raises(lc.PermissionDeniedError) as refused:
        anonymous.create_asset("EUR", 2)
    assert refused.value.status_code.name == "UNAUTHENTICATED"
    with lc.Client([endpoint], tls=tls, token=AUDITOR_TOKEN) as auditor:
        with pytest.raises(lc.PermissionDeniedError):
            auditor.create_asset("EUR", 2)
        assert auditor.journal_head().seq >= 1
    with pytest.raises(lc.InvalidInputError):
        lc.Client([f"http://127.0.0.1:{node.port}"], tls=tls)
    with lc.Client([f"http://127.0.0.1:{node.port}"], token=ADMIN_TOKEN, max_attempts=1) as plaintext:
        with pytest.raises(lc.LedgerError):
            plaintext.lookup_assets(["CNY"])
