"""Exceptions whose message is a complete one-line explanation for a user.

The CLI prints ``str(error)`` of any :class:`DvsstreamError` and exits with status 2;
anything else is a bug and keeps its traceback.
"""


class DvsstreamError(Exception):
    """A problem the user can act on: which file or input, what is wrong, what to do."""


class SourceError(DvsstreamError):
    """An event source cannot be opened or read (bad file, no camera, no peer)."""


class FormatError(SourceError):
    """A file is not in the format it claims, or is truncated / corrupt."""
