"""Errors raised by the PEtab / SBML importer."""

from __future__ import annotations

try:  # the core of scimlkit.fit owns FitError
    from scimlkit.fit.errors import FitError
except ImportError:  # pragma: no cover - only while the core is being written
    from scimlkit.errors import ScimlkitError as FitError


class PEtabError(FitError):
    """A PEtab problem (YAML or tables) is malformed or refers to something that does not exist."""


class SBMLError(PEtabError):
    """An SBML model cannot be read (file missing, libsbml reported errors)."""


class UnsupportedSBMLError(SBMLError):
    """The SBML model uses constructs that scimlkit cannot translate.

    `constructs` lists every unsupported construct found (all of them, not only the first).
    """

    def __init__(self, constructs: list[str], path: str = "") -> None:
        where = f" in {path}" if path else ""
        super().__init__(
            f"unsupported SBML construct(s){where}: "
            + "; ".join(constructs)
            + ". Supported: species, compartments, parameters, reactions with kinetic laws, "
            "assignment/rate rules, initial assignments, function definitions, piecewise."
        )
        self.constructs = constructs
