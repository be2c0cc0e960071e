"""Object keys, partition keys and the URLs written back: the naming production relies on."""

import re

PARTITION_PREFIX = "cardset-"
_PARTITION_RE = re.compile(r"^cardset-(\d{3,})$")
TOKEN_LENGTH = 10


def partition_key(cardset_id: int) -> str:
    """`cardset-012` for cardset 12 (ids past 999 keep all their digits: `cardset-1000`)."""
    return f"{PARTITION_PREFIX}{cardset_id:03d}"


def cardset_id_of(partition: str) -> int:
    """The cardset id a partition key names; a clear error for anything else."""
    match = _PARTITION_RE.match(partition)
    if not match:
        raise ValueError(
            f"{partition!r} is not a cardset partition key (expected e.g. cardset-012)"
        )
    return int(match.group(1))


def object_key(
    card_type: str, cardset_id: int, player_id: int, variant: int, image: str = "png"
) -> str:
    """`cards/cardset-012/player-6557/v415156387/battingcard.png` (`.apng` for the animated)."""
    return f"cards/{partition_key(cardset_id)}/player-{player_id}/v{variant}/{card_type}.{image}"


def token(png_sha256: str) -> str:
    """Cache-busting token: changes exactly when the PNG bytes change."""
    return png_sha256[:TOKEN_LENGTH]


def public_url(public_base_url: str, key: str, png_sha256: str) -> str:
    return f"{public_base_url.rstrip('/')}/{key}?d={token(png_sha256)}"


def key_of_url(public_base_url: str, url: str) -> str | None:
    """The object key a URL of this store names (its query left out), or None for a URL
    elsewhere."""
    base = public_base_url.rstrip("/") + "/"
    if not url.startswith(base):
        return None
    return url[len(base) :].partition("?")[0] or None
