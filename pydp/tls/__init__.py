"""TLS for pydp: SDS secrets as files, contexts built from them, and the verified peer."""
