"""The timer that republishes when a certificate is due or the trust bundle changes.

The only I/O around `WorkloadCertificates`: sleep until `next_due`, then
publish the current model again. Building the new snapshot asks every
connected proxy's view for its secrets, which renews the due certificates;
the ones nobody asked for are forgotten. Unchanged secrets keep their bytes,
so only the renewed ones are pushed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from xds_server.ca.sds import Clock, utcnow
from xds_server.ca.workloads import WorkloadCertificates

log = logging.getLogger("xds_server.ca")

IDLE = 60.0  # seconds between looks when nothing is due
MINIMUM = 0.05  # never spin faster than this


async def renew_forever(
    certificates: WorkloadCertificates,
    republish: Callable[[], object],
    clock: Clock = utcnow,
) -> None:
    issued = asyncio.Event()  # a new certificate may be due before what we wait for
    certificates.on_issue.append(lambda _: issued.set())
    while True:
        issued.clear()
        now = clock()
        due = certificates.next_due(now)
        delay = IDLE if due is None else min(IDLE, (due - now).total_seconds())
        try:
            await asyncio.wait_for(issued.wait(), max(delay, MINIMUM))
            continue
        except TimeoutError:
            pass
        if due is not None and clock() >= due:
            republish()
            gone = certificates.prune(clock())
            if gone:
                log.debug("forgot certificates of %s: no proxy asked", ", ".join(map(str, gone)))
