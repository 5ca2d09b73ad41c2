"""Errors raised by `scimlkit.datasets` (all derive from `scimlkit.data.DataError`)."""

from ..data.errors import DataError


class DatasetFormatError(DataError, ValueError):
    """A downloaded file does not have the layout its parser expects (truncated, wrong size, missing columns)."""


class UnknownDatasetError(DataError, KeyError):
    """A dataset, split or subset name that the catalogue does not have."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""
