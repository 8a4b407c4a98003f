from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class AbortStreamsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AbortStreamsResponse(_message.Message):
    __slots__ = ("streams",)
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    streams: int
    def __init__(self, streams: _Optional[int] = ...) -> None: ...

class StallRequest(_message.Message):
    __slots__ = ("duration_s",)
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    duration_s: float
    def __init__(self, duration_s: _Optional[float] = ...) -> None: ...

class StallResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DelayRequest(_message.Message):
    __slots__ = ("duration_s", "delay_ms")
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    duration_s: float
    delay_ms: float
    def __init__(self, duration_s: _Optional[float] = ..., delay_ms: _Optional[float] = ...) -> None: ...

class DelayResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TransferLeaderRequest(_message.Message):
    __slots__ = ("member",)
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    member: int
    def __init__(self, member: _Optional[int] = ...) -> None: ...

class TransferLeaderResponse(_message.Message):
    __slots__ = ("from_member", "to_member")
    FROM_MEMBER_FIELD_NUMBER: _ClassVar[int]
    TO_MEMBER_FIELD_NUMBER: _ClassVar[int]
    from_member: int
    to_member: int
    def __init__(self, from_member: _Optional[int] = ..., to_member: _Optional[int] = ...) -> None: ...
