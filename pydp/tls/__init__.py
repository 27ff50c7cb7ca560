"""TLS for pydp: SDS secrets as files, contexts built from them, and the verified peer.

- `secrets`: the SDS compiler (`compile_secret` -> `TlsSecret`, inline material only).
- `files`: the private directory Python's `ssl` loads certificates and keys from.
- `config`: `transport_socket` -> `ServerTlsConfig` / `ClientTlsConfig`.
- `contexts`: `TlsContexts`, the cached `ssl.SSLContext`s, rebuilt when a secret rotates.
- `san`: `match_typed_subject_alt_names`, matched after the handshake.
- `stream`: `TlsStream`, TLS over a socket without the scheduler on the data path.
- `handshake`: `accept` / `originate` (a `TlsStream`), with Envoy's `ssl.*` counters.
- `client_hello`, `inspector`: the TLS inspector listener filter.
- `listener`: a connection before its filter chain: inspector, chain choice, handshake.
- `redact`: Envoy's `[redacted]` for `/config_dump`.
- `peer`: `TlsPeer`, what the HTTP layer learns of a verified client.
"""
