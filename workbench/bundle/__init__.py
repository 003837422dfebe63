"""Bundles: save a pipeline as a directory of readable source, weights and data; load it anywhere.

>>> import workbench
>>> path = workbench.save(pl, "model.wb", check=[example])  # doctest: +SKIP
>>> pl2 = workbench.load("model.wb")                           # doctest: +SKIP

See docs/bundles.md for the format and the fidelity rules. Modules: :mod:`.source` (finding the
source of functions and classes in files and notebook cells), :mod:`.scope` (global names and
renaming), :mod:`.capture` (what to write: walking the pipeline), with :mod:`.naming` (the name
each object gets), :mod:`.storage` (data stored by value), :mod:`.records` (the statements of the
source, in order), :mod:`.definitions` (functions and classes copied as source, verified by
:mod:`.codetext`), :mod:`.attributes` (only the attributes the code reads), :mod:`.objects`
(tensors, instances), :mod:`.layers` (torch layers), :mod:`.installed` (import or copy),
:mod:`.emit` (the source text, rendered once), :mod:`.artifacts`
(data by value), :mod:`.manifest`, :mod:`.writer` (``save``), :mod:`.placing` (the atomic move), :mod:`.snapshot`
(reading a bundle once, confined), :mod:`.reader` (``load``),
:mod:`.runtime` (what the source calls while loading).
"""

from .errors import BundleError, BundleWarning, CaptureError, CheckError, IntegrityError
from .reader import load
from .report import CaptureReport, HomePathWarning, LargeDataWarning
from .writer import capture_report, dependency_source, digest, save

__all__ = ["save", "load", "digest", "dependency_source", "capture_report", "CaptureReport", "LargeDataWarning",
           "HomePathWarning", "BundleError", "CaptureError", "IntegrityError", "CheckError", "BundleWarning"]
