"""Adopting URLs the pipeline did not make: confirm the object a row's own URL names, so that
it can be kept until the card's data changes."""

from dataclasses import dataclass

from pd_pipeline.images.plan import Work
from pd_pipeline.render.png import InvalidPng, verify_png
from pd_pipeline.storage.keys import key_of_url, public_url
from pd_pipeline.storage.stores import PNG, ObjectStore, StoredObject


@dataclass(frozen=True)
class Outcome:
    ours: StoredObject | None = None  # the URL is the canonical one of our own current object
    size: int | None = None  # bytes of the adopted object
    problem: str | None = None  # why it cannot be adopted (the card is rendered instead)


def confirm(store: ObjectStore, work: Work) -> Outcome:
    url = work.card.image_url
    key = key_of_url(store.public_base_url, url)
    if key is None:
        return Outcome(problem=f"{url} is outside the store {store.describe()}")
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
