"""Build step: generate the protobuf modules from the repository's proto/ at build time.

Nothing generated is checked in. `pip install ./clients/python` runs protoc (from the pinned
grpcio-tools, see pyproject.toml) over proto/proto/ledger/v1/*.proto into the wheel's
`ledger_client/_proto/`, and writes `ledger_client/_enums.py`: one Python enum per proto enum,
each member's value read by NAME from the generated descriptor (never a hard-coded number).
LEDGER_PROTO_DIR overrides where the .proto files are (default: ../../proto/proto).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PACKAGE = "ledger_client"
PROTO_PACKAGE_DIR = Path("ledger") / "v1"


def proto_root() -> Path:
    root = Path(os.environ.get("LEDGER_PROTO_DIR", HERE.parent.parent / "proto" / "proto"))
    if not (root / PROTO_PACKAGE_DIR).is_dir():
        raise SystemExit(
            f"ledger-client: no {PROTO_PACKAGE_DIR} under {root}: build from the repository "
            "checkout (the client is generated from its proto/), or set LEDGER_PROTO_DIR"
        )
    return root


def run_protoc(root: Path, out: Path, descriptor_set: Path) -> list[Path]:
    import grpc_tools
    from grpc_tools import protoc

    files = sorted((root / PROTO_PACKAGE_DIR).glob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{root}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--descriptor_set_out={descriptor_set}",
        *[str(f) for f in files],
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"ledger-client: protoc failed on {root / PROTO_PACKAGE_DIR}")
    return files


def rewrite_imports(out: Path) -> None:
    """protoc writes `from ledger.v1 import x_pb2`: make them imports inside this package."""
    pattern = re.compile(r"^from ledger\.v1 import ", re.MULTILINE)
    replacement = f"from {PACKAGE}._proto.ledger.v1 import "
    for path in sorted((out / PROTO_PACKAGE_DIR).glob("*_pb2.py*")):
        text = path.read_text(encoding="utf-8")
        path.write_text(pattern.sub(replacement, text), encoding="utf-8")
    for directory in (out, out / "ledger", out / PROTO_PACKAGE_DIR):
        (directory / "__init__.py").write_text("", encoding="utf-8")


def screaming(name: str) -> str:
    """ResultCode -> RESULT_CODE_ (the prefix proto3 style puts on enum value names)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper() + "_"


def enums_module(descriptor_set: Path) -> str:
    from google.protobuf import descriptor_pb2

    files = descriptor_pb2.FileDescriptorSet()
    files.ParseFromString(descriptor_set.read_bytes())
    lines = [
        "# Generated at build time by setup.py from the proto descriptors. Do not edit.",
        "# Member values are looked up by NAME in the generated descriptor.",
        "from ledger_client._enum_base import ProtoEnum",
    ]
    body: list[str] = []
    for file in files.file:
        if not file.enum_type:
            continue
        module = Path(file.name).stem + "_pb2"
        lines.append(f"from {PACKAGE}._proto.ledger.v1 import {module}")
        for enum in file.enum_type:
            prefix = screaming(enum.name)
            body += ["", "", f"class {enum.name}(ProtoEnum):", f'    """`{file.package}.{enum.name}`."""', ""]
            for value in enum.value:
                member = value.name[len(prefix):] if value.name.startswith(prefix) else value.name
                if not member.isidentifier() or member[0].isdigit():
                    member = value.name
                body.append(f'    {member} = {module}.{enum.name}.Value("{value.name}")')
    return "\n".join(lines + body) + "\n"


def generate(package_dir: Path) -> None:
    out = package_dir / "_proto"
    out.mkdir(parents=True, exist_ok=True)
    descriptor_set = out / "descriptors.binpb"
    run_protoc(proto_root(), out, descriptor_set)
    rewrite_imports(out)
    (package_dir / "_enums.py").write_text(enums_module(descriptor_set), encoding="utf-8")
    descriptor_set.unlink()


class BuildPyWithProto(build_py):
    def run(self) -> None:
        super().run()
        generate(Path(self.build_lib) / PACKAGE)


setup(cmdclass={"build_py": BuildPyWithProto})
