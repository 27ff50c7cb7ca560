"""The mesh's certificate authority: workload identities, certificates and SDS secrets.

`identity` names workloads (SPIFFE IDs) and the two SDS secrets; `certs` makes
keys and certificates (pure, time passed in); `authority` is the signing chain
and trust bundle, root rotation included; `workloads` issues and renews the
certificate of each identity; `store` keeps the CA's keys in a directory or a
Kubernetes Secret; `sds` turns certificates into the Envoy `Secret` resources.
"""
