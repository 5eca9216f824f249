"""The von Mises–Fisher distribution: normaliser, density, sampling, entropy, KL and fitting."""

from ._vmf import (
    VonMisesFisher as VonMisesFisher,
    entropy as entropy,
    fit as fit,
    kappa_mle as kappa_mle,
    kl as kl,
    log_normalizer as log_normalizer,
    log_prob as log_prob,
    mean_resultant_length as mean_resultant_length,
    sample as sample,
)
