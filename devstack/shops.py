"""A reseller's whole shop on eBay, Etsy and Vinted, seeded into the fakes so that imports have something real to
read: second-hand clothes listed on one, two or all three marketplaces, and the truth of which listings are the
same physical item.

    shops = generate_shops(7)                    # the same shops for the same seed, every time
    seeded = seed_all(shops, ebay=fake_ebay, etsy=fake_etsy, vinted=simulator, account="dev")
    seeded.truth                                 # [{"ebay": listingId, "etsy": listing_id, "vinted": item id}, …]
    score(seeded.truth, groups_the_import_made)  # precision and recall over matched pairs
    seeded.notes["reworded"]                     # the harder pairs, to score apart (and "rephotographed", …)

What makes matching hard, as in real shops: an item on two marketplaces shares the seller's SKU (eBay inventory SKU
== Etsy product sku) only sometimes; otherwise its titles differ a little (word order, case, punctuation, an extra
word, an abbreviation) at the same price or within 1 %; ~15 % of those are reworded instead, at the same price: the
brand, colour and size stay, the rest is other words (title_similarity 0.3 to 0.6), too far for the title alone to
match, so the photos must. An item's photos are the same pictures under each marketplace's URLs: each re-hosts the
seller's upload (another size, re-compressed: `devstack.images`), except on ~20 % of an item's listings on its
second or third marketplace, photographed again there (other pictures). Distractors are another size or colour of
the same model at the same price (one token apart): never the same item; a third of them show the original's first
photo (one stock picture for two sizes), so only their titles tell them apart. Some listings crosslist cannot
represent: eBay item groups and Etsy listings with variations. ~1/5 of the eBay listings were made on ebay.com,
outside the Inventory API (only the Sell Feed report and the Browse API see them). Every price is in EUR.

Listings carry a generator key ("ebay-7-0042"): the fakes hand out the marketplace ids when seeded (`seed_shop`,
`seed_wardrobe`), and answer which id each key got; `external` turns key groups into id groups.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from random import Random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devstack.fake_ebay import FakeEbay
    from devstack.fake_etsy import FakeEtsy
    from devstack.plugin import VintedSimulator

MARKETPLACES = ("ebay", "etsy", "vinted")
# Stable https URLs of the items' photos, `{PHOTO_BASE}/{picture}.png` where the picture was uploaded first and that
# marketplace's re-hosted copy elsewhere (`{picture}.jpg?w=96`); the devstack passes its own image server
# (`.../__devstack/images`) so that they resolve locally.
PHOTO_BASE = "https://images.crosslist.test/demo"
REHOSTED_WIDTH = {"ebay": 96, "etsy": 80, "vinted": 72}  # each marketplace's copies of a seller's photos (pixels)
CURRENCY = "EUR"
# The full shops' sizes, and `--small`'s.
FULL = {"ebay": 500, "ebay_outside": 100, "etsy": 200, "vinted": 300}
SMALL = {"ebay": 50, "ebay_outside": 10, "etsy": 20, "vinted": 30}
# At the full size: items on two marketplaces, on all three, distractors, and listings with variations.
_PAIRS, _TRIPLES, _DISTRACTORS = 120, 40, 30
_EBAY_GROUPS, _EBAY_OUTSIDE_VARIATIONS, _ETSY_VARIATIONS = 10, 3, 8
_REWORDED, _REPHOTOGRAPHED = 0.15, 0.2  # of the close titles shown; of the listings after an item's first
_STOCK_PHOTO_EVERY = 3  # every third distractor shows the original's first photo (one stock picture, two sizes)
REWORDED_SIMILARITY = (0.3, 0.6)  # a reworded title's title_similarity to the item's: at least, less than

ETSY_STATES = ("active", "inactive", "sold_out", "draft", "expired")
VINTED_STATES = ("active", "sold", "hidden", "reserved", "draft")


# What the shops hold -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variation:
    """One variation of a listing with variations (by size)."""

    sku: str | None  # None: the seller gave it none
    size: str
    price: str  # EUR, "27.90"
    quantity: int


@dataclass(frozen=True)
class EbayListing:
    key: str  # the generator's ("ebay-7-0042"); the fake hands out the listingId
    item: int  # the physical item's number: listings of one item on several marketplaces share it
    title: str
    description: str
    price: str  # EUR; with variations, the lowest
    quantity: int  # with variations, their sum
    condition: str  # eBay's ConditionEnum
    category_id: str
    brand: str
    colour: str
    size: str  # "" with variations
    photos: tuple[str, ...]
    sku: str | None  # None: made on ebay.com without an SKU (cannot be migrated)
    inventory_api: bool  # False: made on ebay.com, invisible to the Inventory API until migrated
    group: str | None = None  # the inventory item group's key (an Inventory API listing with variations)
    variations: tuple[Variation, ...] = ()
    currency: str = CURRENCY


@dataclass(frozen=True)
class EtsyListing:
    key: str
    item: int
    title: str
    description: str
    price: str  # with variations, the lowest
    quantity: int  # with variations, their sum
    state: str  # one of ETSY_STATES
    sku: str | None  # the (single) product's sku; None: none
    photos: tuple[str, ...]
    taxonomy_id: int
    tags: tuple[str, ...]
    when_made: str
    brand: str
    colour: str
    size: str  # "" with variations
    age_days: int  # how long ago it was first listed
    variations: tuple[Variation, ...] = ()
    currency: str = CURRENCY


@dataclass(frozen=True)
class VintedItem:
    key: str
    item: int
    title: str
    description: str
    price: str
    brand: str
    size: str
    colour: str
    status: str  # the condition as Vinted writes it ("Very good")
    status_id: int
    catalog_id: int
    photos: tuple[str, ...]
    state: str  # one of VINTED_STATES
    currency: str = CURRENCY


@dataclass(frozen=True)
class Shops:
    seed: int
    ebay: list[EbayListing]
    etsy: list[EtsyListing]
    vinted: list[VintedItem]
    # The listings (by generator key) that are one physical item: {"ebay": key, "etsy": key, "vinted": key}, 2 or 3
    # marketplaces each, whatever the listings' states.
    truth: list[dict[str, str]]
    # Pairs of listings on two marketplaces that look alike (one token apart, the same price) but are two items.
    distractors: list[dict[str, str]]
    # Pairs of listings harder to match than most, in the same shape, so that a bench can score them apart: "reworded"
    # and "rephotographed" (truth pairs: a reworded title, other pictures on one side), "stock_photo_distractors"
    # (distractor pairs that show the same first picture).
    notes: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        outside = sum(not listing.inventory_api for listing in self.ebay)
        return {
            "ebay": len(self.ebay),
            "ebay_outside": outside,
            "etsy": len(self.etsy),
            "vinted": len(self.vinted),
            "on_two": sum(len(group) == 2 for group in self.truth),
            "on_three": sum(len(group) == 3 for group in self.truth),
            "distractors": len(self.distractors),
        }


@dataclass(frozen=True)
class Seeded:
    """What seeding gave: each listing's marketplace id, and the truth, distractors and notes in those ids."""

    ids: dict[str, dict[str, str]]  # marketplace -> generator key -> its id there
    truth: list[dict[str, str]]
    distractors: list[dict[str, str]]
    notes: dict[str, list[dict[str, str]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Score:
    precision: float  # of the pairs found, how many are the same item (1.0 when none were found)
    recall: float  # of the true pairs, how many were found (1.0 when there are none)
    true_pairs: int
    found_pairs: int
    right_pairs: int


# The catalogue ---------------------------------------------------------------------------------------------

_WAIST = ("W28 L32", "W30 L32", "W32 L32", "W34 L32", "W36 L32", "W32 L34")
_LETTERS = ("XS", "S", "M", "L", "XL")
_SHOES = ("EU 37", "EU 38", "EU 39", "EU 40", "EU 41", "EU 42", "EU 43", "EU 44")
_DRESS = ("UK 6", "UK 8", "UK 10", "UK 12", "UK 14")
_ONE = ("One size",)


@dataclass(frozen=True)
class _Model:
    brand: str
    name: str
    prefix: str  # of the seller's SKUs
    sizes: tuple[str, ...]
    low: int  # EUR
    high: int
    ebay_category: str
    etsy_taxonomy: int
    vinted_catalog: int


_MODELS = (
    _Model("Levi's", "501 jeans", "JEANS", _WAIST, 18, 70, "11483", 429, 1839),
    _Model("Levi's", "trucker jacket", "JACKET", _LETTERS, 25, 90, "57988", 448, 1907),
    _Model("Wrangler", "bootcut jeans", "JEANS", _WAIST, 12, 45, "11483", 429, 1839),
    _Model("Diesel", "denim jacket", "JACKET", _LETTERS, 25, 95, "57988", 448, 1907),
    _Model("Nike", "Air Max 90 trainers", "SHOES", _SHOES, 30, 140, "15709", 1176, 1242),
    _Model("Adidas", "Gazelle trainers", "SHOES", _SHOES, 25, 95, "15709", 1176, 1242),
    _Model("Converse", "Chuck Taylor sneakers", "SHOES", _SHOES, 15, 55, "15709", 1176, 1242),
    _Model("Dr. Martens", "1460 boots", "BOOTS", _SHOES, 40, 160, "53557", 1176, 1242),
    _Model("Zara", "wool coat", "COAT", _LETTERS, 20, 80, "63862", 448, 1907),
    _Model("Burberry", "trench coat", "COAT", _LETTERS, 90, 300, "63862", 448, 1907),
    _Model("Barbour", "wax jacket", "JACKET", _LETTERS, 60, 220, "57988", 448, 1907),
    _Model("The North Face", "puffer jacket", "JACKET", _LETTERS, 50, 190, "57988", 448, 1907),
    _Model("Patagonia", "fleece jacket", "FLEECE", _LETTERS, 35, 120, "57988", 448, 1907),
    _Model("Ralph Lauren", "polo shirt", "POLO", _LETTERS, 15, 60, "15687", 449, 560),
    _Model("Lacoste", "polo shirt", "POLO", _LETTERS, 15, 55, "15687", 449, 560),
    _Model("Tommy Hilfiger", "hoodie", "HOODIE", _LETTERS, 15, 60, "155183", 449, 560),
    _Model("Champion", "sweatshirt", "SWEAT", _LETTERS, 10, 45, "155183", 449, 560),
    _Model("Stone Island", "crewneck sweatshirt", "SWEAT", _LETTERS, 60, 220, "155183", 449, 560),
    _Model("Uniqlo", "cashmere jumper", "KNIT", _LETTERS, 20, 70, "11484", 449, 560),
    _Model("Massimo Dutti", "linen shirt", "SHIRT", _LETTERS, 12, 50, "57990", 449, 560),
    _Model("H&M", "summer dress", "DRESS", _DRESS, 5, 25, "63861", 1833, 10),
    _Model("Mango", "silk blouse", "BLOUSE", _DRESS, 10, 45, "53159", 1833, 10),
    _Model("COS", "midi skirt", "SKIRT", _DRESS, 12, 55, "63864", 1833, 10),
    _Model("Carhartt", "beanie", "HAT", _ONE, 8, 25, "52365", 1907, 86),
    _Model("Fjallraven", "Kanken backpack", "BAG", _ONE, 25, 70, "169291", 1906, 94),
    _Model("Longchamp", "Le Pliage tote bag", "BAG", _ONE, 35, 110, "169291", 1906, 94),
    _Model("Birkenstock", "Arizona sandals", "SHOES", _SHOES, 20, 70, "62107", 1176, 1242),
    _Model("Vans", "Old Skool trainers", "SHOES", _SHOES, 15, 50, "15709", 1176, 1242),
)
_COLOURS = ("black", "white", "grey", "navy", "blue", "red", "green", "beige", "brown", "pink", "khaki", "cream")


@dataclass(frozen=True)
class _Condition:
    words: str  # in a description
    ebay: str  # eBay's ConditionEnum
    vinted: str  # Vinted's status text
    vinted_id: int


_CONDITIONS = (
    (_Condition("new with tags", "NEW", "New with tags", 6), 8),
    (_Condition("new without tags", "NEW_OTHER", "New without tags", 1), 10),
    (_Condition("in very good condition", "USED_EXCELLENT", "Very good", 2), 45),
    (_Condition("in good condition", "USED_VERY_GOOD", "Good", 3), 30),
    (_Condition("worn, with signs of use", "USED_GOOD", "Satisfactory", 4), 7),
)
_DETAILS = (
    "Measurements in the photos.",
    "No stains or holes.",
    "Tiny mark on the cuff, see the last photo.",
    "Worn a handful of times.",
    "Washed and ready to wear.",
    "Fits true to size.",
    "Runs a little small.",
    "From a smoke-free, pet-free home.",
)
# Title changes a seller makes between marketplaces without changing the item.
_EXTRA_WORDS = ("vintage", "retro", "genuine", "classic", "y2k", "authentic")
_ABBREVIATIONS = (
    ("Levi's", "Levis"),
    ("The North Face", "TNF"),
    ("Ralph Lauren", "RL"),
    ("Dr. Martens", "Doc Martens"),
    ("Tommy Hilfiger", "Tommy"),
    ("jacket", "jkt"),
    ("trainers", "trainer"),
    ("sweatshirt", "sweat"),
    ("grey", "gry"),
    ("black", "blk"),
    ("One size", "OS"),
    ("medium", "M"),
)
# Other words for each kind of item (by SKU prefix), as a seller rewrites a title from scratch on another
# marketplace; never a colour or a size, which would rule the match out.
_REWORDINGS = {
    "JEANS": ("straight leg denim trousers", "washed denim pants", "regular fit five pocket denim"),
    "JACKET": ("zip up outerwear", "lightweight layering piece", "button front casual outerwear"),
    "SHOES": ("everyday casual footwear", "comfy walking shoes", "casual weekend shoes"),
    "BOOTS": ("leather lace up footwear", "chunky ankle shoes", "eight eye leather shoes"),
    "COAT": ("long outerwear layer", "warm winter overcoat", "belted knee length outerwear"),
    "FLEECE": ("half zip pullover", "warm outdoor layer", "soft zip up top"),
    "POLO": ("short sleeve pique top", "collared cotton tee", "golf style shirt"),
    "HOODIE": ("hooded pullover top", "cotton hooded jumper", "kangaroo pocket pullover"),
    "SWEAT": ("cotton pullover jumper", "crew neck pullover", "fleece lined jumper"),
    "KNIT": ("soft knitted sweater", "knit pullover top", "crew neck knitwear"),
    "SHIRT": ("long sleeve button up top", "breathable summer shirt", "relaxed casual top"),
    "DRESS": ("floaty sundress", "sleeveless midi frock", "casual day frock"),
    "BLOUSE": ("satin button up top", "long sleeve office top", "silky shirt top"),
    "SKIRT": ("pleated calf length skirt", "flowy mid length skirt", "high waisted flared skirt"),
    "HAT": ("knitted winter hat", "ribbed watch cap", "warm knit cap"),
    "BAG": ("canvas rucksack", "school daypack", "travel shoulder carryall"),
}
_PHOTO_COUNTS = (1, 2, 2, 3, 3, 3, 4, 5)  # how many photos an item has, each as likely


@dataclass
class _Article:
    """One physical item (internal): what its listings on each marketplace are made from."""

    number: int
    model: _Model
    colour: str
    size: str
    condition: _Condition
    price: Decimal
    quantity: int
    sku: str
    pictures: tuple[int, ...]  # its photos' picture numbers
    detail: str
    on: list[str] = field(default_factory=list)  # the marketplaces it is listed on
    sku_shared: bool = False  # the same SKU on eBay and Etsy
    reworded_on: str | None = None  # the marketplace showing its title in other words (one at most)
    rephotographed_on: set[str] = field(default_factory=set)  # the marketplaces showing other pictures of it

    @property
    def title(self) -> str:
        return f"{self.model.brand} {self.model.name} {self.colour} {self.size}"


# Generating ------------------------------------------------------------------------------------------------


def sized_shops(seed: int = 7, *, small: bool = False, image_base: str = PHOTO_BASE) -> Shops:
    """The shops of `seed` at the full size or `--small`'s."""
    sizes = SMALL if small else FULL
    return generate_shops(
        seed,
        ebay=sizes["ebay"],
        ebay_outside=sizes["ebay_outside"],
        etsy=sizes["etsy"],
        vinted=sizes["vinted"],
        image_base=image_base,
    )


def generate_shops(
    seed: int = 7,
    *,
    ebay: int = 500,
    ebay_outside: int = 100,
    etsy: int = 200,
    vinted: int = 300,
    image_base: str = PHOTO_BASE,
) -> Shops:
    """The seller's shops for `seed`: `ebay` listings (`ebay_outside` of them made on ebay.com), `etsy` and `vinted`.
    How many items are on two or three marketplaces, distractors and listings with variations scale with the
    smallest shop (120, 40, 30, 10 + 3 + 8 at the full size). ValueError when the sizes cannot hold them."""
    return _Generator(seed, image_base.rstrip("/")).shops(ebay, ebay_outside, etsy, vinted)


class _Generator:
    def __init__(self, seed: int, image_base: str) -> None:
        self.seed = seed
        self.random = Random(seed)
        self.image_base = image_base
        self.articles: list[_Article] = []
        self.titles: set[str] = set()
        self.picture_homes: dict[int, str] = {}  # picture number -> the marketplace it was uploaded to first
        self.sku_numbers: dict[str, int] = defaultdict(int)
        self.distracting: list[tuple[int, int]] = []  # (an item, another size or colour of it)
        self.stock_photo_siblings: set[int] = set()  # the distractors showing their original's first picture

    def shops(self, ebay: int, ebay_outside: int, etsy: int, vinted: int) -> Shops:
        if min(ebay, ebay_outside, etsy, vinted) < 0 or ebay_outside > ebay:
            raise ValueError("the shop sizes must be 0 or more, and ebay_outside at most ebay")
        scale = min(ebay / FULL["ebay"], etsy / FULL["etsy"], vinted / FULL["vinted"])
        triples, pairs, distractors = (round(n * scale) for n in (_TRIPLES, _PAIRS, _DISTRACTORS))
        groups, outside_variations, etsy_variations = (
            round(n * scale) for n in (_EBAY_GROUPS, _EBAY_OUTSIDE_VARIATIONS, _ETSY_VARIATIONS)
        )
        outside_variations = min(outside_variations, ebay_outside)
        ebay_etsy, ebay_vinted = round(pairs * 0.42), round(pairs * 0.38)
        room = {"ebay": ebay - groups - outside_variations, "etsy": etsy - etsy_variations, "vinted": vinted}
        for places, count in (
            (MARKETPLACES, triples),
            (("ebay", "etsy"), ebay_etsy),
            (("ebay", "vinted"), ebay_vinted),
            (("etsy", "vinted"), pairs - ebay_etsy - ebay_vinted),
        ):
            for _ in range(count):
                self._article(list(places), room)
        self._distractors(distractors, room)
        if min(room.values()) < 0:
            raise ValueError(f"the shops are too small for {pairs} pairs, {triples} triples and their distractors")
        for marketplace in MARKETPLACES:
            for _ in range(room[marketplace]):
                self._article([marketplace], room, single=True)
        for article in self.articles:  # items on eBay and Etsy: the same SKU on both, half the time
            article.sku_shared = {"ebay", "etsy"} <= set(article.on) and self.random.random() < 0.5
        ebay_listings = self._ebay_listings(ebay_outside - outside_variations)
        ebay_listings += [self._ebay_group() for _ in range(groups)]
        ebay_listings += [self._ebay_outside_variations(n == 0) for n in range(outside_variations)]
        etsy_listings = [self._etsy(article) for article in self.articles if "etsy" in article.on]
        etsy_listings += [self._etsy_variations() for _ in range(etsy_variations)]
        vinted_items = [self._vinted(article) for article in self.articles if "vinted" in article.on]
        self._without_photos(etsy_listings, vinted_items)
        shops = Shops(
            self.seed,
            self._keyed("ebay", ebay_listings),
            self._keyed("etsy", etsy_listings),
            self._keyed("vinted", vinted_items),
            [],
            [],
        )
        where = _keys_by_item(shops)
        return dataclasses.replace(
            shops, truth=_truth(where), distractors=self._distractor_pairs(where), notes=self._notes(where)
        )

    # items ---------------------------------------------------------------------------------------------

    def _article(
        self, on: list[str], room: dict[str, int], *, like: _Article | None = None, single: bool = False
    ) -> _Article:
        """A new item listed `on` those marketplaces (`like`: another size or colour of that one, same price)."""
        for marketplace in on:
            room[marketplace] -= 1
        while True:
            model = like.model if like is not None else self.random.choice(_MODELS)
            colour, size = self.random.choice(_COLOURS), self.random.choice(model.sizes)
            if like is not None:  # one token apart: the colour, or the size (another size when there are some)
                other_size = len(model.sizes) > 1 and self.random.random() < 0.5
                colour, size = (like.colour, size) if other_size else (colour, like.size)
            title = f"{model.brand} {model.name} {colour} {size}"
            if title.lower() not in self.titles:
                break
        self.titles.add(title.lower())
        condition = _weighted(self.random, _CONDITIONS)
        price = like.price if like is not None else self._price(model)
        several = single and on != ["vinted"] and self.random.random() < 0.1
        number = len(self.articles) + 1
        self.sku_numbers[model.prefix] += 1
        article = _Article(
            number,
            model,
            colour,
            size,
            condition,
            price,
            self.random.randint(2, 5) if several else 1,
            f"{model.prefix}-{self.sku_numbers[model.prefix]:04d}",
            self._pictures(self.random.choice(_PHOTO_COUNTS), on[0]),
            self.random.choice(_DETAILS),
            on,
        )
        self.articles.append(article)
        return article

    def _distractors(self, count: int, room: dict[str, int]) -> None:
        """Another size or colour of an item, at its price, on a marketplace it may also be on: half of items
        listed on several marketplaces, half of items listed on one (then both are alone)."""
        shared = [article for article in self.articles if len(article.on) > 1]
        for n in range(count):
            if n % 2 == 0 and shared:
                original = shared[(n // 2 * 7) % len(shared)]
            else:
                original = self._article([self._roomiest(room)], room)
            others = [m for m in MARKETPLACES if m not in original.on] or [
                m for m in MARKETPLACES if m != original.on[0]
            ]
            place = max(others, key=lambda marketplace: (room[marketplace], marketplace))
            sibling = self._article([place], room, like=original)
            self.distracting.append((original.number, sibling.number))
            if n % _STOCK_PHOTO_EVERY == 0:  # the seller photographed one size and shows that photo for both
                sibling.pictures = (original.pictures[0], *sibling.pictures[1:])
                self.stock_photo_siblings.add(sibling.number)

    def _roomiest(self, room: dict[str, int]) -> str:
        return max(MARKETPLACES, key=lambda marketplace: (room[marketplace], marketplace))

    def _price(self, model: _Model) -> Decimal:
        whole = self.random.randint(model.low, model.high)
        cents = self.random.choice((0, 0, 50, 90, 99))
        price = Decimal(whole) + Decimal(cents) / 100
        return min(max(price, Decimal(5)), Decimal(300)).quantize(Decimal("0.01"))

    def _pictures(self, count: int, uploaded_to: str) -> tuple[int, ...]:
        """`count` new pictures, uploaded to that marketplace first."""
        first = len(self.picture_homes) + 1
        numbers = tuple(range(first, first + count))
        self.picture_homes.update(dict.fromkeys(numbers, uploaded_to))
        return numbers

    def _photo_urls(self, pictures: tuple[int, ...], marketplace: str) -> tuple[str, ...]:
        """The pictures' URLs on `marketplace`: the upload itself where it was uploaded first, elsewhere the
        marketplace's re-hosted copy (another size, re-compressed: another URL, the same picture)."""
        return tuple(
            f"{self.image_base}/{n}.png"
            if self.picture_homes[n] == marketplace
            else f"{self.image_base}/{n}.jpg?w={REHOSTED_WIDTH[marketplace]}"
            for n in pictures
        )

    def _photos_on(self, article: _Article, marketplace: str) -> tuple[str, ...]:
        """The item's photos on `marketplace`: its pictures, or (on ~20 % of its listings after the first) new ones
        the seller took there."""
        if marketplace != article.on[0] and self._coin(_REPHOTOGRAPHED):
            article.rephotographed_on.add(marketplace)
            return self._photo_urls(self._pictures(self.random.choice(_PHOTO_COUNTS), marketplace), marketplace)
        return self._photo_urls(article.pictures, marketplace)

    # how each marketplace shows an item --------------------------------------------------------------------

    def _shown(self, article: _Article, marketplace: str) -> tuple[str, Decimal]:
        """The title and price of the item on `marketplace`: the first marketplace it is on shows them as they
        are; the others a close title (always, unless the SKU is shared) and the same price or within 1 %, or ~15 %
        of those a reworded title at the same price."""
        if marketplace == article.on[0] or (article.sku_shared and marketplace != "vinted" and self._coin(0.5)):
            return article.title, article.price
        if article.reworded_on is None and self._coin(_REWORDED):  # one marketplace at most: all pairs stay in range
            article.reworded_on = marketplace
            return self._reworded(article), article.price
        title = self._close_title(article)
        if self._coin(0.7):
            return title, article.price
        cents = int(article.price * 100)
        step = max(1, int(cents * self.random.uniform(0.2, 1.0) / 100))  # at most 1 %
        return title, (Decimal(cents + step * self.random.choice((-1, 1))) / 100).quantize(Decimal("0.01"))

    def _close_title(self, article: _Article) -> str:
        model, colour, size = article.model, article.colour, article.size
        for change in self.random.sample(("order", "case", "punctuation", "extra", "abbreviation"), 5):
            if change == "order":
                return self.random.choice(
                    (f"{colour} {model.brand} {model.name} {size}", f"{model.brand} {model.name} {size} {colour}")
                )
            if change == "case":
                return self.random.choice((article.title.lower(), article.title.upper(), article.title.title()))
            if change == "punctuation":
                return self.random.choice(
                    (
                        f"{model.brand} - {model.name}, {colour}, {size}",
                        f"{model.brand} {model.name} | {colour} | {size}",
                        f"{model.brand} {model.name} ({colour}) {size}",
                    )
                )
            if change == "extra":
                word = self.random.choice(_EXTRA_WORDS)
                return self.random.choice((f"{word.title()} {article.title}", f"{article.title} {word}"))
            found = [(long, short) for long, short in _ABBREVIATIONS if long in article.title]
            if found:
                long, short = self.random.choice(found)
                return article.title.replace(long, short, 1)
        return article.title.lower()

    def _reworded(self, article: _Article) -> str:
        """The title in other words: the brand, colour and size stay (the matcher's rules would rule another out),
        the model's name gives way to other words, but for its first word at times: about half the words are the
        item's (REWORDED_SIMILARITY, by the matcher's own measure)."""
        from crosslist.imports.matching import title_similarity  # the matcher itself: only reworded titles need it

        model, colour, size = article.model, article.colour, article.size
        lowest, below = REWORDED_SIMILARITY
        candidates = [
            title
            for phrase in _REWORDINGS[model.prefix]
            for words in (phrase, f"{model.name.split()[0]} {phrase}")
            for title in (f"{model.brand} {colour} {size} {words}", f"{model.brand} {words}, {colour}, {size}")
            if lowest <= title_similarity(article.title, title) < below
        ]
        return self.random.choice(candidates)

    def _description(self, article: _Article, marketplace: str) -> str:
        model, condition = article.model, article.condition
        if marketplace == "ebay":
            return (
                f"{model.brand} {model.name} in {article.colour}, size {article.size}, {condition.words}. "
                f"{article.detail} Posted within 2 working days."
            )
        if marketplace == "etsy":
            return (
                f"Pre-loved {model.brand} {model.name}.\n\nColour: {article.colour}\nSize: {article.size}\n"
                f"Condition: {condition.words}.\n\n{article.detail} Ships within 1-3 days."
            )
        return f"{model.name.capitalize()} by {model.brand}, {article.colour}, size {article.size}. {article.detail}"

    def _ebay_listings(self, outside: int) -> list[EbayListing]:
        """The single-item eBay listings, `outside` of them made on ebay.com (an SKU for 60 % of those, always
        for an SKU shared with Etsy)."""
        articles = [article for article in self.articles if "ebay" in article.on]
        made_outside = {article.number for article in self.random.sample(articles, min(outside, len(articles)))}
        listings = []
        for article in articles:
            title, price = self._shown(article, "ebay")
            inventory_api = article.number not in made_outside
            with_sku = inventory_api or article.sku_shared or self._coin(0.6)
            listings.append(
                EbayListing(
                    key="",
                    item=article.number,
                    title=title[:80],
                    description=self._description(article, "ebay"),
                    price=_money(price),
                    quantity=article.quantity,
                    condition=article.condition.ebay,
                    category_id=article.model.ebay_category,
                    brand=article.model.brand,
                    colour=article.colour,
                    size=article.size,
                    photos=self._photos_on(article, "ebay"),
                    sku=article.sku if with_sku else None,
                    inventory_api=inventory_api,
                )
            )
        return listings

    def _variations(self, model: _Model, prefix: str, *, with_skus: bool = True) -> tuple[Variation, ...]:
        sizes = sorted(self.random.sample(model.sizes, min(len(model.sizes), self.random.randint(2, 4))))
        price = self._price(model)
        return tuple(
            Variation(
                f"{prefix}-{size.replace(' ', '')}" if with_skus else None,
                size,
                _money(price + (Decimal(2) if n == len(sizes) - 1 and self._coin(0.3) else Decimal(0))),
                self.random.randint(1, 3),
            )
            for n, size in enumerate(sizes)
        )

    def _variation_item(self, marketplace: str) -> tuple[int, _Model, str, str, tuple[str, ...]]:
        """A listing with variations on `marketplace`: its own item number, model, colour, group SKU and photos
        (never matched)."""
        model = self.random.choice([model for model in _MODELS if len(model.sizes) > 1])
        self.articles.append(
            _Article(
                len(self.articles) + 1,
                model,
                self.random.choice(_COLOURS),
                "",
                _CONDITIONS[1][0],
                Decimal(0),
                0,
                "",
                (),
                "",
            )
        )
        article = self.articles[-1]
        self.sku_numbers[model.prefix] += 1
        group = f"{model.prefix}-{self.sku_numbers[model.prefix]:04d}"
        pictures = self._pictures(self.random.randint(2, 4), marketplace)
        return article.number, model, article.colour, group, self._photo_urls(pictures, marketplace)

    def _ebay_group(self, *, inventory_api: bool = True, with_skus: bool = True) -> EbayListing:
        number, model, colour, group, photos = self._variation_item("ebay")
        variations = self._variations(model, group, with_skus=with_skus)
        title = f"{model.brand} {model.name} {colour}, sizes {variations[0].size} to {variations[-1].size}"
        return EbayListing(
            key="",
            item=number,
            title=title[:80],
            description=f"{model.brand} {model.name} in {colour}, new without tags. Choose your size.",
            price=min((variation.price for variation in variations), key=Decimal),
            quantity=sum(variation.quantity for variation in variations),
            condition="NEW_OTHER",
            category_id=model.ebay_category,
            brand=model.brand,
            colour=colour,
            size="",
            photos=photos,
            sku=None,
            inventory_api=inventory_api,
            group=group if inventory_api else None,
            variations=variations,
        )

    def _ebay_outside_variations(self, without_skus: bool) -> EbayListing:
        return self._ebay_group(inventory_api=False, with_skus=not without_skus)

    def _etsy(self, article: _Article) -> EtsyListing:
        title, price = self._shown(article, "etsy")
        state = _weighted(self.random, (("active", 80), ("inactive", 6), ("sold_out", 5), ("draft", 5), ("expired", 4)))
        sku = article.sku if article.sku_shared or ("ebay" not in article.on and self._coin(0.3)) else None
        vintage = any(word in title.lower() for word in ("vintage", "retro", "y2k"))
        return EtsyListing(
            key="",
            item=article.number,
            title=title,
            description=self._description(article, "etsy"),
            price=_money(price),
            quantity=0 if state == "sold_out" else article.quantity,
            state=state,
            sku=sku,
            photos=self._photos_on(article, "etsy"),
            taxonomy_id=article.model.etsy_taxonomy,
            tags=_tags(article.model, article.colour),
            when_made="1990s" if vintage else self.random.choice(("2010_2019", "2020_2026")),
            brand=article.model.brand,
            colour=article.colour,
            size=article.size,
            age_days=self.random.randint(1, 400),
        )

    def _etsy_variations(self) -> EtsyListing:
        number, model, colour, group, photos = self._variation_item("etsy")
        variations = self._variations(model, group)
        return EtsyListing(
            key="",
            item=number,
            title=f"{model.brand} {model.name} in {colour} - choose your size",
            description=f"{model.brand} {model.name}, {colour}, new without tags.\n\nSeveral sizes: pick yours.",
            price=min((variation.price for variation in variations), key=Decimal),
            quantity=sum(variation.quantity for variation in variations),
            state="active",
            sku=None,
            photos=photos,
            taxonomy_id=model.etsy_taxonomy,
            tags=_tags(model, colour),
            when_made="2020_2026",
            brand=model.brand,
            colour=colour,
            size="",
            age_days=self.random.randint(1, 400),
            variations=variations,
        )

    def _vinted(self, article: _Article) -> VintedItem:
        title, price = self._shown(article, "vinted")
        state = _weighted(self.random, (("active", 80), ("sold", 10), ("hidden", 4), ("reserved", 3), ("draft", 3)))
        return VintedItem(
            key="",
            item=article.number,
            title=title,
            description=self._description(article, "vinted"),
            price=_money(price),
            brand=article.model.brand,
            size=article.size,
            colour=article.colour,
            status=article.condition.vinted,
            status_id=article.condition.vinted_id,
            catalog_id=article.model.vinted_catalog,
            photos=self._photos_on(article, "vinted"),
            state=state,
        )

    def _without_photos(self, etsy: list[EtsyListing], vinted: list[VintedItem]) -> None:
        """A couple of drafts were saved before their photos: two on Etsy, one on Vinted (items on one marketplace,
        none of a distractor pair: their photos are part of the look-alike)."""
        look_alikes = {number for pair in self.distracting for number in pair}
        alone = {article.number for article in self.articles if len(article.on) == 1} - look_alikes
        etsy_alone = [n for n, listing in enumerate(etsy) if listing.item in alone and not listing.variations]
        for n in etsy_alone[:2]:
            etsy[n] = dataclasses.replace(etsy[n], photos=(), state="draft")
        vinted_alone = [n for n, item in enumerate(vinted) if item.item in alone]
        for n in vinted_alone[:1]:
            vinted[n] = dataclasses.replace(vinted[n], photos=(), state="draft")

    def _keyed[T: (EbayListing, EtsyListing, VintedItem)](self, marketplace: str, listings: list[T]) -> list[T]:
        """The listings in a shop's order (not grouped by kind), each with its key."""
        self.random.shuffle(listings)
        return [
            dataclasses.replace(listing, key=f"{marketplace}-{self.seed}-{n:04d}")
            for n, listing in enumerate(listings, 1)
        ]

    def _distractor_pairs(
        self, where: Mapping[int, Mapping[str, str]], *, stock_photo_only: bool = False
    ) -> list[dict[str, str]]:
        """The distractor pairs; `stock_photo_only`: those showing the same first picture (the sibling shows the
        original's, and the original's listing was not photographed again there)."""
        found: list[dict[str, str]] = []
        for original, sibling in self.distracting:
            if stock_photo_only and sibling not in self.stock_photo_siblings:
                continue
            for place, key in where[original].items():
                if stock_photo_only and place in self.articles[original - 1].rephotographed_on:
                    continue
                found.extend(
                    {place: key, other: other_key} for other, other_key in where[sibling].items() if other != place
                )
        return found

    def _notes(self, where: Mapping[int, Mapping[str, str]]) -> dict[str, list[dict[str, str]]]:
        """The truth pairs with a reworded title or other pictures on one side, and the distractor pairs that show
        the same first picture."""
        reworded: list[dict[str, str]] = []
        rephotographed: list[dict[str, str]] = []
        for number, places in sorted(where.items()):
            article = self.articles[number - 1]
            for one, other in itertools.combinations(places, 2):
                pair = {one: places[one], other: places[other]}
                if article.reworded_on in pair:
                    reworded.append(pair)
                if article.rephotographed_on & set(pair):
                    rephotographed.append(pair)
        return {
            "reworded": reworded,
            "rephotographed": rephotographed,
            "stock_photo_distractors": self._distractor_pairs(where, stock_photo_only=True),
        }

    def _coin(self, chance: float) -> bool:
        return self.random.random() < chance


def _weighted[T](random: Random, choices: Iterable[tuple[T, int]]) -> T:
    options = list(choices)
    return random.choices([value for value, _ in options], [weight for _, weight in options])[0]


def _money(price: Decimal) -> str:
    return str(price.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _tags(model: _Model, colour: str) -> tuple[str, ...]:
    words = [model.brand.lower(), *model.name.lower().split(), colour, "secondhand", "preloved"]
    return tuple(dict.fromkeys(word[:20] for word in words))[:13]


def _keys_by_item(shops: Shops) -> dict[int, dict[str, str]]:
    """Each item's listings: item number -> marketplace -> generator key."""
    where: dict[int, dict[str, str]] = defaultdict(dict)
    for marketplace in MARKETPLACES:
        listings: list[EbayListing] | list[EtsyListing] | list[VintedItem] = getattr(shops, marketplace)
        for listing in listings:
            where[listing.item][marketplace] = listing.key
    return where


def _truth(where: Mapping[int, dict[str, str]]) -> list[dict[str, str]]:
    return [places for _, places in sorted(where.items()) if len(places) > 1]


# Seeding and scoring ---------------------------------------------------------------------------------------


def seed_all(
    shops: Shops,
    *,
    ebay: FakeEbay | None = None,
    etsy: FakeEtsy | None = None,
    vinted: VintedSimulator | None = None,
    account: str = "dev",
) -> Seeded:
    """Seed the given fakes with `shops` (eBay and Etsy as `account`'s shop; a VintedSimulator is one account).
    The truth, distractors and notes are in the marketplaces' ids, over the fakes given only. Seeding again adds
    nothing."""
    ids: dict[str, dict[str, str]] = {}
    if ebay is not None:
        ids["ebay"] = ebay.seed_shop(account, shops.ebay)
    if etsy is not None:
        ids["etsy"] = etsy.seed_shop(account, shops.etsy)
    if vinted is not None:
        ids["vinted"] = vinted.seed_wardrobe(shops.vinted)
    notes = {name: external(groups, ids) for name, groups in shops.notes.items()}
    return Seeded(ids, external(shops.truth, ids), external(shops.distractors, ids), notes)


def external(groups: Iterable[Mapping[str, str]], ids: Mapping[str, Mapping[str, str]]) -> list[dict[str, str]]:
    """Groups of generator keys as groups of marketplace ids: marketplaces that were not seeded are left out, and
    so are the groups left with fewer than two listings."""
    found = []
    for group in groups:
        named = {place: ids[place][key] for place, key in group.items() if place in ids and key in ids[place]}
        if len(named) > 1:
            found.append(named)
    return found


def pairs(groups: Iterable[Mapping[str, str]]) -> set[frozenset[tuple[str, str]]]:
    """Every two listings a group says are one item, as {(marketplace, id), (marketplace, id)}."""
    found: set[frozenset[tuple[str, str]]] = set()
    for group in groups:
        members = sorted(group.items())
        found.update(frozenset((a, b)) for n, a in enumerate(members) for b in members[n + 1 :])
    return found


def score(truth: Iterable[Mapping[str, str]], found: Iterable[Mapping[str, str]]) -> Score:
    """Precision and recall of the matches an import `found` (groups of {marketplace: id}) against the truth, over
    pairs of listings: a group of three is three pairs."""
    expected, given = pairs(truth), pairs(found)
    right = len(expected & given)
    return Score(
        precision=right / len(given) if given else 1.0,
        recall=right / len(expected) if expected else 1.0,
        true_pairs=len(expected),
        found_pairs=len(given),
        right_pairs=right,
    )


# The devstack's control route (POST SEED_SHOP_PATH on each fake) -----------------------------------------


@dataclass(frozen=True)
class ShopRequest:
    """What `crosslist dev seed-shops` asks a fake: seed `account` with the shops of `seed`."""

    account: str
    seed: int
    small: bool
    image_base: str

    def shops(self) -> Shops:
        return sized_shops(self.seed, small=self.small, image_base=self.image_base)

    def body(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def shop_request(body: Any) -> ShopRequest | str:
    """The request a control route's JSON body makes, or what is wrong with it."""
    if not isinstance(body, dict):
        return 'send {"account": "...", "seed": 7, "small": false, "image_base": "https://..."} as JSON'
    account, seed = body.get("account", "dev"), body.get("seed", 7)
    small, image_base = body.get("small", False), body.get("image_base", PHOTO_BASE)
    if not isinstance(account, str) or not account.strip():
        return "account must be the seller's name on the fake"
    if not isinstance(seed, int) or isinstance(seed, bool):
        return "seed must be a whole number"
    if not isinstance(small, bool):
        return "small must be true or false"
    if not isinstance(image_base, str) or not image_base.startswith(("http://", "https://")):
        return "image_base must be an http(s) URL"
    return ShopRequest(account.strip(), seed, small, image_base)
