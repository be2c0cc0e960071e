from collections.abc import Mapping, Sequence

import dagster as dg

# One partition per cardset, keyed `cardset-012`; sensors and render_pending_job add new ones.
cardsets = dg.DynamicPartitionsDefinition(name="cardsets")


def covered(tags: Mapping[str, str], keys: Sequence[str]) -> list[str]:
    """The cardsets a run covers, from its tags: one partition, or a backfill's range of them."""
    if "dagster/partition" in tags:
        return [tags["dagster/partition"]]
    first = tags.get("dagster/asset_partition_range_start")
    last = tags.get("dagster/asset_partition_range_end")
    if first in keys and last in keys:
        return list(keys[keys.index(first) : keys.index(last) + 1])
    return []
