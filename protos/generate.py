"""Regenerate (or check) the committed Python code for the protos (pdpb.proto, admin.proto).

    python -m tsobench.protos.generate          # rewrite *_pb2*.py next to the protos
    python -m tsobench.protos.generate --check  # exit 1 if the committed code is stale

The code is committed so that installing tsobench needs no grpcio-tools. The
check compares what matters (the serialized descriptor and the service code),
not version banners, so a newer grpcio-tools does not make it cry wolf.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2

HERE = Path(__file__).resolve().parent
PROTOS = ("pdpb", "admin")  # each NAME.proto makes NAME_pb2.py, NAME_pb2.pyi and NAME_pb2_grpc.py
OUTPUTS = tuple(f"{name}{suffix}" for name in PROTOS for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"))
_VERSION_LINE = re.compile(r"^GRPC_GENERATED_VERSION = .*$", re.M)


def generate(out_dir: Path) -> None:
    """Run protoc from grpcio-tools into out_dir, with package-relative imports."""
    from grpc_tools import protoc  # a test/dev dependency, imported only here

    for name in PROTOS:
        args = [
            "protoc",
            f"-I{HERE}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            f"--descriptor_set_out={out_dir / f'{name}.desc'}",
            str(HERE / f"{name}.proto"),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {name}.proto")
        grpc_file = out_dir / f"{name}_pb2_grpc.py"
        text = grpc_file.read_text()
        grpc_file.write_text(re.sub(rf"^import {name}_pb2 as", f"from . import {name}_pb2 as", text, flags=re.M))


def _embedded_descriptor(pb2: Path) -> bytes | None:
    """The serialized descriptor literal inside a generated *_pb2.py, read without importing it."""
    for node in ast.walk(ast.parse(pb2.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "AddSerializedFile":
            return ast.literal_eval(node.args[0])
    return None


def _without_json_names(proto: descriptor_pb2.FileDescriptorProto) -> bytes:
    """protoc adds json_name to descriptor sets but not to the one it embeds in *_pb2.py."""
    for message in proto.message_type:
        for field in message.field:
            field.ClearField("json_name")
    return proto.SerializeToString()


def stale_files(committed: Path = HERE) -> list[str]:
    """Names of committed outputs that differ from a fresh generation."""
    stale = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        for name in PROTOS:
            fresh_desc = descriptor_pb2.FileDescriptorSet.FromString((fresh / f"{name}.desc").read_bytes())
            pb2 = committed / f"{name}_pb2.py"
            if not pb2.exists() or _embedded_descriptor(pb2) != _without_json_names(fresh_desc.file[0]):
                stale.append(pb2.name)
            grpc_file = committed / f"{name}_pb2_grpc.py"
            if not grpc_file.exists() or _VERSION_LINE.sub("", grpc_file.read_text()) != _VERSION_LINE.sub(
                "", (fresh / grpc_file.name).read_text()
            ):
                stale.append(grpc_file.name)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        if stale:
            print("stale generated code: " + ", ".join(stale) + " (run python -m tsobench.protos.generate)")
            return 1
        print("generated code is up to date")
        return 0
    generate(HERE)
    for name in PROTOS:
        (HERE / f"{name}.desc").unlink(missing_ok=True)
    print("regenerated " + ", ".join(OUTPUTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
