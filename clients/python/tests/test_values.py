"""Values without a server: amounts, ids, the generated enums, refusal categories, the MAC."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

import ledger_client as lc
from ledger_client import amounts, ids
from google.protobuf import descriptor_pb2

from ledger_client._proto.ledger.v1 import ledger_pb2


@pytest.mark.parametrize(
    "text",
    [
        "12.50",
        "0.01",
        "99999999999999999999999999999999999999",  # 38 digits, scale 0
        "12345678901234567890.123456789012345678",  # 38 digits, scale 18
        "0.000000000000000001",
        "340282366920938463463374607431768211455",  # u128::MAX minor units
    ],
)
def test_amounts_round_trip_exactly_beyond_the_default_context(text: str) -> None:
    assert len(text.replace(".", "")) > 28 or "." in text
    value = amounts.from_wire(text)
    assert amounts.to_wire(value) == text
    assert value == Decimal(text) and value.as_tuple() == Decimal(text).as_tuple()


def test_amounts_refuse_floats_and_non_finite_values() -> None:
    with pytest.raises(lc.InvalidInputError):
        amounts.to_wire(1.5)  # type: ignore[arg-type]
    with pytest.raises(lc.InvalidInputError):
        amounts.to_wire(True)
    for bad in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(lc.InvalidInputError):
            amounts.to_wire(Decimal(bad))
    assert amounts.to_wire(Decimal("1E+3")) == "1000"
    assert amounts.to_wire(Decimal("-0.00")) == "0.00"
    assert amounts.to_wire(7) == "7"


def test_wire_amounts_that_are_not_plain_decimals_are_protocol_errors() -> None:
    for bad in ("", "1e3", "1.", ".5", "+1", " 1", "NaN", "1,00"):
        with pytest.raises(lc.ProtocolError):
            amounts.from_wire(bad)


def test_minor_units_match_the_node_rules() -> None:
    assert lc.to_minor_units(Decimal("25.000"), 2) == 2500
    assert lc.to_minor_units(Decimal("0"), 2) == 0
    assert lc.to_minor_units(Decimal("3402823669209384634633746074317682114.55"), 2) == 2**128 - 1
    for bad, scale in (("0.001", 2), ("-1", 2), ("3402823669209384634633746074317682114.56", 2)):
        with pytest.raises(lc.InvalidInputError):
            lc.to_minor_units(Decimal(bad), scale)


def test_ids_are_16_big_endian_bytes() -> None:
    assert ids.encode_id(0x0102) == bytes(14) + b"\x01\x02"
    assert ids.decode_id(b"\xff" * 16) == 2**128 - 1
    for bad in (-1, 2**128):
        with pytest.raises(lc.InvalidInputError):
            ids.encode_id(bad)
    with pytest.raises(lc.ProtocolError):
        ids.decode_id(b"\x01")
    assert ids.decode_optional_id(b"") is None


def test_transfer_id_from_key_is_deterministic_and_not_zero() -> None:
    a = lc.transfer_id_from_key("order-1")
    assert a == lc.transfer_id_from_key("order-1") != lc.transfer_id_from_key("order-2")
    assert 0 < a < 2**128
    assert lc.Transfer("order-1", "CNY").transfer_id == a
    assert lc.Transfer("order-1", "CNY", id=5).transfer_id == 5


def test_an_idempotency_key_is_required() -> None:
    for key in ("", "k" * 129):
        with pytest.raises(lc.InvalidInputError):
            lc.Transfer(key, "CNY", [lc.Leg(1, 2, Decimal("1"))]).to_proto()


def test_enums_mirror_the_descriptor_by_name() -> None:
    generated = {
        "ResultCode": lc.ResultCode,
        "AccountStatus": lc.AccountStatus,
        "TransferKind": lc.TransferKind,
        "PendingState": lc.PendingState,
        "EntryKind": lc.EntryKind,
    }
    for name, python_enum in generated.items():
        descriptor = ledger_pb2.DESCRIPTOR.enum_types_by_name[name]
        wire = {value.name: value.number for value in descriptor.values}
        prefix = "".join("_" + c if c.isupper() and i else c for i, c in enumerate(name)).upper() + "_"
        mirrored = {(m.name if m.name in wire else prefix + m.name): m.value for m in python_enum}
        assert mirrored == wire, name


def test_an_unknown_result_code_is_unrecognized_never_success() -> None:
    numbers = {code.value for code in lc.ResultCode}
    unknown = max(numbers) + 1000
    code = lc.ResultCode(unknown)
    assert code.name == "UNRECOGNIZED" and code.value == unknown and not code.recognized
    result = lc.WriteResult(0, code, 0, None, False, 0)
    assert not result.ok
    assert type(result.error()) is lc.RefusedError


def test_every_refusal_code_has_a_category_with_the_code_attached() -> None:
    for code in lc.ResultCode:
        result = lc.WriteResult(3, code, 0, 1, False, 0)
        if code.name in ("OK", "EXISTS"):
            assert result.ok and result.raise_for_code() is result
            continue
        error = result.error()
        assert isinstance(error, lc.RefusedError) and error.code is code and error.index == 3, code
        with pytest.raises(lc.RefusedError) as raised:
            result.raise_for_code()
        assert raised.value.code is code and raised.value.leg_index == 1
    assert lc.refusal_class(lc.ResultCode.EXCEEDS_CREDITS) is lc.InsufficientFundsError
    assert lc.refusal_class(lc.ResultCode.IDEMPOTENCY_KEY_CONFLICT) is lc.ConflictError
    assert lc.refusal_class(lc.ResultCode.AMOUNT_SCALE_EXCEEDED) is lc.ValidationError
    assert lc.refusal_class(lc.ResultCode.PENDING_TRANSFER_ALREADY_POSTED) is lc.PendingStateError
    assert lc.refusal_class(lc.ResultCode.ACCOUNT_FROZEN) is lc.AccountStateError
    assert lc.refusal_class(lc.ResultCode.ACCOUNT_NOT_FOUND) is lc.NotFoundRefusedError


def test_record_mac_matches_the_node_test_vector() -> None:
    mac = lc.record_mac(
        key=bytes(range(32)),
        token_id=0x0102030405060708090A0B0C0D0E0F10,
        sequence=7,
        amount=Decimal("25.00"),
        asset_scale=2,
        merchant_account_id=3,
        device_time_ms=1_700_000_000_000,
    )
    assert mac.hex() == "3a666d262ddf7b00df1680e71eb0a0c592304e4ae6be4d417fc9ecb1a815a169"


def test_endpoints_are_validated() -> None:
    client = lc.Client(["127.0.0.1:1", "http://127.0.0.1:1/", "http://127.0.0.1:2"])
    assert client.endpoints == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    for bad in ([], ["https://127.0.0.1:1"], ["ftp://x:1"], ["http://"], ["http://x"]):
        with pytest.raises(lc.InvalidInputError):
            lc.Client(bad)
    with pytest.raises(lc.InvalidInputError):
        lc.Client("http://127.0.0.1:1")
    with pytest.raises(lc.InvalidInputError):
        lc.Client(["http://127.0.0.1:1"], token="has space")


def test_the_installed_code_is_generated_from_this_checkout(tmp_path: Path) -> None:
    """Generated at build time, never checked in: an install older than proto/ fails here."""
    from grpc_tools import protoc  # type: ignore[import-untyped]

    from ledger_client._proto.ledger.v1 import audit_pb2, cluster_pb2, risk_pb2, wallet_pb2

    root = Path(__file__).resolve().parents[3] / "proto" / "proto"
    files = sorted(str(p) for p in (root / "ledger" / "v1").glob("*.proto"))
    out = tmp_path / "descriptors.binpb"
    assert protoc.main(["protoc", f"-I{root}", f"--descriptor_set_out={out}", *files]) == 0
    fresh = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    by_name = {f.name: f for f in fresh.file}
    for module in (ledger_pb2, audit_pb2, cluster_pb2, risk_pb2, wallet_pb2):
        installed = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        assert without_json_names(installed) == without_json_names(by_name[installed.name]), installed.name


def without_json_names(file: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    copy = descriptor_pb2.FileDescriptorProto()
    copy.CopyFrom(file)
    for message in copy.message_type:
        for field in message.field:
            field.ClearField("json_name")
        for nested in message.nested_type:
            for field in nested.field:
                field.ClearField("json_name")
    return copy
