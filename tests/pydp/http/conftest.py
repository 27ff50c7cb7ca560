"""Fixtures of the HTTP protocol tests."""

from __future__ import annotations

import pytest

from tests.pydp.http.helpers import Chunkings, bytewise, every_offset, whole


@pytest.fixture(params=[whole, bytewise, every_offset], ids=["whole", "bytewise", "every-offset"])
def chunkings(request: pytest.FixtureRequest) -> Chunkings:
    """How to cut a small message: whole, byte by byte, or in two at every offset."""
    split: Chunkings = request.param
    return split
