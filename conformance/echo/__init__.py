"""An echo backend that answers with what it saw (HTTP/1.1, HTTP/2, gRPC).

Run it as `python -m conformance.echo --name NAME --listen ADDR:PORT [...]`.
`app` holds the protocol-free logic (control headers, counters, the reply);
`h1`, `h2conn` and `server` are the trio adapters around it.
"""
