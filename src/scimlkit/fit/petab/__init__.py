"""PEtab / SBML import for `scimlkit.fit`: `from_petab("problem.yaml")`."""

from scimlkit.fit.petab.errors import PEtabError as PEtabError
from scimlkit.fit.petab.errors import SBMLError as SBMLError
from scimlkit.fit.petab.errors import UnsupportedSBMLError as UnsupportedSBMLError
from scimlkit.fit.petab.problem import PEtabProblem as PEtabProblem
from scimlkit.fit.petab.problem import from_petab as from_petab
from scimlkit.fit.petab.sbml import SBMLModel as SBMLModel
from scimlkit.fit.petab.sbml import read_sbml as read_sbml

__all__ = [
    "PEtabError",
    "PEtabProblem",
    "SBMLError",
    "SBMLModel",
    "UnsupportedSBMLError",
    "from_petab",
    "read_sbml",
]
