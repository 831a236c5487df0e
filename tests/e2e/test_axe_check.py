"""The checker itself: a page with known serious violations must fail, so a broken injection or a
wrong rule set cannot pass every page silently."""

import pytest

from .conftest import axe_check

pytestmark = pytest.mark.browser

BROKEN_PAGE = """<!doctype html><html lang="en"><head><title>Broken</title></head><body><main>
<h1>Broken</h1>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<p style="color: #bbbbbb; background: #ffffff">Pale grey text on white.</p>
<input type="text" name="unlabelled">
</main></body></html>"""


def test_axe_check_fails_on_serious_violations_and_names_them(page):
    page.set_content(BROKEN_PAGE)

    with pytest.raises(pytest.fail.Exception) as failure:
        axe_check(page, "axe-self-check")

    message = str(failure.value)
    for rule in ("image-alt", "color-contrast", "label"):
        assert f"- {rule} [" in message
    assert "img" in message
