"""Access log configurations (file, stdout, stderr; text formats) of HCMs and TCP proxies."""

from __future__ import annotations

from collections.abc import Iterable

from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.access_loggers.stream.v3 import stream_pb2

from pydp.access_log import FormatError, parse_format
from pydp.listener.config import AccessLogConfig
from pydp.listener.fields import At, Message, type_url, unpack

_LOGGERS = {
    type_url(file_pb2.FileAccessLog): file_pb2.FileAccessLog,
    type_url(stream_pb2.StdoutAccessLog): stream_pb2.StdoutAccessLog,
    type_url(stream_pb2.StderrAccessLog): stream_pb2.StderrAccessLog,
}
_STREAM_PATHS = {
    type_url(stream_pb2.StdoutAccessLog): "/dev/stdout",
    type_url(stream_pb2.StderrAccessLog): "/dev/stderr",
}
_FORMAT_FIELDS = {"text_format", "text_format_source", "content_type"}


def compile_access_logs(logs: Iterable[Message], at: At) -> tuple[AccessLogConfig, ...]:
    """The `access_log` list of a filter; formats are parsed here, so errors NACK."""
    return tuple(_access_log(log, at / f"[{i}]") for i, log in enumerate(logs))


def _access_log(log: Message, at: At) -> AccessLogConfig:
    at.only(log, {"name", "typed_config"})
    if not log.HasField("typed_config"):
        raise (at / "typed_config").error(f"is required (access logger {log.name!r})")
    typed_at = at / "typed_config"
    config = unpack(log.typed_config, _LOGGERS, typed_at, "access logger")
    if isinstance(config, file_pb2.FileAccessLog):
        typed_at.only(config, {"path", "format", "log_format"})
        if not config.path:
            raise (typed_at / "path").error("must not be empty")
        path = config.path
        text = config.format or None
    else:
        typed_at.only(config, {"log_format"})
        path = _STREAM_PATHS[log.typed_config.type_url]
        text = None
    if config.HasField("log_format"):
        text = _text_format(config.log_format, typed_at / "log_format")
    if text is not None:
        try:
            parse_format(text)
        except FormatError as exc:
            raise typed_at.error(str(exc)) from None
    return AccessLogConfig(path=path, format=text)


def _text_format(log_format: Message, at: At) -> str:
    at.only(log_format, _FORMAT_FIELDS)
    kind = log_format.WhichOneof("format")
    if kind == "text_format":
        return str(log_format.text_format)
    if kind == "text_format_source":
        source = log_format.text_format_source
        source_kind = source.WhichOneof("specifier")
        if source_kind == "inline_string":
            return str(source.inline_string)
        if source_kind == "inline_bytes":
            return bytes(source.inline_bytes).decode("utf-8", "replace")
        raise (at / "text_format_source" / (source_kind or "specifier")).error(
            "pydp reads formats inline only"
        )
    raise (at / (kind or "format")).error("pydp writes text formats only")
