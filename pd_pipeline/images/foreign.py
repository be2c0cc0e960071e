"""URLs the pipeline did not make: confirm the object a row's own URL names, so that it can be
kept (adopted) until the card's data changes.

A URL in the store is confirmed there (exists, an image of the card's size: a PNG, or an APNG for
the animated image). One outside it is, as PD_ADOPT_OUTSIDE says: `render`ed again (the default:
nothing vouches for it), checked over `http` (`images.fetch`: from an allowed host, a 200 answer
with a PNG of the card's size; animated images outside the store are rendered), or `trust`ed as
it is.
"""

from dataclasses import dataclass

from pd_pipeline.images import fetch
from pd_pipeline.images.objects import VERIFY
from pd_pipeline.images.plan import Work
from pd_pipeline.images.state import Policy
from pd_pipeline.model import Image
from pd_pipeline.render.png import InvalidPng, verify_png
from pd_pipeline.storage.keys import key_of_url, public_url
from pd_pipeline.storage.stores import ObjectStore, StoredObject, content_type


@dataclass(frozen=True)
class ForeignCheck:
    ours: StoredObject | None = None  # the URL is the canonical one of our own current object
    size: int | None = None  # bytes of the adopted object
    problem: str | None = None  # why it cannot be adopted (the card is rendered instead)
    rule: str | None = None  # the rule that refused it, in a word or two (for summaries)


def confirm(store: ObjectStore, work: Work, policy: Policy) -> ForeignCheck:
    """Whether the object behind the card's own URL can be adopted (or is our own)."""
    url = work.card.url(work.image)
    key = key_of_url(store.public_base_url, url)
    if key is None:
        if work.image is Image.ANIMATED and policy.adopt_outside == "http":
            problem = f"{fetch.shown(url)} is outside the store (animated images are not fetched)"
            return ForeignCheck(problem=problem, rule="outside the store")
        return _confirm_outside(url, store, policy)
    head = store.head(key)
    if head is None:
        return ForeignCheck(problem=f"its object {key} does not exist", rule="missing")
    ours = head.sha256 and url == public_url(store.public_base_url, key, head.sha256)
    if ours and head.input_hash == work.digest:
        return ForeignCheck(ours=head)
    if head.content_type != content_type(key):
        return ForeignCheck(problem=f"its object {key} has Content-Type {head.content_type!r}",
                            rule="content type")  # fmt: skip
    try:
        VERIFY[work.image](store.get(key))
    except InvalidPng as e:
        return ForeignCheck(
            problem=f"its object {key}: {e}", rule=f"not a card {work.image.upper()}"
        )
    return ForeignCheck(size=head.size)


def _confirm_outside(url: str, store: ObjectStore, policy: Policy) -> ForeignCheck:
    if policy.adopt_outside == "trust":
        return ForeignCheck()
    if policy.adopt_outside != "http":
        return ForeignCheck(problem=f"{fetch.shown(url)} is outside the store {store.describe()} "
                            "(PD_ADOPT_OUTSIDE=http or trust adopts such URLs)",
                            rule="outside the store")  # fmt: skip
    try:
        data = fetch.fetch_png(url, policy.http_hosts)
        verify_png(data)
    except fetch.Refused as e:
        return ForeignCheck(problem=str(e), rule=e.rule)
    except InvalidPng as e:
        return ForeignCheck(problem=f"{fetch.shown(url)}: {e}", rule="not a card PNG")
    return ForeignCheck(size=len(data))
