"""PD-wire-compatible subset of pdpb: messages and the PD service stub."""

from . import pdpb_pb2, pdpb_pb2_grpc

__all__ = ["pdpb_pb2", "pdpb_pb2_grpc"]
