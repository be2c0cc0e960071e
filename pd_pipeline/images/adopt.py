"""Adopting URLs the pipeline did not make: confirm the object a row's own URL names, so that
it can be kept until the card's data changes.

A URL in the store is confirmed there (exists, a PNG of the card's size). One outside it is, as
PD_ADOPT_OUTSIDE says: `render`ed again (the default: nothing vouches for it), checked over
`http` (answers 200 with a PNG of the card's size), or `trust`ed as it is.
"""

import urllib.request
from dataclasses import dataclass

from pd_pipeline.images.plan import Work
from pd_pipeline.render.png import InvalidPng, verify_png
from pd_pipeline.storage.keys import key_of_url, public_url
from pd_pipeline.storage.stores import PNG, ObjectStore, StoredObject

OUTSIDE = ("render", "http", "trust")  # what PD_ADOPT_OUTSIDE may say
HTTP_TIMEOUT_S = 15
MAX_BYTES = 8_000_000  # a card PNG is ~200 KB: anything far larger is not one


@dataclass(frozen=True)
class Outcome:
    ours: StoredObject | None = None  # the URL is the canonical one of our own current object
    size: int | None = None  # bytes of the adopted object
    problem: str | None = None  # why it cannot be adopted (the card is rendered instead)


def confirm(store: ObjectStore, work: Work, outside: str = "render") -> Outcome:
    url = work.card.image_url
    key = key_of_url(store.public_base_url, url)
    if key is None:
        return _confirm_outside(url, store, outside)
    head = store.head(key)
    if head is None:
        return Outcome(problem=f"its object {key} does not exist")
    ours = head.sha256 and url == public_url(store.public_base_url, key, head.sha256)
    if ours and head.input_hash == work.digest:
        return Outcome(ours=head)
    if head.content_type != PNG:
        return Outcome(problem=f"its object {key} has Content-Type {head.content_type!r}")
    try:
        verify_png(store.get(key))
    except InvalidPng as e:
        return Outcome(problem=f"its object {key}: {e}")
    return Outcome(size=head.size)


def _confirm_outside(url: str, store: ObjectStore, outside: str) -> Outcome:
    if outside == "trust":
        return Outcome()
    if outside != "http":
        return Outcome(problem=f"{url} is outside the store {store.describe()} "
                       "(PD_ADOPT_OUTSIDE=http or trust adopts such URLs)")  # fmt: skip
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
            kind = response.headers.get_content_type()
            data = response.read(MAX_BYTES + 1)
    except Exception as e:  # unreachable, refused, 4xx/5xx: not adoptable, rendered instead
        return Outcome(problem=f"{url} could not be fetched: {type(e).__name__}: {e}")
    if kind != PNG:
        return Outcome(problem=f"{url} answers Content-Type {kind!r}")
    try:
        verify_png(data)
    except InvalidPng as e:
        return Outcome(problem=f"{url}: {e}")
    return Outcome(size=len(data))
