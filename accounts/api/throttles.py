"""Request-rate limits of the accounts API, keyed by the door policy's client address (DRF's own
key believes any X-Forwarded-For, so a client could pick a fresh one for every request)."""

from rest_framework.throttling import ScopedRateThrottle

from ..doors import client_address


class ClientAddressRateThrottle(ScopedRateThrottle):
    def get_ident(self, request):
        return client_address(request) or "unknown"
