"""scimlkit.fit: parameter estimation for ODE models on JAX.

Importing `scimlkit.fit` turns on JAX's 64-bit mode (`jax_enable_x64`): tight ODE
tolerances and likelihood differences need float64. Import it before creating JAX arrays
you mean to mix with `fit`.

Example:
    >>> from scimlkit import fit
    >>> fit.Parameter("k", bounds=(0.1, 10), scale="log10").scale
    'log10'
"""

from . import _x64 as _x64
from . import bayes as bayes
from . import explore as explore
from . import zoo as zoo
from .bayes import sample as sample
from .engine import map_chunks as map_chunks
from .errors import EngineError as EngineError
from .errors import EstimationFailedError as EstimationFailedError
from .errors import FitError as FitError
from .errors import MethodError as MethodError
from .errors import ProblemDefinitionError as ProblemDefinitionError
from .explore import classify_outcomes as classify_outcomes
from .explore import fit_surrogate as fit_surrogate
from .explore import prediction_bands as prediction_bands
from .explore import sensitivity as sensitivity
from .explore import simulate_ensemble as simulate_ensemble
from .identifiability import Profile as Profile
from .identifiability import ProfileResult as ProfileResult
from .identifiability import Uncertainty as Uncertainty
from .identifiability import fisher as fisher
from .identifiability import profile as profile
from .methods import BFGS as BFGS
from .methods import CMAES as CMAES
from .methods import LBFGS as LBFGS
from .methods import DifferentialEvolution as DifferentialEvolution
from .methods import LevenbergMarquardt as LevenbergMarquardt
from .methods import Method as Method
from .methods import TrustRegion as TrustRegion
from .noise import Gaussian as Gaussian
from .noise import Laplace as Laplace
from .noise import LogNormal as LogNormal
from .noise import NoiseModel as NoiseModel
from .optimize import estimate as estimate
from .petab import from_petab as from_petab
from .priors import L1 as L1
from .priors import L2 as L2
from .priors import LaplacePrior as LaplacePrior
from .priors import LogNormalPrior as LogNormalPrior
from .priors import NormalPrior as NormalPrior
from .priors import Prior as Prior
from .priors import UniformPrior as UniformPrior
from .problem import Dose as Dose
from .problem import Experiment as Experiment
from .problem import Observable as Observable
from .problem import ODEModel as ODEModel
from .problem import Parameter as Parameter
from .problem import Problem as Problem
from .result import FitResult as FitResult
from .result import StartOutcome as StartOutcome
from .result import Status as Status
from .shooting import MultipleShooting as MultipleShooting
from .simulate import SolverSettings as SolverSettings
from .twostage import TwoStage as TwoStage
