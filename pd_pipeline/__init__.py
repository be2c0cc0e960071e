"""pd_pipeline: Paper Dynasty card images as Dagster assets.

Importing the package builds nothing: the code location is `pd_pipeline.definitions`. It is
also reachable here as `code_location`, built on first access, so `dagster ... -m pd_pipeline`
keeps working (`pd_pipeline.defs` is the package of Dagster objects it is made from).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pd_pipeline")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"


def __getattr__(name: str):
    if name == "code_location":
        from pd_pipeline.definitions import defs

        return defs
    raise AttributeError(f"module 'pd_pipeline' has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*globals(), "code_location"]
