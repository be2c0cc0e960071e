"""Whether the object behind a card's URL is what the URL promises: the rules the checks and the
nightly reconcile apply. `listed_problem` judges a card from a listing of its cardset's folder
(cheap: a request per 1,000 objects); `object_problem` reads the object itself;
`verified_problem` reads only what the store cannot vouch for (by a listing or a HEAD)."""

import hashlib

import numpy as np

from pd_pipeline.db.ledger import Entry, LedgerStatus
from pd_pipeline.images.inventory import folder
from pd_pipeline.images.state import key_of
from pd_pipeline.model import Card, Image
from pd_pipeline.render.animation import Animation
from pd_pipeline.render.apng import default_image, verify_apng
from pd_pipeline.render.png import InvalidPng, decode_png, verify_png
from pd_pipeline.storage.keys import key_of_url, token
from pd_pipeline.storage.stores import Listed, ObjectStore, content_type

# What makes an object a valid card image (InvalidPng, or its subclass InvalidApng, says why).
VERIFY = {Image.STATIC: verify_png, Image.ANIMATED: verify_apng}


def listed_problem(
    card: Card,
    entry: Entry | None,
    listing: dict[str, Listed],
    public_base_url: str,
    image: Image = Image.STATIC,
) -> str | None:
    """Why a listing shows the object behind the URL of one of the card's images is not the one
    the pipeline stored or adopted (None when it may be: only reading it tells more)."""
    key, said = _named(card, entry, image, public_base_url)
    if key is None:
        return said
    if not key.startswith(folder(card.cardset_id)):
        return None  # not the card's own folder (an adopted URL): only reading it tells
    item = listing.get(key)
    if item is None:
        return f"object {key} does not exist"
    if entry is None or entry.status == LedgerStatus.KEPT or entry.object_key != key:
        return None
    if entry.png_bytes is not None and item.size != entry.png_bytes:
        return f"object {key} is {item.size} bytes, the pipeline stored {entry.png_bytes}"
    if entry.png_md5 and item.md5 and item.md5 != entry.png_md5:
        return f"object {key} holds other bytes than the pipeline stored (ETag {item.md5})"
    return None


def object_problem(
    store: ObjectStore, card: Card, entry: Entry | None, image: Image = Image.STATIC
) -> str | None:
    """Why the object behind the URL of one of the card's images is not a valid card image
    matching its URL (None when it is, or when there is no URL). Our objects must hold the bytes
    the URL's token names and carry our metadata; an adopted one must be an image of the card's
    size."""
    key, said = _named(card, entry, image, store.public_base_url)
    if key is None:
        return said
    url = card.url(image)
    try:
        head = store.head(key)
        if head is None:
            return f"object {key} does not exist"
        if head.content_type != content_type(key):
            return f"object {key} has Content-Type {head.content_type!r}"
        data = store.get(key)
        VERIFY[image](data)
    except InvalidPng as e:
        return f"object {key}: {e}"
    except Exception as e:
        return f"object {key} could not be read: {type(e).__name__}"
    if entry is not None and entry.status == LedgerStatus.KEPT:
        return None
    sha = hashlib.sha256(data).hexdigest()
    if url.partition("?")[2] != f"d={token(sha)}":
        return f"object {key} bytes do not match the URL's token"
    if head.sha256 != sha:
        return f"object {key} lost the pipeline's metadata"
    return None


def verified_problem(
    store: ObjectStore,
    card: Card,
    entry: Entry | None,
    listing: dict[str, Listed] | None = None,
    image: Image = Image.STATIC,
) -> str | None:
    """`object_problem`'s verdict, reading as little as the store allows. Where the store states
    the object's MD5 (an S3 single-part ETag, in a listing or a HEAD) and it is the one the
    ledger recorded, the bytes are ours and the HEAD confirms our metadata; any other object
    (adopted, or in a store that cannot vouch for bytes) is read."""
    if listing is not None:
        problem = listed_problem(card, entry, listing, store.public_base_url, image)
        if problem:
            return problem
    key, said = _named(card, entry, image, store.public_base_url)
    if key is None:
        return said
    url = card.url(image)
    ours = entry is not None and entry.status != LedgerStatus.KEPT and entry.object_key == key
    if not (ours and entry.png_md5):
        return object_problem(store, card, entry, image)
    try:
        head = store.head(key)
    except Exception as e:
        return f"object {key} could not be read: {type(e).__name__}"
    if head is None:
        return f"object {key} does not exist"
    stated = listing[key].md5 if listing and key in listing else head.md5
    if stated != entry.png_md5 or head.size != entry.png_bytes:
        return object_problem(store, card, entry, image)  # the store cannot vouch: read it
    if head.content_type != content_type(key):
        return f"object {key} has Content-Type {head.content_type!r}"
    if url.partition("?")[2] != f"d={token(entry.png_sha256)}":
        return f"object {key} bytes do not match the URL's token"
    if head.sha256 != entry.png_sha256:
        return f"object {key} lost the pipeline's metadata"
    return None


def _named(
    card: Card, entry: Entry | None, image: Image, public_base_url: str
) -> tuple[str | None, str | None]:
    """`(key, None)`: the key in the store that the URL of the card's image names; else
    `(None, verdict)`: what is said without reading (nothing for no URL, `_outside`'s rule)."""
    url = card.url(image)
    if url is None:
        return None, None
    key = key_of_url(public_base_url, url)
    return (key, None) if key is not None else (None, _outside(url, entry))


def _outside(url: str, entry: Entry | None) -> str | None:
    """A URL outside the store is a problem, unless it was adopted as it is (PD_ADOPT_OUTSIDE):
    then it was checked, or trusted, when it was adopted, and the store has nothing to say."""
    if entry is not None and entry.status == LedgerStatus.KEPT and entry.url == url:
        return None
    return "URL points outside the store"


def animation_problem(store: ObjectStore, card: Card, animation: Animation) -> str | None:
    """Why the card's stored APNG is not its design's animation of its static card: its frame
    count, delays and looping, and its first frame, pixel for pixel the static PNG stored for
    the same inputs (when that is not stored, only the animation is judged)."""
    key, static_key = key_of(card, Image.ANIMATED), key_of(card)
    try:
        head = store.head(key)
        if head is None:
            return None  # a missing object is `object_problem`'s to say
        data = store.get(key)
        info = verify_apng(data, frames=animation.frames)
        static = store.head(static_key)
        first = None
        if static is not None and static.input_hash == head.input_hash:
            first = store.get(static_key)
    except InvalidPng as e:
        return f"object {key}: {e}"
    except Exception as e:
        return f"object {key} could not be read: {type(e).__name__}"
    if info.plays != 0:
        return f"object {key} plays {info.plays} times, not for ever"
    if set(info.delays_ms) != {animation.delay_ms}:
        shown = ", ".join(f"{d:g}" for d in sorted(set(info.delays_ms)))
        return f"object {key} shows its frames for {shown} ms, not {animation.delay_ms}"
    if first is not None and not np.array_equal(decode_png(default_image(data)), decode_png(first)):
        return f"object {key}: its first frame is not the card's static image"
    return None
