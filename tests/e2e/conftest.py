"""Browser tests: Debian's chromium driven by Playwright against pytest-django's live server,
with axe-core checking each page for WCAG 2.2 AA violations (DESIGN §8)."""

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO / "test-artifacts"

# Playwright cannot download its own browsers here: it drives Debian's. Without the
# background-networking flags Chromium's own connections get refused many at a time.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
FAILING_IMPACTS = ("serious", "critical")
TIMEOUT_MS = 10_000


@pytest.fixture(scope="package", autouse=True)
def _allow_django_beside_playwright():
    """Playwright's sync API keeps an event loop running in the test thread; Django refuses
    database calls from a thread with a running loop unless told that this one is safe.

    Only for this package: set for the whole run, the variable reaches other tests' subprocesses
    (`manage.py check --deploy` rejects it, async.E001)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        # The live server listens where Chromium is pointed, not on "localhost" (maybe ::1 first).
        if not os.environ.get("DJANGO_LIVE_TEST_SERVER_ADDRESS"):
            patch.setenv("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")
        yield


@pytest.fixture(scope="package")
def browser(_allow_django_beside_playwright):
    """One Chromium for all browser tests. Package-scoped, not session-scoped: closing it when the
    last browser test is done stops Playwright's event loop before the tests that follow."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests drive Debian's chromium. "
            "`make test` installs it (make browser-deps), or run "
            "`apt-get install -y --no-install-recommends chromium`.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# Runs before each document's own scripts (and is not subject to its CSP): every violation of the
# Content-Security-Policy goes to the console, where the `page` fixture collects it.
_REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
    const blocked = event.blockedURI || "inline";
    const where = `${event.sourceFile || event.documentURI}:${event.lineNumber}`;
    console.error(`CSP violation: ${event.violatedDirective} blocked ${blocked} at ${where}`);
});
"""


def watch_csp(context) -> list[str]:
    """The Content-Security-Policy violations of every page opened in `context` from now on."""
    context.add_init_script(_REPORT_CSP_VIOLATIONS)
    violations: list[str] = []

    def on_page(page):
        def on_console(message):
            if "CSP violation" in message.text or "Content Security Policy" in message.text:
                violations.append(f"{message.text} ({page.url})")

        page.on("console", on_console)

    context.on("page", on_page)
    return violations


@pytest.fixture
def page(browser):
    """A fresh context (no cookies, no storage) and page for each test. The test fails if any
    page it visited broke the Content-Security-Policy (a script or style the policy blocked)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    violations = watch_csp(context)
    page = context.new_page()
    yield page
    context.close()
    if violations:
        pytest.fail("Content-Security-Policy violations:\n" + "\n".join(violations), pytrace=False)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "page"


def axe_check(page, name: str | None = None) -> list[dict]:
    """Screenshot the page to test-artifacts/<name>.png, run axe-core on it with the WCAG 2.2 AA
    rules, and fail listing every serious or critical violation. Returns all violations."""
    if not AXE.exists():
        pytest.fail(
            f"{AXE} is missing: axe-core comes from npm. `make test` installs it "
            "(make browser-deps), or run `npm ci --no-audit --no-fund`.",
            pytrace=False,
        )
    name = _slug(name or page.title().split("·")[0])
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    # Evaluated, not added as a <script>: the page's CSP rightly refuses inline scripts.
    page.evaluate(AXE.read_text(encoding="utf-8"))
    violations = page.evaluate(
        """async (tags) => {
            const results = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return results.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map((n) => ({target: n.target, summary: n.failureSummary})),
            }));
        }""",
        AXE_TAGS,
    )
    failing = [v for v in violations if v["impact"] in FAILING_IMPACTS]
    if failing:
        lines = [f"axe-core: {len(failing)} serious/critical violation(s) on {page.url} ({name}):"]
        for v in failing:
            lines.append(f"- {v['id']} [{v['impact']}]: {v['help']} ({v['helpUrl']})")
            for node in v["nodes"]:
                target = " ".join(str(part) for part in node["target"])
                lines.append(f"    {target}")
                summary = (node["summary"] or "").splitlines()
                lines.extend(f"      {line.strip()}" for line in summary if line.strip())
        pytest.fail("\n".join(lines), pytrace=False)
    return violations


def login(page, live_server, username: str, password: str) -> None:
    """Sign in through the real login form, as a person would."""
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")
