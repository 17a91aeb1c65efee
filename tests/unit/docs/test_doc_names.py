"""The docs name things one way, the README's: ``$FH`` for fluxhook's URL, ``$TOKEN`` for a token (``$SHOP_KEY``
for the app key docs/keys.md creates), and the port ``make run`` prints; so a command copied from any page
works in the terminal the README set up. The dashboard's "Copy as curl" leaves the token as ``$TOKEN`` too."""

from __future__ import annotations

import re

from devtools.processes import ROOT
from fluxhook.core.config import DEFAULT_PORT
from fluxhook.core.job import Job
from receiver.dashboard_view import api_examples

PAGES = [ROOT / "README.md", ROOT / "deploy" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOKENS = {"TOKEN", "SHOP_KEY"}


def test_every_page_uses_the_readmes_names():
    wrong = []
    for page in PAGES:
        text, where = page.read_text(), page.relative_to(ROOT)
        # A token in a header: `Authorization: Bearer $TOKEN`, `x-key: $TOKEN`.
        wrong += [f"{where}: ${name} for a token" for name in re.findall(r"(?:Bearer|x-key:) \$\{?([A-Z_]+)", text)
                  if name not in TOKENS]
        # fluxhook's URL before one of its paths: `$FH/v1/jobs`, `"$FH/webhooks/bfl"`.
        wrong += [f"{where}: ${name} for fluxhook's URL"
                  for name in re.findall(r"\$\{?([A-Z_]+)\}?/(?:v1|webhooks|healthz|readyz|metrics)\b", text)
                  if name != "FH"]
        # `make run`'s URL on this machine.
        wrong += [f"{where}: localhost:{port}" for port in re.findall(r"localhost:(\d+)", text)
                  if int(port) != DEFAULT_PORT]
    assert not wrong, f"the README's names are $FH, $TOKEN and localhost:{DEFAULT_PORT}: {wrong}"


def test_the_dashboards_curl_leaves_the_token_as_the_docs_name_it():
    job = Job(id="job_01JZZZZZZZZZZZZZZZZZZZZZZZ", status="queued", prompt="p", model="flux-2-pro")
    for example in api_examples("http://localhost:8000", job):
        assert '-H "Authorization: Bearer $TOKEN"' in example["command"], example
