"""The error of a design that cannot make cards (its own module: pages.py and animation.py raise
it, and pages.py uses animation.py)."""


class DesignError(ValueError):
    """A design that cannot make cards; the message names the file (and line) to fix."""
