"""Special functions: log I_v, log K_v, Bessel ratios and the von Mises–Fisher distribution."""

from . import vmf as vmf
from ._log_bessel import (
    iv_ratio as iv_ratio,
    kv_ratio as kv_ratio,
    log_iv as log_iv,
    log_ive as log_ive,
    log_kv as log_kv,
    log_kve as log_kve,
)
