"""Sidecar injection (`xds-server inject`), the init container's capture and the sidecar's start.

Kept free of imports: `python -m xds_server.inject.capture` and
`python -m xds_server.inject.sidecar` run in pods and should start fast.
"""
