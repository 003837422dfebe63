"""Errors raised while saving, checking and loading bundles.

>>> from workbench.bundle import BundleError
>>> issubclass(CaptureError, BundleError) and issubclass(IntegrityError, BundleError)
True
"""

from __future__ import annotations

__all__ = ["BundleError", "CaptureError", "IntegrityError", "CheckError", "BundleWarning"]


class BundleError(Exception):
    """Base of every bundle error."""


class CaptureError(BundleError):
    """``save`` cannot guarantee that the bundle computes what the live pipeline computes.

    The message names the object, where it was defined, and the chain of references that led to it.
    """


class IntegrityError(BundleError):
    """``load``/``info`` found a missing, truncated, edited or unexpected file in a bundle."""


class CheckError(BundleError):
    """``save(..., check=[...])``: the reloaded bundle computed something different on an input."""


class BundleWarning(UserWarning):
    """Something about a bundle worth knowing that is not an error: leftovers of interrupted saves
    cleaned up, a bundle written by another Python version."""
