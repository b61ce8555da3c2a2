"""Is a listing read on a marketplace one of the seller's products? Surely (the same SKU), maybe (a close
title at the same price: proposed to the user), or not (a new product).

A wrong merge is the costliest mistake an import can make: the product's listings are then delisted together
when one sells. So only a certain match links on its own; anything between PROPOSE and LINK waits for the user.
Two sizes or colours of one model are two products: a size, colour or brand that differs rules a match out.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

from crosslist.marketplaces.rest import SKU_PREFIX

LINK = 0.9  # at least this sure: linked without asking
PROPOSE = 0.6  # at least this sure: proposed to the user; below, a new product
PRICE_TOLERANCE = Decimal("0.01")  # prices within 1 % are the same price (a marketplace's rounding, its fees)
OTHER_PRICE_FACTOR = 0.6  # a close title at another price is at most a proposal

# Words sellers add or drop between marketplaces without changing what the item is.
_FILLER = frozenset(
    " ".join(
        (
            "a an and the for with of in on by de la le les et du des en pour avec",
            "new nwt bnwt nwot used vintage retro classic y2k rare genuine authentic original excellent good great",
            "condition",
            "size sz taille mens womens men women ladies unisex",
        )
    ).split(" ")
)
_SYNONYMS = {
    "jkt": "jacket",
    "doc": "dr",
    "docs": "dr",
    "tnf": "northface",
    "sweat": "sweatshirt",
    "trainer": "sneakers",
    "os": "onesize",
    "blk": "black",
    "wht": "white",
    "gry": "grey",
    "gray": "grey",
    "lg": "l",
    "large": "l",
    "medium": "m",
    "med": "m",
    "small": "s",
    "xlarge": "xl",
    "tshirt": "t",
    "tee": "t",
    "jean": "jeans",
    "trainers": "sneakers",
}
_WORD = re.compile(r"[a-z0-9]+")
# Phrases written several ways, joined into one word before the title is split.
_PHRASES = (
    (re.compile(r"\b(eu|uk|us|fr|it|de|w|l)\s+(\d{1,2}(?:[.,]5)?)\b"), r"\1\2"),  # "EU 38" = "EU38"
    (re.compile(r"\bthe north face\b|\bnorth face\b"), "northface"),
    (re.compile(r"\bone size\b"), "onesize"),
    (re.compile(r"\bralph lauren\b"), "rl"),
    (re.compile(r"\btommy hilfiger\b"), "tommy"),
    (re.compile(r"\bt shirt\b|\btshirt\b"), "tshirt"),
)
# A size written in a title: two listings naming different sizes are two items.
_SIZE = re.compile(r"^(?:xxs|xs|s|m|l|xl|xxl|xxxl|[2-5]xl|onesize|(?:eu|uk|us|fr|it|de)\d{1,2}(?:5)?|w\d{2}|l\d{2})$")

Decision = Literal["link", "propose", "new"]


@dataclass(frozen=True)
class Listing:
    """What matching looks at in a listing read (or a product)."""

    title: str
    price: str
    sku: str | None = None
    brand: str | None = None
    size: str | None = None
    color: str | None = None


@dataclass(frozen=True, kw_only=True)
class Candidate(Listing):
    """One of the seller's products a listing may be."""

    product_id: str


@dataclass(frozen=True)
class Match:
    decision: Decision
    product_id: str | None  # the product linked or proposed
    confidence: float
    reason: str  # sku, crosslist_sku, title_price, ambiguous, no_match


def tokens(title: str) -> frozenset[str]:
    """A title's words, as matching compares them: accents, case, apostrophes, filler words and spelling aside."""
    plain = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().casefold()
    plain = plain.replace("'", "").replace("-", " ").replace(".", "")  # Levi's = Levis, Dr. = Dr
    for phrase, word in _PHRASES:
        plain = phrase.sub(word, plain)
    words = (_SYNONYMS.get(word, word) for word in _WORD.findall(plain))
    return frozenset(word for word in words if word not in _FILLER)


def title_similarity(a: str, b: str) -> float:
    """Jaccard's index of the two titles' words (1: the same words)."""
    first, second = tokens(a), tokens(b)
    if not first or not second:
        return 0.0
    return len(first & second) / len(first | second)


def same_price(a: str, b: str) -> bool:
    try:
        first, second = Decimal(a), Decimal(b)
    except InvalidOperation:
        return False
    return abs(first - second) <= PRICE_TOLERANCE * max(first, second)


def score(listing: Listing, candidate: Candidate) -> float:
    """How sure crosslist is that the listing is the candidate product (0..1)."""
    return _score(listing, tokens(listing.title), candidate, tokens(candidate.title))


def _score(listing: Listing, words: frozenset[str], candidate: Candidate, its_words: frozenset[str]) -> float:
    for mine, theirs in (
        (listing.size, candidate.size),
        (listing.color, candidate.color),
        (listing.brand, candidate.brand),
    ):
        if mine and theirs and tokens(mine) != tokens(theirs):
            return 0.0  # another size, colour or brand: another item, however close the title
    if not words or not its_words:
        return 0.0
    sizes, its_sizes = _sizes(words), _sizes(its_words)
    if sizes and its_sizes and sizes != its_sizes:
        return 0.0  # the titles name different sizes
    colours, its_colours = _colours(words), _colours(its_words)
    if colours and its_colours and not colours & its_colours:
        return 0.0  # the titles name different colours
    similarity = len(words & its_words) / len(words | its_words)
    return similarity if same_price(listing.price, candidate.price) else similarity * OTHER_PRICE_FACTOR


# Colours a title may name: two listings whose titles name colours, none in common, are two items.
_COLOURS = frozenset(
    " ".join(
        (
            "black white grey navy blue red green beige brown pink khaki cream yellow orange purple burgundy olive",
            "tan camel ivory silver gold teal turquoise lilac maroon mustard charcoal",
        )
    ).split(" ")
)


def _colours(words: frozenset[str]) -> frozenset[str]:
    return words & _COLOURS


def _sizes(words: frozenset[str]) -> frozenset[str]:
    return frozenset(word for word in words if _SIZE.match(word))


class Matcher:
    """Matches listings against one set of candidates (a page's worth of listings against the seller's products:
    each product's words are worked out once, and only products sharing a word with the listing are scored)."""

    def __init__(self, candidates: list[Candidate]) -> None:
        self._candidates = list(candidates)
        self._words = [tokens(candidate.title) for candidate in self._candidates]
        self._by_word: dict[str, list[int]] = {}
        for index, words in enumerate(self._words):
            for word in words:
                self._by_word.setdefault(word, []).append(index)

    def remove(self, product_id: str) -> None:
        """The product now has a listing on this marketplace: no other listing there may be it."""
        for index, candidate in enumerate(self._candidates):
            if candidate.product_id == product_id:
                self._words[index] = frozenset()

    def match(self, listing: Listing) -> Match:
        """The listing's product among the candidates (the seller's products not listed on its marketplace yet)."""
        live = [index for index, words in enumerate(self._words) if words or self._candidates[index].sku]
        if listing.sku:
            if listing.sku.startswith(SKU_PREFIX):
                own = listing.sku.removeprefix(SKU_PREFIX)
                if any(self._candidates[index].product_id == own for index in live):
                    return Match("link", own, 1.0, "crosslist_sku")
            same_sku = [index for index in live if self._candidates[index].sku == listing.sku]
            if len(same_sku) == 1:
                return Match("link", self._candidates[same_sku[0]].product_id, 1.0, "sku")
        words = tokens(listing.title)
        near = {index for word in words for index in self._by_word.get(word, ()) if self._words[index]}
        candidates = self._candidates
        scored = [(_score(listing, words, candidates[i], self._words[i]), candidates[i].product_id) for i in near]
        ranked = sorted(scored, key=lambda pair: (-pair[0], pair[1]))
        if not ranked or ranked[0][0] < PROPOSE:
            return Match("new", None, round(ranked[0][0], 3) if ranked else 0.0, "no_match")
        best, product_id = ranked[0]
        if best >= LINK and not (len(ranked) > 1 and ranked[1][0] >= LINK):
            return Match("link", product_id, round(best, 3), "title_price")
        # Unsure, or two products both close enough to be it: the user decides.
        return Match("propose", product_id, round(best, 3), "ambiguous" if best >= LINK else "title_price")


def match(listing: Listing, candidates: list[Candidate]) -> Match:
    """The listing's product among `candidates` (see Matcher.match)."""
    return Matcher(candidates).match(listing)
