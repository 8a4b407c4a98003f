"""One line for a person, and the kind the results count, for any exception."""

import grpc

from tsobench.errors import error_kind, one_line


class _Rpc(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def test_a_message_on_several_lines_becomes_one_with_its_kind():
    assert one_line(RuntimeError("the plugin is broken\n  on two lines")) == (
        "RuntimeError: the plugin is broken on two lines"
    )
    assert one_line(KeyError()) == "KeyError"


def test_a_grpc_error_says_its_status_and_details_and_a_missed_deadline_is_a_timeout():
    assert one_line(_Rpc(grpc.StatusCode.UNAVAILABLE, "gone")) == "UNAVAILABLE: gone"
    assert error_kind(_Rpc(grpc.StatusCode.DEADLINE_EXCEEDED, "late")) == "timeout"
    assert error_kind(TimeoutError()) == "timeout"


def test_a_long_message_is_cut():
    line = one_line(ValueError("x" * 1000), most=50)
    assert len(line) == 50 and line.endswith("...")
