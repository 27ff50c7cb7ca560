"""The traffic capture: its rules, and the script as the init container runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from xds_server.inject.capture import Capture, CaptureError, cleanup, rules


def text(capture: Capture, *, ipv6: bool = False) -> list[str]:
    return [" ".join(r) for r in rules(capture, ipv6=ipv6)]


def script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xds_server.inject.capture", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_default_capture_redirects_everything_but_the_proxy_and_loopback() -> None:
    assert text(Capture()) == [
        "-t nat -N XDSMESH_INBOUND",
        "-t nat -N XDSMESH_IN_REDIRECT",
        "-t nat -N XDSMESH_OUTPUT",
        "-t nat -N XDSMESH_REDIRECT",
        "-t nat -A XDSMESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006",
        "-t nat -A XDSMESH_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
        "-t nat -A PREROUTING -p tcp -j XDSMESH_INBOUND",
        "-t nat -A XDSMESH_INBOUND -p tcp -j XDSMESH_IN_REDIRECT",
        "-t nat -A OUTPUT -p tcp -j XDSMESH_OUTPUT",
        "-t nat -A XDSMESH_OUTPUT -m owner --uid-owner 1337 -j RETURN",
        "-t nat -A XDSMESH_OUTPUT -m owner --gid-owner 1337 -j RETURN",
        "-t nat -A XDSMESH_OUTPUT -d 127.0.0.1/32 -j RETURN",
        "-t nat -A XDSMESH_OUTPUT -j XDSMESH_REDIRECT",
    ]


def test_exclusions_come_before_the_redirect_and_inclusions_replace_the_catch_all() -> None:
    capture = Capture(
        proxy_uid=2000,
        proxy_gid=3000,
        inbound_port=16006,
        outbound_port=16001,
        include_inbound_ports=("9080", "9443"),
        exclude_inbound_ports=(9090,),
        exclude_outbound_ports=(5432,),
        include_outbound_ranges=("10.96.0.0/12",),
        exclude_outbound_ranges=("10.96.0.1/32",),
        exclude_uids=(0,),
    )
    out = text(capture)
    assert "-t nat -A XDSMESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006" in out
    assert "-t nat -A XDSMESH_REDIRECT -p tcp -j REDIRECT --to-ports 16001" in out
    inbound = [line for line in out if line.startswith("-t nat -A XDSMESH_INBOUND")]
    assert inbound == [
        "-t nat -A XDSMESH_INBOUND -p tcp --dport 9090 -j RETURN",
        "-t nat -A XDSMESH_INBOUND -p tcp --dport 9080 -j XDSMESH_IN_REDIRECT",
        "-t nat -A XDSMESH_INBOUND -p tcp --dport 9443 -j XDSMESH_IN_REDIRECT",
    ]
    outbound = [line for line in out if line.startswith("-t nat -A XDSMESH_OUTPUT")]
    assert outbound == [
        "-t nat -A XDSMESH_OUTPUT -m owner --uid-owner 2000 -j RETURN",
        "-t nat -A XDSMESH_OUTPUT -m owner --gid-owner 3000 -j RETURN",
        "-t nat -A XDSMESH_OUTPUT -m owner --uid-owner 0 -j RETURN",
        "-t nat -A XDSMESH_OUTPUT -d 127.0.0.1/32 -j RETURN",
        "-t nat -A XDSMESH_OUTPUT -p tcp --dport 5432 -j RETURN",
        "-t nat -A XDSMESH_OUTPUT -d 10.96.0.1/32 -j RETURN",
        "-t nat -A XDSMESH_OUTPUT -d 10.96.0.0/12 -j XDSMESH_REDIRECT",
    ]


def test_no_inbound_ports_means_no_inbound_capture() -> None:
    out = text(Capture(include_inbound_ports=()))
    assert not [line for line in out if line.startswith("-t nat -A XDSMESH_INBOUND")]


def test_ipv6_rules_use_ipv6_loopback_and_only_ipv6_ranges() -> None:
    capture = Capture(exclude_outbound_ranges=("10.0.0.0/8", "fd00::/8"))
    v6 = text(capture, ipv6=True)
    assert "-t nat -A XDSMESH_OUTPUT -d ::1/128 -j RETURN" in v6
    assert "-t nat -A XDSMESH_OUTPUT -d fd00::/8 -j RETURN" in v6
    assert not [line for line in v6 if "10.0.0.0/8" in line]
    assert not [line for line in text(capture) if "fd00::/8" in line]


def test_cleanup_removes_the_jumps_then_the_chains() -> None:
    assert [" ".join(r) for r in cleanup()][:3] == [
        "-t nat -D PREROUTING -p tcp -j XDSMESH_INBOUND",
        "-t nat -D OUTPUT -p tcp -j XDSMESH_OUTPUT",
        "-t nat -F XDSMESH_INBOUND",
    ]
    assert [" ".join(r) for r in cleanup()][-1] == "-t nat -X XDSMESH_REDIRECT"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"inbound_port": 0}, "port must be 1-65535, got 0"),
        ({"include_inbound_ports": ("http",)}, "port must be 1-65535, got 'http'"),
        ({"exclude_outbound_ranges": ("10.0.0/8",)}, "IP range '10.0.0/8'"),
    ],
)
def test_values_that_cannot_be_rules_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(CaptureError) as caught:
        Capture(**kwargs)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message)


def test_the_script_prints_a_shell_script_in_dry_run() -> None:
    done = script("--dry-run", "--include-inbound-ports", "8080", "--exclude-outbound-ports", "53")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "iptables -t nat -D PREROUTING -p tcp -j XDSMESH_INBOUND 2>/dev/null || true"
    assert "iptables -t nat -A XDSMESH_INBOUND -p tcp --dport 8080 -j XDSMESH_IN_REDIRECT" in lines
    assert "iptables -t nat -A XDSMESH_OUTPUT -p tcp --dport 53 -j RETURN" in lines
    assert lines[-1] == "iptables -t nat -A XDSMESH_OUTPUT -j XDSMESH_REDIRECT"
    clean = script("--dry-run", "--clean")
    assert clean.stdout.splitlines() == [
        f"iptables {' '.join(r)} 2>/dev/null || true" for r in cleanup()
    ]


def test_bad_flags_are_usage_errors() -> None:
    done = script("--exclude-outbound-ports", "80,http")
    assert done.returncode == 2
    assert "expected comma-separated port numbers, got '80,http'" in done.stderr
    done = script("--include-inbound-ports", "99999")
    assert done.returncode == 2
    assert "port must be 1-65535, got '99999'" in done.stderr


def _fake_iptables(tmp_path: Path, fail_on: str = "") -> tuple[Path, Path]:
    """A stand-in for iptables that records its arguments, and fails on cleanup and `fail_on`."""
    calls = tmp_path / "calls"
    program = tmp_path / "iptables"
    program.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"open({str(calls)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        "args = ' '.join(sys.argv[1:])\n"
        "if ' -D ' in args or ' -X ' in args or ' -F ' in args:\n"
        "    sys.exit('iptables: No chain/target/match by that name.')\n"
        f"if {fail_on!r} and {fail_on!r} in args:\n"
        "    sys.exit('iptables v1.8.9 (nf_tables): unknown option')\n"
    )
    program.chmod(0o755)
    return program, calls


def test_the_script_runs_cleanup_then_every_rule(tmp_path: Path) -> None:
    program, calls = _fake_iptables(tmp_path)
    done = script("--iptables", str(program), "--exclude-uids", "0")
    assert done.returncode == 0, done.stderr
    ran = calls.read_text().splitlines()
    assert ran == [" ".join(r) for r in [*cleanup(), *rules(Capture(exclude_uids=(0,)))]]


def test_a_failing_rule_stops_the_script_naming_the_command(tmp_path: Path) -> None:
    program, calls = _fake_iptables(tmp_path, fail_on="--gid-owner")
    done = script("--iptables", str(program))
    assert done.returncode == 1
    assert f"{program} -t nat -A XDSMESH_OUTPUT -m owner --gid-owner 1337 -j RETURN" in done.stderr
    assert "unknown option" in done.stderr
    assert calls.read_text().splitlines()[-1].endswith("--gid-owner 1337 -j RETURN")


def test_a_missing_iptables_is_named(tmp_path: Path) -> None:
    done = script("--iptables", str(tmp_path / "nope"))
    assert done.returncode == 1
    assert f"cannot run {tmp_path / 'nope'}" in done.stderr
