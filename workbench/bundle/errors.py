"""Errors raised while saving, checking and loading bundles (defined in :mod:`workbench.errors`).

>>> from workbench.bundle import BundleError
>>> issubclass(CaptureError, BundleError) and issubclass(IntegrityError, BundleError)
True
"""

from __future__ import annotations

from ..errors import BundleError, BundleWarning, CaptureError, CheckError, IntegrityError

__all__ = ["BundleError", "CaptureError", "IntegrityError", "CheckError", "BundleWarning"]
