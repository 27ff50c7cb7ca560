"""`python -m conformance.echo --name NAME --listen ADDR:PORT [--listen ...] [--protocol P]`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from functools import partial

import trio

from conformance.echo.app import EchoApp
from conformance.echo.server import PROTOCOLS, serve


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not ADDR:PORT")
    return host.strip("[]"), int(port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.echo", description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--listen", type=_address, action="append", required=True)
    parser.add_argument("--protocol", choices=PROTOCOLS, default="any")
    args = parser.parse_args(argv)

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(
                partial(serve, EchoApp(args.name), args.listen, args.protocol)
            )
            for host, port in bound:
                print(f"listening {host}:{port}", flush=True)

    try:
        trio.run(run)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
