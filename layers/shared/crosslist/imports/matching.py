"""Is a listing read on a marketplace one of the seller's products? Surely (the same SKU), maybe (a close
title at the same price: proposed to the user), or not (a new product).

A wrong merge is the costliest mistake an import can make: the product's listings are then delisted together
when one sells. So only a certain match links on its own; anything between PROPOSE and LINK waits for the user.
Two sizes or colours of one model are two products: a size, colour or brand that differs rules a match out.
The same first photo (crosslist.imports.photos: the picture re-hosted by another marketplace) at the same price
makes a close title surer: it never overrules a size or colour, and a photo that several products show (a stock
picture) says nothing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

from crosslist.imports.photos import same_photo
from crosslist.marketplaces.rest import SKU_PREFIX

LINK = 0.9  # at least this sure: linked without asking
PROPOSE = 0.6  # at least this sure: proposed to the user; below, a new product
PRICE_TOLERANCE = Decimal("0.01")  # prices within 1 % are the same price (a marketplace's rounding, its fees)
OTHER_PRICE_FACTOR = 0.6  # a close title at another price is at most a proposal
# The same photo at the same price adds this much: a title half reworded is then proposed, a close one linked.
PHOTO_BONUS = 0.35
PHOTO_MIN_TITLE = 0.3  # a title further from the product's than this is another item, whatever the photo

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
    # The first photo's hash (a listing read; a product as one of its imported listings shows it).
    photo_hashes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Candidate(Listing):
    """One of the seller's products a listing may be: as the product is, or as a listing imported into it shows it
    (its title and photo there), several candidates naming one product."""

    product_id: str


@dataclass(frozen=True)
class Match:
    decision: Decision
    product_id: str | None  # the product linked or proposed
    confidence: float
    reason: str  # sku, crosslist_sku, title_price, title_price_photo, ambiguous, no_match


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


def _same_photo(listing: Listing, candidate: Candidate) -> bool:
    return any(same_photo(mine, theirs) for mine in listing.photo_hashes for theirs in candidate.photo_hashes)


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
            same_sku = {
                self._candidates[index].product_id for index in live if self._candidates[index].sku == listing.sku
            }
            if len(same_sku) == 1:
                return Match("link", same_sku.pop(), 1.0, "sku")
        words = tokens(listing.title)
        near = {index for word in words for index in self._by_word.get(word, ()) if self._words[index]}
        # A product may be a candidate several times (its own title, and each listing imported into it): its best.
        scores: dict[str, float] = {}
        shown: dict[str, Candidate] = {}
        pictured: set[str] = set()
        for index in near:
            candidate = self._candidates[index]
            product_id = candidate.product_id
            scores[product_id] = max(scores.get(product_id, 0.0), _score(listing, words, candidate, self._words[index]))
            shown.setdefault(product_id, candidate)
            if _same_photo(listing, candidate):
                pictured.add(product_id)
        by_photo = next(iter(pictured)) if len(pictured) == 1 else None  # a picture several products show says nothing
        if (  # the photo decides only where the title alone would not link (its reason then says so)
            by_photo is not None
            and PHOTO_MIN_TITLE <= scores[by_photo] < LINK
            and same_price(listing.price, shown[by_photo].price)
        ):
            scores[by_photo] = min(1.0, scores[by_photo] + PHOTO_BONUS)
        else:
            by_photo = None
        ranked = sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))
        if not ranked or ranked[0][1] < PROPOSE:
            return Match("new", None, round(ranked[0][1], 3) if ranked else 0.0, "no_match")
        product_id, best = ranked[0]
        how = "title_price_photo" if product_id == by_photo else "title_price"
        if best >= LINK and not (len(ranked) > 1 and ranked[1][1] >= LINK):
            return Match("link", product_id, round(best, 3), how)
        # Unsure, or two products both close enough to be it: the user decides.
        return Match("propose", product_id, round(best, 3), "ambiguous" if best >= LINK else how)


def match(listing: Listing, candidates: list[Candidate]) -> Match:
    """The listing's product among `candidates` (see Matcher.match)."""
    return Matcher(candidates).match(listing)
