"""The HTTP session every channel uses: pooled connections (one session per process, made after
the worker forked), cxhub's User-Agent, and the environment's proxy settings read once per host.

requests reads HTTP(S)_PROXY / NO_PROXY (and the CA bundle variables) on every request by
scanning all of os.environ, twice: about half a millisecond a call, a tenth of what publishing
one post costs. A worker's environment does not change while it runs, so the answer for each
destination is kept: proxies still apply (an organisation's egress proxy), computed as requests
would, once.
"""

from typing import Any
from urllib.parse import urlsplit

import requests

from networks.ratelimits import observe

USER_AGENT = "cxhub/1 (+https://github.com/cxhub)"


class ChannelSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.headers["User-Agent"] = USER_AGENT
        # Every answer's rate-limit headers, kept for the account and app calling (ratelimits.py)
        self.hooks["response"].append(observe)
        self._environment: dict[tuple, dict[str, Any]] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # noqa: ANN001
        parts = urlsplit(url)
        key = (
            parts.scheme,
            parts.hostname,
            tuple(sorted((proxies or {}).items())),
            stream,
            verify,
            cert if not isinstance(cert, list) else tuple(cert),
        )
        settings = self._environment.get(key)
        if settings is None:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment[key] = settings
        return {**settings, "proxies": dict(settings["proxies"])}


_session: ChannelSession | None = None


def http_session() -> ChannelSession:
    global _session
    if _session is None:
        _session = ChannelSession()
    return _session
