"""A SAML 2.0 identity provider for the SSO tests, built on pysaml2's saml2.server.Server: a
small WSGI app in its own process on 127.0.0.1. Its single sign-on endpoint signs in the person
the test set (no password page), signs the response and its assertion with its own key, and
answers with the auto-submitting form a browser would post to cxhub. It can also start a Single
Logout. Test controls under /test/ (loopback only). Not collected by pytest."""
