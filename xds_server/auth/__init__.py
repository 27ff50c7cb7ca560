"""Authentication of xDS clients: which workload a proxy is, proven before it gets a secret.

`tokens` mints and checks the per-workload tokens of the standalone mode
(`xds-server bootstrap` puts one in the bootstrap); `tokenreview` checks a
Kubernetes service account token with the TokenReview API (cluster mode);
`gate` holds the rule both share: a stream is served only when the proven
identity is the one the proxy's node metadata claims.
"""
