"""The Fluent Bit config, rendered from the same formats as CALI's shipper: host files and EKS Helm values."""

from cali.core.regex_compat import to_onigmo, to_python
from cali.fluentbit.render import AWS, LOCAL, PROFILES, Profile, render_config

__all__ = ["AWS", "LOCAL", "PROFILES", "Profile", "render_config", "to_onigmo", "to_python"]
