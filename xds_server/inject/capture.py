"""Capture a pod's TCP traffic into its sidecar with iptables (the init container's job).

Run as `python -m xds_server.inject.capture [flags]` in the pod's network
namespace, as root with NET_ADMIN: the injected init container does, and so
can a test bed that makes network namespaces on one machine. In the `nat`
table:

- PREROUTING sends inbound TCP to the inbound port (15006), for every port or
  only `--include-inbound-ports`, less `--exclude-inbound-ports`;
- OUTPUT sends outbound TCP to the outbound port (15001), except what the
  proxy itself sends (`-m owner --uid-owner`/`--gid-owner`, the proxy's UID
  and GID, 1337 as in Istio), what other `--exclude-uids` send, traffic to
  127.0.0.1, `--exclude-outbound-ports` and `--exclude-outbound-ip-ranges`;
  only `--include-outbound-ip-ranges` if given (e.g. the Service CIDR).

Running it again replaces its rules (the chains are flushed and the jumps to
them removed first); `--clean` only removes them; `--dry-run` prints the
commands instead of running them, as a shell script. `rules()` is the plain function behind it.
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

PROXY_UID = 1337
INBOUND_PORT = 15006
OUTBOUND_PORT = 15001

INBOUND = "XDSMESH_INBOUND"
IN_REDIRECT = "XDSMESH_IN_REDIRECT"
OUTPUT = "XDSMESH_OUTPUT"
REDIRECT = "XDSMESH_REDIRECT"
CHAINS = (INBOUND, IN_REDIRECT, OUTPUT, REDIRECT)
JUMPS = (("PREROUTING", INBOUND), ("OUTPUT", OUTPUT))
ALL = ("*",)


@dataclass(frozen=True, slots=True)
class Capture:
    proxy_uid: int = PROXY_UID
    proxy_gid: int | None = None  # defaults to the proxy's UID
    inbound_port: int = INBOUND_PORT
    outbound_port: int = OUTBOUND_PORT
    include_inbound_ports: tuple[str, ...] = ALL  # "*" or port numbers
    exclude_inbound_ports: tuple[int, ...] = ()
    exclude_outbound_ports: tuple[int, ...] = ()
    include_outbound_ranges: tuple[str, ...] = ALL  # "*" or CIDRs
    exclude_outbound_ranges: tuple[str, ...] = ()
    exclude_uids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for port in (
            self.inbound_port,
            self.outbound_port,
            *self.exclude_inbound_ports,
            *self.exclude_outbound_ports,
        ):
            _check_port(port)
        if self.include_inbound_ports != ALL:
            for text in self.include_inbound_ports:
                _check_port(int(text) if text.isdigit() else -1, text)
        if self.include_outbound_ranges != ALL:
            for cidr in self.include_outbound_ranges:
                _network(cidr)
        for cidr in self.exclude_outbound_ranges:
            _network(cidr)


class CaptureError(ValueError):
    """A flag value that cannot become a rule; the message names it."""


def rules(capture: Capture, *, ipv6: bool = False) -> list[list[str]]:
    """The iptables arguments (no program name) that set up the capture, in order."""
    loopback = "::1/128" if ipv6 else "127.0.0.1/32"
    version = 6 if ipv6 else 4
    gid = capture.proxy_gid if capture.proxy_gid is not None else capture.proxy_uid
    nat = ["-t", "nat"]
    out: list[list[str]] = [[*nat, "-N", chain] for chain in CHAINS]
    redirect = ["-p", "tcp", "-j", "REDIRECT", "--to-ports"]
    out.append([*nat, "-A", IN_REDIRECT, *redirect, str(capture.inbound_port)])
    out.append([*nat, "-A", REDIRECT, *redirect, str(capture.outbound_port)])

    out.append([*nat, "-A", "PREROUTING", "-p", "tcp", "-j", INBOUND])
    for port in capture.exclude_inbound_ports:
        out.append([*nat, "-A", INBOUND, "-p", "tcp", "--dport", str(port), "-j", "RETURN"])
    if capture.include_inbound_ports == ALL:
        out.append([*nat, "-A", INBOUND, "-p", "tcp", "-j", IN_REDIRECT])
    else:
        for p in capture.include_inbound_ports:
            out.append([*nat, "-A", INBOUND, "-p", "tcp", "--dport", p, "-j", IN_REDIRECT])

    out.append([*nat, "-A", "OUTPUT", "-p", "tcp", "-j", OUTPUT])
    owners = [("--uid-owner", capture.proxy_uid), ("--gid-owner", gid)]
    owners += [("--uid-owner", uid) for uid in capture.exclude_uids]
    for flag, owner in owners:
        out.append([*nat, "-A", OUTPUT, "-m", "owner", flag, str(owner), "-j", "RETURN"])
    out.append([*nat, "-A", OUTPUT, "-d", loopback, "-j", "RETURN"])
    for port in capture.exclude_outbound_ports:
        out.append([*nat, "-A", OUTPUT, "-p", "tcp", "--dport", str(port), "-j", "RETURN"])
    for cidr in _family(capture.exclude_outbound_ranges, version):
        out.append([*nat, "-A", OUTPUT, "-d", cidr, "-j", "RETURN"])
    if capture.include_outbound_ranges == ALL:
        out.append([*nat, "-A", OUTPUT, "-j", REDIRECT])
    else:
        for cidr in _family(capture.include_outbound_ranges, version):
            out.append([*nat, "-A", OUTPUT, "-d", cidr, "-j", REDIRECT])
    return out


def cleanup() -> list[list[str]]:
    """The iptables arguments that remove the capture; each may fail if it is not there."""
    nat = ["-t", "nat"]
    out = [[*nat, "-D", builtin, "-p", "tcp", "-j", chain] for builtin, chain in JUMPS]
    out += [[*nat, "-F", chain] for chain in CHAINS]
    out += [[*nat, "-X", chain] for chain in CHAINS]
    return out


def _check_port(port: int, text: str | None = None) -> None:
    if not 1 <= port <= 65535:
        raise CaptureError(f"port must be 1-65535, got {text if text is not None else port!r}")


def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError as e:
        raise CaptureError(f"IP range {cidr!r}: {e}") from None


def _family(cidrs: Sequence[str], version: int) -> list[str]:
    return [str(_network(c)) for c in cidrs if _network(c).version == version]


def _ports(text: str) -> tuple[int, ...]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not all(t.isdigit() for t in items):
        raise argparse.ArgumentTypeError(f"expected comma-separated port numbers, got {text!r}")
    return tuple(int(t) for t in items)


def _words(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m xds_server.inject.capture",
        description="Redirect a pod's TCP traffic into its sidecar (iptables, nat table).",
    )
    parser.add_argument("--proxy-uid", type=int, default=PROXY_UID)
    parser.add_argument("--proxy-gid", type=int, default=None, help="default: the proxy UID")
    parser.add_argument("--inbound-port", type=int, default=INBOUND_PORT)
    parser.add_argument("--outbound-port", type=int, default=OUTBOUND_PORT)
    parser.add_argument("--include-inbound-ports", type=_words, default=ALL, metavar="PORTS|*")
    parser.add_argument("--exclude-inbound-ports", type=_ports, default=(), metavar="PORTS")
    parser.add_argument("--exclude-outbound-ports", type=_ports, default=(), metavar="PORTS")
    parser.add_argument("--include-outbound-ip-ranges", type=_words, default=ALL, metavar="CIDRS|*")
    parser.add_argument("--exclude-outbound-ip-ranges", type=_words, default=(), metavar="CIDRS")
    parser.add_argument("--exclude-uids", type=_ports, default=(), metavar="UIDS")
    parser.add_argument("--ipv6", action="store_true", help="also capture IPv6 (ip6tables)")
    parser.add_argument("--iptables", default="iptables", metavar="PROGRAM")
    parser.add_argument("--ip6tables", default="ip6tables", metavar="PROGRAM")
    parser.add_argument("--clean", action="store_true", help="only remove the capture")
    parser.add_argument("--dry-run", action="store_true", help="print the commands instead")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        capture = Capture(
            proxy_uid=args.proxy_uid,
            proxy_gid=args.proxy_gid,
            inbound_port=args.inbound_port,
            outbound_port=args.outbound_port,
            include_inbound_ports=args.include_inbound_ports,
            exclude_inbound_ports=args.exclude_inbound_ports,
            exclude_outbound_ports=args.exclude_outbound_ports,
            include_outbound_ranges=args.include_outbound_ip_ranges,
            exclude_outbound_ranges=args.exclude_outbound_ip_ranges,
            exclude_uids=args.exclude_uids,
        )
    except CaptureError as e:
        parser.error(str(e))
    programs = [(args.iptables, False)] + ([(args.ip6tables, True)] if args.ipv6 else [])
    for program, ipv6 in programs:
        for arguments in cleanup():
            _run(program, arguments, dry_run=args.dry_run, may_fail=True)
        if args.clean:
            continue
        for arguments in rules(capture, ipv6=ipv6):
            if not _run(program, arguments, dry_run=args.dry_run, may_fail=False):
                return 1
    return 0


def _run(program: str, arguments: list[str], *, dry_run: bool, may_fail: bool) -> bool:
    command = [program, *arguments]
    if dry_run:
        print(shlex.join(command) + (" 2>/dev/null || true" if may_fail else ""))
        return True
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as e:
        if may_fail:
            return False
        print(f"cannot run {program}: {e.strerror}", file=sys.stderr)
        return False
    if done.returncode != 0 and not may_fail:
        problem = done.stderr.strip() or f"exit status {done.returncode}"
        print(f"{shlex.join(command)}: {problem}", file=sys.stderr)
        return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
