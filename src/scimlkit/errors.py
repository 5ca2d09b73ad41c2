"""The root of scimlkit's exception hierarchy.

Each subpackage derives its own errors from `ScimlkitError` (`scimlkit.data.DataError`,
`scimlkit.models.ModelError`, `scimlkit.fit.FitError`), so `except ScimlkitError` catches
everything the package raises on purpose.
"""


class ScimlkitError(Exception):
    """Base class of every error scimlkit raises deliberately."""


class MissingDependencyError(ScimlkitError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str = "") -> None:
        what = f" ({purpose})" if purpose else ""
        super().__init__(
            f"{package} is required{what} but is not installed. "
            f"Install it with: pip install 'scimlkit[{extra}]'"
        )
        self.package = package
        self.extra = extra
