"""The failures a request can meet that the service answers as HTTP errors (see serving.app)."""

from __future__ import annotations


class ServiceUnavailable(Exception):
    """Valkey unreachable or no model loaded: 503, try again shortly."""


class UnknownUsers(Exception):
    """Users not scoreable online: some view of the service has no row for them (expired, not
    materialized, or unknown user): 404 naming them."""

    def __init__(self, user_ids: list[int]) -> None:
        self.user_ids = user_ids
