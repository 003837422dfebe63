"""Every exception and warning workbench raises on purpose, in one place to import them from.

Bundles (``save``, ``load``, ``workbench info``): :class:`BundleError` and its subclasses
:class:`CaptureError`, :class:`IntegrityError`, :class:`CheckError`; the warnings
:class:`BundleWarning`, :class:`LargeDataWarning`, :class:`HomePathWarning`. Serving:
:class:`LoadFailed`. Notebook export (``workbench export``): :class:`ExportError` and its subclasses
:class:`NotebookFailed`, :class:`PipelineNotFound`, :class:`SaveFailed`. Predicting from the
command line or Ray (``workbench predict``): :class:`InputError`, :class:`EncodeError`,
:class:`NamesError`. Errors of a step while a pipeline runs are the step's own exception, with a
note naming the step and the item.

The modules that raise them import them from here, so ``workbench.bundle.CaptureError`` and
``workbench.errors.CaptureError`` are the same class; the bundle errors and :class:`LoadFailed`
are also at the top level (``workbench.CaptureError``).

>>> import warnings, workbench
>>> issubclass(workbench.errors.CaptureError, workbench.errors.BundleError)
True
>>> warnings.simplefilter("ignore", workbench.errors.LargeDataWarning)  # store large globals quietly
"""

from __future__ import annotations

__all__ = [
    "BundleError",
    "CaptureError",
    "IntegrityError",
    "CheckError",
    "BundleWarning",
    "LargeDataWarning",
    "HomePathWarning",
    "LoadFailed",
    "ExportError",
    "NotebookFailed",
    "PipelineNotFound",
    "SaveFailed",
    "InputError",
    "EncodeError",
    "NamesError",
]


# --- bundles -------------------------------------------------------------------------------------


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


class LargeDataWarning(UserWarning):
    """A global value above ``max_data_bytes`` goes into a bundle (name, reading step and size in the message)."""


class HomePathWarning(UserWarning):
    """A string the pipeline holds as data contains a path in the author's home directory.

    The bundle must store it (the code may use it), so it says so rather than hide or rewrite it.
    """


# --- serving -------------------------------------------------------------------------------------


class LoadFailed(RuntimeError):
    """The pipeline could not be loaded or failed its warm-up; the server did not start serving."""


# --- notebook export -----------------------------------------------------------------------------


class ExportError(Exception):
    """Base of the errors ``workbench.export.export_notebook`` raises after the notebook started running."""


class NotebookFailed(ExportError):
    """A cell raised, timed out, or the kernel died; ``cell`` is the 1-based position in the notebook."""

    def __init__(self, message: str, *, cell: int | None = None, first_line: str = "",
                 error_type: str = "", error_message: str = "", traceback: str = ""):
        super().__init__(message)
        self.cell = cell
        self.first_line = first_line
        self.error_type = error_type
        self.error_message = error_message
        self.traceback = traceback


class PipelineNotFound(ExportError, LookupError):
    """No registered pipeline and no pipeline variable of that name.

    Raised by ``workbench export`` after the notebook ran, and by ``workbench.registry.lookup``
    (which the ``%wb_save``/``%wb_deps`` magics show as a usage error). ``registered`` and
    ``variables`` list what does exist.
    """

    def __init__(self, message: str, *, registered: list[str], variables: list[str]):
        super().__init__(message)
        self.registered = registered
        self.variables = variables


class SaveFailed(ExportError):
    """``save`` raised in the kernel (it refused to capture something, or the check failed)."""

    def __init__(self, message: str, *, error_type: str = "", traceback: str = ""):
        super().__init__(message)
        self.error_type = error_type
        self.traceback = traceback


# --- predicting from the command line ------------------------------------------------------------


class InputError(ValueError):
    """An input could not be read or decoded; the message names the argument or the file and line."""


class EncodeError(TypeError):
    """An output cannot be written as JSON; the message names the type and its place in the output."""


class NamesError(ValueError):
    """An output cannot be given class names (``--names``); the message names the input and the output."""
