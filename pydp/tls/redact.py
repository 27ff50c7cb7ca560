"""Envoy's redaction of sensitive fields, for `/config_dump`.

A field annotated `udpa.annotations.sensitive` (a private key, a password)
is printed as `[redacted]`: a string or bytes field is replaced, and in a
sensitive message every string and bytes field inside is. Messages packed in
`Any` are unpacked, redacted and packed again. The input is not changed.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2, symbol_database
from google.protobuf.descriptor import FieldDescriptor
from udpa.annotations import sensitive_pb2

Message = Any
REDACTED = "[redacted]"
_ANY = any_pb2.Any.DESCRIPTOR.full_name
_TEXT = (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES)


def redacted(message: Message) -> Message:
    """A copy of `message` with its sensitive fields redacted."""
    out = type(message)()
    out.CopyFrom(message)
    _redact(out, sensitive=False)
    return out


def _is_sensitive(field: FieldDescriptor) -> bool:
    return bool(field.GetOptions().Extensions[sensitive_pb2.sensitive])


def _redact(message: Message, sensitive: bool) -> None:
    if message.DESCRIPTOR.full_name == _ANY:
        _redact_any(message, sensitive)
        return
    for field, value in message.ListFields():
        hidden = sensitive or _is_sensitive(field)
        if field.type in _TEXT:
            if hidden:
                text: str | bytes = (
                    REDACTED if field.type == FieldDescriptor.TYPE_STRING else REDACTED.encode()
                )
                if _repeated(field):
                    value[:] = [text] * len(value)
                else:
                    setattr(message, field.name, text)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry:
                for key in list(value):
                    if hasattr(value[key], "DESCRIPTOR"):
                        _redact(value[key], hidden)
            elif _repeated(field):
                for item in value:
                    _redact(item, hidden)
            else:
                _redact(value, hidden)


def _redact_any(packed: Message, sensitive: bool) -> None:
    name = packed.type_url.rpartition("/")[2]
    try:
        cls = symbol_database.Default().GetSymbol(name)
    except KeyError:
        return
    inner = cls()
    if not packed.Unpack(inner):
        return
    _redact(inner, sensitive)
    packed.Pack(inner, type_url_prefix=packed.type_url.rpartition("/")[0] + "/")


def _repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)
