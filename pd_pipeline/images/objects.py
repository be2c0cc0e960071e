"""Whether the object behind a card's URL is what the URL promises: the rules the checks and the
nightly reconcile apply. `listed_problem` judges a card from a listing of its cardset's folder
(cheap: a request per 1,000 objects); `object_problem` reads the object itself;
`verified_problem` reads only what the store cannot vouch for (by a listing or a HEAD)."""

import hashlib

from pd_pipeline.db.ledger import Entry
from pd_pipeline.images import state
from pd_pipeline.images.stored import folder
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
        return _outside(card, entry)
    if not key.startswith(folder(card.cardset_id)):
        return None  # not the card's own folder (an adopted URL): only reading it tells
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
        return _outside(card, entry)
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


def verified_problem(
    store: ObjectStore, card: Card, entry: Entry | None, listing: dict[str, Listed] | None = None
) -> str | None:
    """`object_problem`'s verdict, reading as little as the store allows. Where the store states
    the object's MD5 (an S3 single-part ETag, in a listing or a HEAD) and it is the one the
    ledger recorded, the bytes are ours and the HEAD confirms our metadata; any other object
    (adopted, or in a store that cannot vouch for bytes) is read."""
    if listing is not None:
        problem = listed_problem(card, entry, listing, store.public_base_url)
        if problem:
            return problem
    if card.image_url is None:
        return None
    key = key_of_url(store.public_base_url, card.image_url)
    if key is None:
        return _outside(card, entry)
    ours = entry is not None and entry.status != state.ADOPTED and entry.object_key == key
    if not (ours and entry.png_md5):
        return object_problem(store, card, entry)
    try:
        head = store.head(key)
    except Exception as e:
        return f"object {key} could not be read: {type(e).__name__}"
    if head is None:
        return f"object {key} does not exist"
    stated = listing[key].md5 if listing and key in listing else head.md5
    if stated != entry.png_md5 or head.size != entry.png_bytes:
        return object_problem(store, card, entry)  # the store cannot vouch: read it
    if head.content_type != PNG:
        return f"object {key} has Content-Type {head.content_type!r}"
    if card.image_url.partition("?")[2] != f"d={token(entry.png_sha256)}":
        return f"object {key} bytes do not match the URL's token"
    if head.sha256 != entry.png_sha256:
        return f"object {key} lost the pipeline's metadata"
    return None


def _outside(card: Card, entry: Entry | None) -> str | None:
    """A URL outside the store is a problem, unless it was adopted as it is (PD_ADOPT_OUTSIDE):
    then it was checked, or trusted, when it was adopted, and the store has nothing to say."""
    if entry is not None and entry.status == state.ADOPTED and entry.url == card.image_url:
        return None
    return "URL points outside the store"
