"""`python -m conformance.pods clean`: remove the worlds of runs that died (as root).

`python -m conformance.pods list` names the worlds on this machine and their owners.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from conformance.pods import records


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.pods", description=__doc__)
    parser.add_argument("command", choices=("clean", "list"))
    args = parser.parse_args(argv)
    if args.command == "list":
        for record in records.load_records():
            state = "running" if record.alive() else "dead"
            print(f"{record.prefix}: pid {record.pid} ({state})")
        return 0
    for what in records.clean_stale():
        print(f"removed {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
