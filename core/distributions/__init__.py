"""shardgrad.distributions: torch.distributions' common distributions and kl_divergence.

Parameters, shapes, log_prob, entropy, means and variances follow torch's formulas (and its
argument validation); draws come from shardgrad's seeded generators. See each module:
`distribution` (the base class and constraints), `univariate`, `multivariate`, `kl`,
`correlation` (LKJCholesky, Wishart), `continuous_bernoulli`, and `constraint_registry`
(biject_to, transform_to).
"""

from . import constraint_registry, transforms, utils
from . import kl_families as _kl_families  # noqa: F401 - registers cross-family KLs
from .constraint_registry import biject_to, transform_to
from .continuous_bernoulli import ContinuousBernoulli
from .correlation import LKJCholesky, Wishart
from .derived import (
    Binomial,
    Cauchy,
    Chi2,
    Geometric,
    HalfNormal,
    LogNormal,
    Multinomial,
    OneHotCategorical,
    OneHotCategoricalStraightThrough,
    StudentT,
)
from .distribution import Distribution, ExponentialFamily, constraints
from .kl import kl_divergence, register_kl
from .mixture import LowRankMultivariateNormal, MixtureSameFamily, VonMises
from .multivariate import Dirichlet, Independent, MultivariateNormal
from .transformed import (
    ExpRelaxedCategorical,
    FisherSnedecor,
    Gumbel,
    HalfCauchy,
    InverseGamma,
    Kumaraswamy,
    LogisticNormal,
    LogitRelaxedBernoulli,
    NegativeBinomial,
    Pareto,
    RelaxedBernoulli,
    RelaxedOneHotCategorical,
    TransformedDistribution,
    Weibull,
)
from .transforms import (  # torch.distributions names its transforms at the top too
    AbsTransform,
    AffineTransform,
    CatTransform,
    ComposeTransform,
    CorrCholeskyTransform,
    CumulativeDistributionTransform,
    ExpTransform,
    IndependentTransform,
    LowerCholeskyTransform,
    PositiveDefiniteTransform,
    PowerTransform,
    ReshapeTransform,
    SigmoidTransform,
    SoftmaxTransform,
    SoftplusTransform,
    StackTransform,
    StickBreakingTransform,
    TanhTransform,
    Transform,
    identity_transform,
)
from .univariate import (
    Bernoulli,
    Beta,
    Categorical,
    Exponential,
    Gamma,
    GeneralizedPareto,
    Laplace,
    Normal,
    Poisson,
    Uniform,
)

__all__ = [
    "Binomial", "Cauchy", "Chi2", "Geometric", "HalfNormal", "LogNormal", "Multinomial",
    "OneHotCategorical", "StudentT",
    "Bernoulli", "Beta", "Categorical", "Dirichlet", "Distribution", "Exponential",
    "ExponentialFamily", "Gamma",
    "Independent", "Laplace", "MultivariateNormal", "Normal", "Poisson", "Uniform",
    "constraints", "kl_divergence", "register_kl",
    "ExpRelaxedCategorical", "Gumbel", "HalfCauchy", "LogitRelaxedBernoulli", "NegativeBinomial",
    "Pareto", "RelaxedBernoulli", "RelaxedOneHotCategorical", "TransformedDistribution", "Weibull",
    "transforms", "LowRankMultivariateNormal", "MixtureSameFamily", "VonMises",
    "FisherSnedecor", "InverseGamma", "Kumaraswamy", "LogisticNormal", "utils",
    "biject_to", "constraint_registry", "transform_to", "ContinuousBernoulli", "LKJCholesky",
    "Wishart", "OneHotCategoricalStraightThrough", "GeneralizedPareto",
    "AbsTransform", "AffineTransform", "CatTransform", "ComposeTransform",
    "CorrCholeskyTransform", "CumulativeDistributionTransform", "ExpTransform",
    "IndependentTransform", "LowerCholeskyTransform", "PositiveDefiniteTransform",
    "PowerTransform", "ReshapeTransform", "SigmoidTransform", "SoftmaxTransform",
    "SoftplusTransform", "StackTransform", "StickBreakingTransform", "TanhTransform",
    "Transform", "identity_transform",
]  # fmt: skip
