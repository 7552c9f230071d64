"""Which model answers a user, and which one scores beside it in the shadows.

Modes (INCOME_SERVE_CHALLENGER_MODE):
- `off`: the champion answers everyone.
- `shadow`: the champion answers everyone; the challenger scores the same features, and its
  scores are logged (variant `shadow`), never returned.
- `ab`: a sticky split. A user is in the challenger's arm when a hash of the challenger's
  version and the user id falls below INCOME_SERVE_AB_SHARE, so a user sees one model for
  the whole experiment (and a new challenger is a new draw). The answer names the variant.

With no challenger loaded, or one that is the champion's own version (a promoted model
holds both aliases), there is nothing to compare: every mode behaves as `off`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

OFF, SHADOW, AB = "off", "shadow", "ab"
MODES = (OFF, SHADOW, AB)
CHAMPION_VARIANT, CHALLENGER_VARIANT, SHADOW_VARIANT = "champion", "challenger", "shadow"


def in_challenger_arm(user_id: int, share: float, experiment: str) -> bool:
    """The sticky A/B draw: the same (experiment, user) always lands in the same arm."""
    digest = hashlib.blake2b(f"{experiment}:{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share


@dataclass(frozen=True)
class Route:
    """Per user of a request: who answers (`variant`), and whether a shadow score is taken too."""

    variants: list[str]  # champion | challenger, one per user
    shadow: bool


def route(user_ids: list[int], mode: str, share: float, challenger_version: str | None) -> Route:
    if challenger_version is None or mode == OFF:
        return Route([CHAMPION_VARIANT] * len(user_ids), shadow=False)
    if mode == SHADOW:
        return Route([CHAMPION_VARIANT] * len(user_ids), shadow=True)
    experiment = f"challenger-v{challenger_version}"
    arm = [in_challenger_arm(u, share, experiment) for u in user_ids]
    return Route([CHALLENGER_VARIANT if a else CHAMPION_VARIANT for a in arm], shadow=False)
