"""The exceptions `scimlkit.data` raises on purpose; every message says what to do next."""

from __future__ import annotations

from ..errors import ScimlkitError


class DataError(ScimlkitError):
    """Base class of every error raised by `scimlkit.data`."""


class RegistryError(DataError, ValueError):
    """A dataset declaration or registry file is malformed, or a name is registered twice."""


class UnknownDataset(DataError, KeyError):
    """No dataset of that name is registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ChecksumMismatch(DataError):
    """A file's content does not match the hash it was declared with."""

    def __init__(self, message: str, *, expected: str = "", actual: str = "") -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class DownloadError(DataError):
    """A file could not be fetched from any of its URLs."""


class TermsNotAccepted(DataError):
    """The dataset's terms (licence, citation request) have not been accepted."""


class NotInStore(DataError):
    """The dataset (or a file in it) is not in any store and may not be fetched."""


class UnsafeArchive(DataError):
    """An archive holds an entry that would escape the target folder, or is too large."""


class UnpackError(DataError):
    """An archive is corrupt or of an unsupported kind."""


class StoreError(DataError):
    """The store is unusable (not writable, corrupt metadata, ...)."""
