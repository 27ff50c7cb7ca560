"""x-forwarded-client-cert in observations: identities kept, certificates and digests masked."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from conformance import observe
from conformance.observe import mask_xfcc
from tests.conformance.test_checks import BINDINGS, echo_reply

SERVER = "spiffe://cluster.local/ns/shop/sa/reviews"
CLIENT = "spiffe://cluster.local/ns/default/sa/frontend"


def test_the_hash_is_masked_and_the_identities_kept() -> None:
    value = f"By={SERVER};Hash=9f86d081884c7d65;URI={CLIENT}"
    assert mask_xfcc(value) == f"By={SERVER};Hash=*;URI={CLIENT}"


def test_every_element_and_every_certificate_field_is_masked() -> None:
    value = (
        f'By={SERVER};Hash=ab;Cert="-----BEGIN%20CERTIFICATE-----";Chain="x";'
        f'Subject="CN=a;O=b,c";URI={CLIENT},By=spiffe://x/ns/a/sa/b;Hash=cd;DNS=a.example'
    )
    assert mask_xfcc(value) == (
        f'By={SERVER};Hash=*;Cert=*;Chain=*;Subject="CN=a;O=b,c";URI={CLIENT},'
        "By=spiffe://x/ns/a/sa/b;Hash=*;DNS=a.example"
    )


def test_a_value_without_certificate_fields_is_unchanged() -> None:
    for value in ("forged", f"By={SERVER};URI={CLIENT}", "", 'Subject="a\\";Hash=x"'):
        assert mask_xfcc(value) == value


def test_the_workload_seen_header_is_masked_in_an_observation() -> None:
    reply = echo_reply(**{"x-forwarded-client-cert": f"By={SERVER};Hash=1234;URI={CLIENT}"})
    seen = observe.observe(reply, "h1", BINDINGS)["upstream"]["headers"]
    assert seen["x-forwarded-client-cert"] == [f"By={SERVER};Hash=*;URI={CLIENT}"]


TEXT = st.text(alphabet='abcHashCertURIBy=;,"\\/:', max_size=40)


@given(TEXT)
def test_masking_is_idempotent_and_keeps_the_shape(value: str) -> None:
    once = mask_xfcc(value)
    assert mask_xfcc(once) == once
    assert once.count(",") <= value.count(",") and once.count(";") <= value.count(";")
    if "=" not in value:
        assert once == value
