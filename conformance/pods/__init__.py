"""Pods on one machine: network namespaces with transparent capture, as in a cluster.

Theory of operation. A *world* is a private set of network namespaces made
as root: a "node" namespace holding a Linux bridge (its address is the node's
and the control plane's) and one namespace per pod, joined to the bridge by a
veth pair, with an address of the world's own 10.x /24 and a default route to
the node. The node forwards nothing, so whatever a pod sends that is not for
another pod or the control plane ends there. Service names resolve inside a
pod through `/etc/netns/<netns>/hosts` (which `ip netns exec` mounts over
`/etc/hosts`), to ClusterIPs that no interface holds: only the capture makes
them reachable. The host's own namespace gets nothing but the namespaces'
mount points and those `/etc/netns` folders; its interfaces and iptables are
never touched.

In a pod the sidecar (Envoy or pydp, from the bootstrap `xds-server bootstrap`
prints) runs as UID/GID 1337 after `python -m xds_server.inject.capture` (the
injected init container's script) has redirected outbound TCP to 15001 and
inbound TCP to 15006, exempting the proxy's own traffic by owner. The
application runs as root. The control plane (`xds-server serve`) runs in the
node namespace on the bridge address, and sees the pods as it would in a
cluster: Pods with addresses and service accounts, Services with ClusterIPs,
EndpointSlices of pod addresses, written to its manifests folder.

Every name starts with the world's prefix `xm<pid>-<tag>-<n>`; a record under
`/run/xdsmesh-pods/` lists what a world made before it makes it, and the
world removes everything when it closes, whatever happened. A world whose
process died (killed before it could clean up) is removed by the next world
that opens, on any process (`records.clean_stale`), or by
`python -m conformance.pods clean`.

- `system`: running `ip`, and why a machine cannot host a world;
- `names`: names and addresses of a world (pure);
- `records`: what live worlds own, and the cleaning of dead ones;
- `network`: namespaces, bridge, veths, hosts files;
- `sockets`: sockets opened inside a namespace, for the runner's own requests;
- `kube`: the Kubernetes objects and the hosts file of a world (pure);
- `control`: the control plane process, in the node namespace;
- `identities`: the mesh's root the world gives the CA, and TLS clients' certificates;
- `bed`: the test bed tests use (`open_bed`), and `fetch`, a plain client app;
- `world`: the conformance runner's world in pods mode (`--pods`).
"""
