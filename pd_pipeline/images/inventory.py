"""What the object store holds for a cardset: current objects a run can reuse instead of
rendering, and objects no card uses. Every store call here goes through `unavailable`, so a
store that is down stops the step with one clear error."""

import contextlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pd_pipeline.images.plan import Work
from pd_pipeline.storage.keys import partition_key
from pd_pipeline.storage.stores import (
    STORE_ERRORS,
    Listed,
    ObjectStore,
    StoredObject,
    content_type,
)

T = TypeVar("T")


class StoreUnavailable(RuntimeError):
    pass


@contextlib.contextmanager
def unavailable(store: ObjectStore) -> Iterator[None]:
    try:
        yield
    except STORE_ERRORS as e:
        raise StoreUnavailable(f"object store {store.describe()} is unavailable: {e}") from e


def folder(cardset_id: int) -> str:
    return f"cards/{partition_key(cardset_id)}/"


def listed(store: ObjectStore, cardset_id: int) -> dict[str, Listed]:
    """The cardset's objects, by key, as the store lists them."""
    with unavailable(store):
        return dict(store.list(folder(cardset_id)))


def cheaper_to_list(asked: int, cards: int) -> bool:
    """Whether one listing of a cardset's folder (1,000 keys a request) costs less than asking
    for `asked` of its `cards` objects one by one."""
    return asked > cards // 500


def each(store: ObjectStore, io: ThreadPoolExecutor, call: Callable[[Work], T], work) -> list[T]:
    """`call` on every item, on the store's threads."""
    return list(stream(store, io, call, work))


def stream(
    store: ObjectStore, io: ThreadPoolExecutor, call: Callable[[Work], T], work
) -> Iterator[T]:
    """`call` on every item, on the store's threads: the results in order, as they come."""
    results = io.map(call, work)
    while True:
        with unavailable(store):
            result = next(results, _END)
        if result is _END:
            return
        yield result


_END = object()


def find_current(
    store: ObjectStore, work: Sequence[Work], cards: int, io: ThreadPoolExecutor
) -> tuple[list[tuple[Work, StoredObject]], list[Work]]:
    """Split `work` into cards whose object of the current inputs is already stored (with the
    object) and the rest, which are marked `not_in_store`."""
    # A listing of the cardset's folder (1,000 keys a request) rules out the cards with no
    # object at all, when that is cheaper than asking for each.
    if cheaper_to_list(len(work), cards):
        present = listed(store, work[0].card.cardset_id) if work else {}
        asked = [w for w in work if w.key in present]
    else:
        asked = list(work)
    heads = dict(zip((w.key for w in asked), each(store, io, lambda w: store.head(w.key), asked),
                     strict=True))  # fmt: skip
    found, missing = [], []
    for item in work:
        head = heads.get(item.key)
        current = head and head.sha256 and head.input_hash == item.digest
        if current and head.content_type == content_type(item.key):
            found.append((item, head))
        else:
            item.not_in_store = True
            missing.append(item)
    return found, missing


def orphans(
    store: ObjectStore, card_type: str, cardset_id: int, used: set[str], image: str = "png"
) -> list[str]:
    """Objects of this card type's image in the cardset's folder that no card row uses."""
    suffix = f"/{card_type}.{image}"
    return sorted(k for k in listed(store, cardset_id) if k.endswith(suffix) and k not in used)
