"""Image URLs are stored only for https on public hosts: nothing our Lambdas would fetch from inside our network."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crosslist.products.image_urls import UnsafeImageUrl, check_image_url, check_public_host
from crosslist.settings import Settings
from tests.conftest import REPO

DEVSTACK_ORIGIN = "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://images.example.com/a.jpg", "https"),
        ("ftp://images.example.com/a.jpg", "https"),
        ("https://169.254.169.254/latest/meta-data/", "not a public"),
        ("https://2852039166/", "not a public"),
        ("https://0xa9.0xfe.0xa9.0xfe/", "not a public"),
        ("https://169.254.43518/", "not a public"),
        ("https://127.1/a.jpg", "not a public"),
        ("https://0177.0.0.1/a.jpg", "not a public"),
        ("https://10.0.0.5/a.jpg", "not a public"),
        ("https://172.16.3.4/a.jpg", "not a public"),
        ("https://192.168.1.10/a.jpg", "not a public"),
        ("https://100.64.0.1/a.jpg", "not a public"),
        ("https://0.0.0.0/a.jpg", "not a public"),
        ("https://224.0.0.1/a.jpg", "not a public"),
        ("https://240.0.0.1/a.jpg", "not a public"),
        ("https://[::1]/a.jpg", "not a public"),
        ("https://[::]/a.jpg", "not a public"),
        ("https://[fe80::1]/a.jpg", "not a public"),
        ("https://[fd00::1]/a.jpg", "not a public"),
        ("https://[fec0::1]/a.jpg", "not a public"),
        ("https://[ff02::1]/a.jpg", "not a public"),
        ("https://[::ffff:169.254.169.254]/a.jpg", "not a public"),
        ("https://[::ffff:7f00:1]/a.jpg", "not a public"),
        ("https://[2002:a9fe:a9fe::1]/a.jpg", "not a public"),
        ("https://[64:ff9b::a9fe:a9fe]/a.jpg", "not a public"),
        ("https://localhost/a.jpg", "host name"),
        ("https://LOCALHOST./a.jpg", "host name"),
        ("https://images.localhost/a.jpg", "host name"),
        ("https://metadata.google.internal/computeMetadata/v1/", "host name"),
        ("https://metadata/computeMetadata/v1/", "host name"),
        ("https://printer.local/a.jpg", "host name"),
        ("https://intranet/a.jpg", "host name"),
        ("https://user:secret@images.example.com/a.jpg", "user name or password"),
        ("not a url", "not a valid URL"),
    ],
)
def test_urls_leading_off_the_public_internet_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeImageUrl, match=reason):
        check_image_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://images.example.com/levis-1.jpg",
        "https://cdn.example.co.uk:8443/p/1.jpg?w=800",
        "https://8.8.8.8/a.jpg",
        "https://[2606:4700:4700::1111]/a.jpg",
        "https://例え.jp/ü.jpg",
    ],
)
def test_https_urls_on_public_hosts_are_accepted(url: str) -> None:
    check_image_url(url)


private_networks = st.sampled_from(
    [IPv4Network(n) for n in ("127.0.0.0/8", "10.0.0.0/8", "169.254.0.0/16", "192.168.0.0/16", "100.64.0.0/10")]
)


@st.composite
def numeric_spellings_of_private_addresses(draw: st.DrawFn) -> tuple[str, IPv4Address]:
    """The forms inet_aton (and so getaddrinfo and browsers) read as an IPv4 address."""
    network = draw(private_networks)
    address = IPv4Address(draw(st.integers(int(network[0]), int(network[-1]))))
    a, b, c, d = address.packed
    spelling = draw(
        st.sampled_from(
            [
                str(int(address)),
                hex(int(address)),
                f"{a}.{(b << 16) | (c << 8) | d}",
                f"{a}.{b}.{(c << 8) | d}",
                f"{a:#x}.{b:#x}.{c:#x}.{d:#x}",
                f"0{a:o}.{b}.{c}.{d}",
                f"{address}.",
            ]
        )
    )
    return spelling, address


@given(numeric_spellings_of_private_addresses())
def test_every_numeric_spelling_of_a_private_address_is_refused(spelled: tuple[str, IPv4Address]) -> None:
    host, address = spelled
    with pytest.raises(UnsafeImageUrl, match=rf"\b{re.escape(str(address))}\b.* not a public"):
        check_public_host(host)


def test_a_development_origin_is_allowed_exactly_and_nothing_more() -> None:
    image = f"{DEVSTACK_ORIGIN}/__devstack/images/1.png"
    check_image_url(image, dev_origins=[DEVSTACK_ORIGIN])
    with pytest.raises(UnsafeImageUrl):
        check_image_url(image)
    for elsewhere in ("http://127.0.0.1:8001/a.png", "https://127.0.0.1:8000/a.png", "http://localhost:8000/a.png"):
        with pytest.raises(UnsafeImageUrl):
            check_image_url(elsewhere, dev_origins=[DEVSTACK_ORIGIN])


def test_development_origins_come_from_a_comma_separated_variable_empty_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CROSSLIST_DEV_IMAGE_ORIGINS", raising=False)
    assert Settings().dev_image_origins == ()
    monkeypatch.setenv("CROSSLIST_DEV_IMAGE_ORIGINS", "http://127.0.0.1:8000/, http://localhost:9000")
    assert Settings().dev_image_origins == ("http://127.0.0.1:8000", "http://localhost:9000")
    monkeypatch.setenv("CROSSLIST_DEV_IMAGE_ORIGINS", "")
    assert Settings().dev_image_origins == ()


def test_the_deployed_template_never_allows_development_image_origins() -> None:
    assert "DEV_IMAGE_ORIGINS" not in (REPO / "template.yaml").read_text()
