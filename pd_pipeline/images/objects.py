"""Whether the object behind a card's URL is what the URL promises: the rules the checks and the
nightly reconcile apply. `listed_problem` judges a card from a listing of its cardset's folder
(cheap: a request per 1,000 objects); `object_problem` reads the object itself."""

import hashlib

from pd_pipeline.db.ledger import Entry
from pd_pipeline.images import state
from pd_pipeline.model import Card
from pd_pipeline.render.png import InvalidPng, verify_png
from pd_pipeline.storage.keys import key_of_url, token
from pd_pipeline.storage.stores import PNG, Listed, ObjectStore


def listed_problem(
    card: Card, entry: Entry | None, listing: dict[str, Listed], public_base_url: str
) -> str | None:
    """Why a listing shows the object behind the card's URL is not the one the pipeline stored
    or adopted (None when it may be: only reading it tells more)."""
    key = key_of_url(public_base_url, card.image_url)
    if key is None:
        return "URL points outside the store"
    item = listing.get(key)
    if item is None:
        return f"object {key} does not exist"
    if entry is None or entry.status == state.ADOPTED or entry.object_key != key:
        return None
    if entry.png_bytes is not None and item.size != entry.png_bytes:
        return f"object {key} is {item.size} bytes, the pipeline stored {entry.png_bytes}"
    if entry.png_md5 and item.md5 and item.md5 != entry.png_md5:
        return f"object {key} holds other bytes than the pipeline stored (ETag {item.md5})"
    return None


def object_problem(store: ObjectStore, card: Card, entry: Entry | None) -> str | None:
    """Why the object behind the card's URL is not a valid card PNG matching its URL (None when
    it is, or when the card has no URL). Our objects must hold the bytes the URL's token names
    and carry our metadata; an adopted one must be a PNG of the card's size."""
    if card.image_url is None:
        return None
    key = key_of_url(store.public_base_url, card.image_url)
    if key is None:
        return "URL points outside the store"
    try:
        head = store.head(key)
        if head is None:
            return f"object {key} does not exist"
        if head.content_type != PNG:
            return f"object {key} has Content-Type {head.content_type!r}"
        data = store.get(key)
        verify_png(data)
    except InvalidPng as e:
        return f"object {key}: {e}"
    except Exception as e:
        return f"object {key} could not be read: {type(e).__name__}"
    if entry is not None and entry.status == state.ADOPTED:
        return None
    sha = hashlib.sha256(data).hexdigest()
    if card.image_url.partition("?")[2] != f"d={token(sha)}":
        return f"object {key} bytes do not match the URL's token"
    if head.sha256 != sha:
        return f"object {key} lost the pipeline's metadata"
    return None
