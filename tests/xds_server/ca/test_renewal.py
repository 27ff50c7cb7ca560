"""The renewal timer republishes when a certificate is due, and forgets unused ones."""

from __future__ import annotations

import asyncio
import datetime as dt

from xds_server.ca.authority import Authority
from xds_server.ca.certs import new_key, self_signed_root
from xds_server.ca.identity import Identity
from xds_server.ca.renewal import renew_forever
from xds_server.ca.workloads import WorkloadCertificates

WEB = Identity("shop", "web")
GONE = Identity("shop", "gone")


def test_due_certificates_are_republished_and_unasked_ones_forgotten() -> None:
    now = dt.datetime.now(dt.UTC)
    authority = Authority.of(self_signed_root(new_key(), "td", now), "td")
    certs = WorkloadCertificates(authority, dt.timedelta(seconds=1))
    serials: list[int] = []

    def republish() -> None:  # what a new snapshot does for the one connected proxy
        serials.append(certs.get(WEB, dt.datetime.now(dt.UTC)).cert.serial_number)

    async def main() -> None:
        task = asyncio.create_task(renew_forever(certs, republish))
        await asyncio.sleep(0.05)
        certs.get(WEB, dt.datetime.now(dt.UTC))  # issued after the timer started waiting
        certs.get(GONE, dt.datetime.now(dt.UTC))
        for _ in range(100):  # renewed every 0.5-1 s (lifetimes are whole seconds)
            if len(set(serials)) >= 3:
                break
            await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    assert len(set(serials)) >= 3, serials  # the timer woke for the first issue, then renewed
    assert certs.identities() == [WEB]
