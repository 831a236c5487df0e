"""A real OpenID Connect provider for the SSO tests: django-oidc-provider (written by other
people, to the OpenID Connect specifications) as a small Django project of its own, run as a
separate process on 127.0.0.1 with its own SQLite database. Its people carry group claims; the
tests add, change and remove them through /test/ endpoints (test-only, loopback only). Not
collected by pytest (no test_ files); tests.sso.processes starts it."""
