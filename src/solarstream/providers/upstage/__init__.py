"""Everything Upstage-specific: the provider, its model table, its rules and quirks."""

from . import models
from .provider import UPSTAGE, Upstage, UpstageQuirks

__all__ = ["UPSTAGE", "Upstage", "UpstageQuirks", "models"]
