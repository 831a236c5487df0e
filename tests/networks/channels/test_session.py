"""The channels' HTTP session reads the proxy settings once per destination, as requests would."""

from networks.channels.session import ChannelSession


def test_proxies_from_the_environment_still_apply_and_no_proxy_is_honoured(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://egress.agency.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.agency.example")
    session = ChannelSession()

    def proxies(url):
        found = session.merge_environment_settings(url, {}, False, None, None)["proxies"]
        return {scheme: value for scheme, value in found.items() if scheme in ("http", "https")}

    assert proxies("https://mastodon.social/api/v1/statuses") == {
        "https": "http://egress.agency.example:3128"
    }
    assert proxies("https://internal.agency.example/hook") == {}
    # Read once per destination: a change of the environment later is not seen (a worker's
    # environment does not change), and each answer is a fresh copy.
    monkeypatch.delenv("HTTPS_PROXY")
    first = proxies("https://mastodon.social/api/v1/media")
    assert first == {"https": "http://egress.agency.example:3128"}
    first.clear()
    assert proxies("https://mastodon.social/x") == {"https": "http://egress.agency.example:3128"}
