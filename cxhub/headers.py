"""Permissions-Policy on every response: the browser features a publishing desk never uses are
switched off for it and anything it embeds; WebAuthn (passkeys) stays allowed on our own origin.
(Content-Security-Policy comes from django-csp; the other security headers from Django's
SecurityMiddleware and XFrameOptionsMiddleware.)"""

from django.conf import settings


def permissions_policy(features: dict[str, list[str]]) -> str:
    """`{"camera": [], "publickey-credentials-get": ["self"]}` → `camera=(), publickey-…=(self)`."""
    return ", ".join(f"{feature}=({' '.join(allow)})" for feature, allow in features.items())


class PermissionsPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.header = permissions_policy(settings.CXHUB_PERMISSIONS_POLICY)

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", self.header)
        return response
