"""Matching a listing read by an import to the seller's products: surely (SKU, the same words at the same price),
maybe (proposed to the user), or not (a new product). A wrong merge delists the wrong item on a sale, so a
different size, colour or brand is never the same product, and two close candidates are never chosen between."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from crosslist.imports.matching import (
    LINK,
    PROPOSE,
    Candidate,
    Listing,
    Matcher,
    match,
    score,
    title_similarity,
    tokens,
)

JEANS = Candidate("Levi's 501 jeans blue W32 L32", "45.00", brand="Levi's", size="W32", product_id="p-jeans")


def test_titles_compare_without_case_accents_punctuation_or_filler_words() -> None:
    assert tokens("Levi's 501 Jeans - Blue, W32 L32") == tokens("VINTAGE levis 501 jeans blue w32 l32")
    assert tokens("Veste en cuir été") == tokens("veste cuir ete")
    assert title_similarity("Nike Air Max 90 grey", "Nike Air Max 90 gray") == 1.0


def test_the_sellers_sku_links_whatever_the_title() -> None:
    found = match(
        Listing("Jeans", "10.00", sku="JEANS-0042"),
        [Candidate("Something else", "99", sku="JEANS-0042", product_id="p1")],
    )
    assert (found.decision, found.product_id, found.reason, found.confidence) == ("link", "p1", "sku", 1.0)


def test_crosslist_own_sku_names_the_product() -> None:
    found = match(Listing("Jeans", "10.00", sku="CL-p-jeans"), [JEANS])
    assert (found.decision, found.product_id, found.reason) == ("link", "p-jeans", "crosslist_sku")


def test_the_same_words_at_the_same_price_link_surely() -> None:
    found = match(Listing("Vintage LEVIS 501 Jeans Blue W32 L32", "45.00"), [JEANS])
    assert (found.decision, found.product_id, found.reason) == ("link", "p-jeans", "title_price")
    assert found.confidence >= LINK


def test_a_price_within_one_percent_is_the_same_price() -> None:
    assert match(Listing("Levis 501 jeans blue W32 L32", "45.40"), [JEANS]).decision == "link"
    assert match(Listing("Levis 501 jeans blue W32 L32", "47.00"), [JEANS]).decision == "propose"


def test_a_close_title_is_only_proposed() -> None:
    found = match(Listing("Levi's 501 jeans W32 L32 mid blue denim", "45.00"), [JEANS])
    assert found.decision == "propose"
    assert PROPOSE <= found.confidence < LINK


def test_another_size_or_colour_is_another_product_however_close_the_title() -> None:
    assert match(Listing("Levi's 501 jeans blue W34 L32", "45.00", size="W34"), [JEANS]).decision == "new"
    shirt = Candidate("Ralph Lauren polo shirt M", "30.00", color="navy", product_id="p-shirt")
    assert match(Listing("Ralph Lauren polo shirt M", "30.00", color="red"), [shirt]).decision == "new"


def test_titles_naming_different_sizes_are_different_items() -> None:
    coat = Candidate("Burberry trench coat navy L", "152.00", product_id="p-coat")
    assert match(Listing("burberry trench coat navy S", "152.00"), [coat]).decision == "new"
    boots = Candidate("Dr. Martens 1460 boots white EU 43", "112.00", product_id="p-boots")
    assert match(Listing("Doc Martens 1460 boots white EU 43", "112.00"), [boots]).decision == "link"
    assert match(Listing("Doc Martens 1460 boots white EU 42", "112.00"), [boots]).decision == "new"


def test_titles_naming_other_colours_are_other_items_and_brand_abbreviations_are_the_brand() -> None:
    polo = Candidate("Ralph Lauren polo shirt white L", "24.99", product_id="p-polo")
    assert match(Listing("RL polo shirt white L", "24.99"), [polo]).decision == "link"
    assert match(Listing("RL polo shirt navy L", "24.99"), [polo]).decision == "new"
    assert (
        match(
            Listing("Ralph Lauren polo shirt navy blue L", "24.99"),
            [Candidate("RL polo navy L", "24.99", product_id="p")],
        ).decision
        != "new"
    )


def test_two_products_as_close_are_never_chosen_between() -> None:
    twin = Candidate("Levi's 501 jeans blue W32 L32", "45.00", product_id="p-twin")
    found = match(Listing("Levis 501 jeans blue W32 L32", "45.00"), [JEANS, twin])
    assert (found.decision, found.reason) == ("propose", "ambiguous")


def test_a_near_distractor_does_not_stop_a_sure_match() -> None:
    other_size = Candidate("Levi's 501 jeans blue W34 L32", "45.00", product_id="p-w34")
    found = match(Listing("Levis 501 jeans blue W32 L32", "45.00"), [other_size, JEANS])
    assert (found.decision, found.product_id) == ("link", "p-jeans")


def test_a_product_taken_by_an_earlier_listing_of_the_page_is_no_candidate() -> None:
    matcher = Matcher([JEANS])
    assert matcher.match(Listing("Levis 501 jeans blue W32 L32", "45.00")).decision == "link"
    matcher.remove("p-jeans")
    assert matcher.match(Listing("Levis 501 jeans blue W32 L32", "45.00")).decision == "new"


WORDS = ["nike", "adidas", "levis", "jeans", "shirt", "coat", "blue", "red", "w32", "w34", "m", "l", "501", "air"]
words = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6)
prices = st.sampled_from(["10.00", "10.05", "12.00", "45.00", "99.99"])


@given(st.lists(st.tuples(words, prices), max_size=8), words, prices)
def test_only_a_sure_match_links_and_never_to_one_of_two_equally_close(
    products: list[tuple[list[str], str]], title: list[str], price: str
) -> None:
    candidates = [Candidate(" ".join(words), p, product_id=f"p{i}") for i, (words, p) in enumerate(products)]
    listing = Listing(" ".join(title), price)
    found = match(listing, candidates)
    sure = [c.product_id for c in candidates if score(listing, c) >= LINK]
    if found.decision == "link":
        assert sure == [found.product_id]
    elif found.decision == "propose":
        assert found.confidence >= PROPOSE
        assert len(sure) != 1
    else:
        assert found.product_id is None
        assert not sure


# The first photo's hash: the jeans' picture, the same picture re-hosted elsewhere (3 bits apart), another picture.
PICTURE, REHOSTED, OTHER_PICTURE = "f0f0f0f0f0f0f0f0", "f0f0f0f0f0f0f0f7", "0f0f0f0f0f0f0f0f"
PICTURED_JEANS = replace(JEANS, photo_hashes=(PICTURE,))
CLOSE = "Levis 501 jeans blue W32 L32 straight"  # one word more: proposed on its title alone
REWORDED = "Levis blue W32 L32 straight leg denim trousers"  # half the words: a new product on its title alone


def test_the_same_photo_at_the_same_price_links_a_close_title_and_proposes_a_reworded_one() -> None:
    assert match(Listing(CLOSE, "45.00"), [PICTURED_JEANS]).decision == "propose"
    assert match(Listing(REWORDED, "45.00"), [PICTURED_JEANS]).decision == "new"

    close = match(Listing(CLOSE, "45.00", photo_hashes=(REHOSTED,)), [PICTURED_JEANS])
    assert (close.decision, close.product_id, close.reason) == ("link", "p-jeans", "title_price_photo")
    reworded = match(Listing(REWORDED, "45.00", photo_hashes=(REHOSTED,)), [PICTURED_JEANS])
    assert (reworded.decision, reworded.product_id, reworded.reason) == ("propose", "p-jeans", "title_price_photo")
    assert PROPOSE <= reworded.confidence < LINK


def test_another_photo_never_lowers_a_match_and_a_photo_alone_never_makes_one() -> None:
    same_words = match(
        Listing("Levis 501 jeans blue W32 L32", "45.00", photo_hashes=(OTHER_PICTURE,)), [PICTURED_JEANS]
    )
    assert (same_words.decision, same_words.reason) == ("link", "title_price")  # re-photographed: titles decide
    assert match(Listing(CLOSE, "45.00", photo_hashes=(OTHER_PICTURE,)), [PICTURED_JEANS]).decision == "propose"
    unrelated = Listing("Nike Air Max 90 trainers white", "45.00", photo_hashes=(PICTURE,))
    assert match(unrelated, [PICTURED_JEANS]).decision == "new"


def test_the_same_photo_never_overrules_another_size_colour_or_price() -> None:
    other_size = Listing("Levis 501 jeans blue W34 L32", "45.00", size="W34", photo_hashes=(PICTURE,))
    assert match(other_size, [PICTURED_JEANS]).decision == "new"  # one stock photo for two sizes
    assert (
        match(Listing("Levis 501 jeans black W32 L32", "45.00", photo_hashes=(PICTURE,)), [PICTURED_JEANS]).decision
        == "new"
    )
    other_price = match(Listing(CLOSE, "60.00", photo_hashes=(PICTURE,)), [PICTURED_JEANS])
    assert other_price == match(Listing(CLOSE, "60.00"), [PICTURED_JEANS])


def test_a_photo_several_products_show_says_nothing() -> None:
    stock = replace(PICTURED_JEANS, title="Levis 501 jeans blue W32 L34", product_id="p-l34")
    found = match(Listing(CLOSE, "45.00", photo_hashes=(PICTURE,)), [PICTURED_JEANS, stock])
    assert found.reason != "title_price_photo"
    assert found.decision != "link"


def test_a_product_imported_from_two_marketplaces_is_recognised_by_either_photo() -> None:
    twice = replace(PICTURED_JEANS, photo_hashes=(OTHER_PICTURE, PICTURE))
    assert match(Listing(CLOSE, "45.00", photo_hashes=(REHOSTED,)), [twice]).decision == "link"


def test_a_product_is_found_by_the_title_any_of_its_imported_listings_shows() -> None:
    # Made from a reworded Etsy title, then linked to its eBay listing by SKU: a Vinted copy of the eBay title is it.
    made = Candidate("Levi's straight leg denim trousers, blue, W32 L32", "45.00", sku="JEANS-1", product_id="p1")
    as_on_ebay = Candidate("Levi's 501 jeans blue W32 L32", "45.00", sku="JEANS-1", product_id="p1")
    assert match(Listing("Levis 501 jeans blue W32 L32", "45.00"), [made]).decision == "new"
    found = match(Listing("Levis 501 jeans blue W32 L32", "45.00"), [made, as_on_ebay])
    assert (found.decision, found.product_id) == ("link", "p1")  # one product, never "ambiguous" with itself
    assert match(Listing("Jeans", "1.00", sku="JEANS-1"), [made, as_on_ebay]).decision == "link"
