"""pd_pipeline: Paper Dynasty card images as Dagster assets.

Importing the package builds nothing: the code location is `pd_pipeline.definitions`. `defs` is
also reachable here, built on first access, so `dagster ... -m pd_pipeline` keeps working.
"""


def __getattr__(name: str):
    if name == "defs":
        from pd_pipeline.definitions import defs

        return defs
    raise AttributeError(f"module 'pd_pipeline' has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*globals(), "defs"]
