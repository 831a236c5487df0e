"""A real OAuth 2 provider for the connect tests: a small Django project of its own
(django-oauth-toolkit's authorization, token and revocation views) that plays a Mastodon
server's OAuth side at Mastodon's paths, run as a separate process on 127.0.0.1.

Mastodon's OAuth is Doorkeeper (RFC 6749, RFC 7009); django-oauth-toolkit is another
implementation of the same RFCs, written by other people: connecting to it shows cxhub speaks
the standard and not only what our own test servers understand. Not collected by pytest (no
test_ files); `process.running_provider` starts it."""
