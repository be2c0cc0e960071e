"""pd_pipeline: Paper Dynasty card images as Dagster assets."""

from pd_pipeline.definitions import defs

__all__ = ["defs"]
