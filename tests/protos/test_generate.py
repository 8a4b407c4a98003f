"""The committed generated code matches pdpb.proto, and staleness is detected."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tsobench.protos import generate, pdpb_pb2, pdpb_pb2_grpc

PROTOS = Path(generate.__file__).resolve().parent
GENERATED = generate.OUTPUTS


@pytest.fixture
def committed_copy(tmp_path) -> Path:
    """A copy of the committed generated files, to tamper with."""
    for name in GENERATED:
        shutil.copy(PROTOS / name, tmp_path / name)
    return tmp_path


def test_committed_code_is_up_to_date():
    assert generate.stale_files() == []


def test_check_command_passes_on_the_repo():
    result = subprocess.run(
        [sys.executable, "-P", "-m", "tsobench.protos.generate", "--check"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "up to date" in result.stdout


def test_an_untouched_copy_is_not_stale(committed_copy):
    assert generate.stale_files(committed_copy) == []


def test_a_different_grpc_version_banner_is_not_stale(committed_copy):
    grpc_file = committed_copy / "pdpb_pb2_grpc.py"
    text, n = re.subn(
        r"^GRPC_GENERATED_VERSION = .*$", "GRPC_GENERATED_VERSION = '9.99.0'", grpc_file.read_text(), flags=re.M
    )
    assert n == 1
    grpc_file.write_text(text)
    assert generate.stale_files(committed_copy) == []


def test_a_changed_grpc_file_is_stale(committed_copy):
    grpc_file = committed_copy / "pdpb_pb2_grpc.py"
    text = grpc_file.read_text()
    assert "/pdpb.PD/Tso" in text
    grpc_file.write_text(text.replace("/pdpb.PD/Tso", "/pdpb.PD/TsoV2"))
    assert generate.stale_files(committed_copy) == ["pdpb_pb2_grpc.py"]


def test_a_changed_descriptor_is_stale(committed_copy):
    pb2 = committed_copy / "pdpb_pb2.py"
    text = pb2.read_text()
    # Rename a field inside the serialized descriptor (same length, so the bytes stay well formed).
    assert text.count("\\tcaller_id") == 1
    pb2.write_text(text.replace("\\tcaller_id", "\\tcallerXid"))
    assert generate.stale_files(committed_copy) == ["pdpb_pb2.py"]


def test_a_comment_outside_the_descriptor_is_not_stale(committed_copy):
    pb2 = committed_copy / "pdpb_pb2.py"
    pb2.write_text(pb2.read_text() + "\n# a harmless trailing comment\n")
    assert generate.stale_files(committed_copy) == []


@pytest.mark.parametrize("name", ["pdpb_pb2.py", "pdpb_pb2_grpc.py"])
def test_a_missing_file_is_stale(committed_copy, name):
    (committed_copy / name).unlink()
    assert generate.stale_files(committed_copy) == [name]


def test_a_stale_copy_of_an_older_proto_is_detected(tmp_path, committed_copy, monkeypatch):
    """Generate from a modified proto, then check that copy against the repo's proto."""
    proto_dir = tmp_path / "proto"
    proto_dir.mkdir()
    source = (PROTOS / "pdpb.proto").read_text()
    assert "string dc_location = 3;" in source
    (proto_dir / "pdpb.proto").write_text(source.replace("string dc_location = 3;", "string dc_loc = 3;"))
    shutil.copy(PROTOS / "admin.proto", proto_dir / "admin.proto")
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(generate, "HERE", proto_dir)
    generate.generate(out)
    monkeypatch.undo()
    assert generate.stale_files(out) == ["pdpb_pb2.py"]
    assert generate.stale_files(committed_copy) == []


def test_generated_code_is_the_pd_wire_subset():
    service = pdpb_pb2.DESCRIPTOR.services_by_name["PD"]
    assert service.full_name == "pdpb.PD"
    tso = service.methods_by_name["Tso"]
    assert tso.client_streaming and tso.server_streaming
    assert not service.methods_by_name["GetMembers"].client_streaming
    fields = {f.name: f.number for f in pdpb_pb2.TsoRequest.DESCRIPTOR.fields}
    assert fields == {"header": 1, "count": 2, "dc_location": 3}
    fields = {f.name: f.number for f in pdpb_pb2.TsoResponse.DESCRIPTOR.fields}
    assert fields == {"header": 1, "count": 2, "timestamp": 3}
    fields = {f.name: f.number for f in pdpb_pb2.Timestamp.DESCRIPTOR.fields}
    assert fields == {"physical": 1, "logical": 2, "suffix_bits": 3}
    assert hasattr(pdpb_pb2_grpc, "PDStub") and hasattr(pdpb_pb2_grpc, "add_PDServicer_to_server")
