from setuptools import setup

# Everything lives in pyproject.toml; this file keeps `pip install -e .` working on old tooling.
setup()
