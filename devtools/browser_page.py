"""A page of stored images as an app's server would render it, opened in Debian's Chromium (Playwright) as a visitor
would: the API guide's ``<img srcset sizes>`` snippet (docs/api.md), read from the guide itself so the two cannot
drift, filled from a fresh read of the jobs, served by a small HTTP server on 127.0.0.1, each view in a browser
context of its own. ``make bench-cdn``, tests/e2e/results/test_cdn.py and tests/e2e/dashboard/test_docs_img.py."""

from __future__ import annotations

import html
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from .processes import ROOT

if TYPE_CHECKING:
    from playwright.sync_api import Browser

GUIDE = ROOT / "docs" / "api.md"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

# The snippet's images are lazy: a visitor who scrolls down the page loads them all, one who does not loads the
# first few. Each is scrolled into view and waited for, so a view asks for every image of the page.
_SCROLL_THROUGH = """async (limit) => {
  const taken = [];
  for (const img of document.images) {
    img.scrollIntoView();
    if (!(img.complete && img.naturalWidth)) {
      if (img.complete && img.currentSrc) throw new Error('broken: ' + img.currentSrc);
      await new Promise((resolve, reject) => {
        const late = setTimeout(() => reject(new Error('not loaded within ' + limit + ' ms: ' + img.currentSrc)),
                                limit);
        img.addEventListener('load', () => { clearTimeout(late); resolve(); }, {once: true});
        img.addEventListener('error', () => { clearTimeout(late); reject(new Error('error: ' + img.currentSrc)); },
                             {once: true});
      });
    }
    taken.push(img.currentSrc);
  }
  return taken;
}"""


def snippet() -> str:
    """The guide's HTML example that takes ``job.image.srcset`` as it is."""
    blocks = re.findall(r"```html\n(.*?)```", GUIDE.read_text(), re.S)
    [found] = [block for block in blocks if "{{ job.image.srcset }}" in block]
    return found


def filled(template: str, job: dict) -> str:
    """The snippet as a template engine that escapes attributes (Jinja's, Django's) fills it from the job's JSON."""
    values = {"job.image.url": job["image"]["url"], "job.image.srcset": job["image"]["srcset"],
              "job.image.width": job["image"]["width"], "job.image.height": job["image"]["height"],
              "job.prompt": job["prompt"]}

    def value(match: re.Match) -> str:
        return html.escape(str(values[match.group(1)]), quote=True)

    page = re.sub(r"\{\{ ([\w.]+) \}\}", value, template)
    if "{{" in page:
        raise ValueError(f"a placeholder left unfilled: {page}")
    return page


def on_host(job: dict, service: str, cdn: str) -> dict:
    """The job with its image links on the CDN's origin in place of the service's (a token names its job and file,
    not a host): what an app's server does before it renders a page behind a CDN."""
    image = dict(job["image"], url=job["image"]["url"].replace(service, cdn),
                 srcset=job["image"]["srcset"].replace(service, cdn))
    return dict(job, image=image)


def catalog(jobs: list[dict]) -> str:
    """A whole page: the snippet once per job."""
    template = snippet()
    return ("<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
            "<title>catalog</title></head><body>" + "".join(filled(template, job) for job in jobs) + "</body></html>")


class PageServer:
    """An HTTP server on 127.0.0.1 answering ``/`` with the page last set in ``html`` (an app's server, rendering each
    view from its own fresh read); anything else, a favicon among them, is a 404."""

    def __init__(self) -> None:
        self.html = ""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
                body = server.html.encode() if self.path == "/" else b"not found"
                self.send_response(200 if self.path == "/" else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the standard library's name)
                pass  # a page a view: not worth a line on stderr each

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def __enter__(self) -> "PageServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._http.shutdown()
        self._http.server_close()


def view(browser: "Browser", url: str, width: int, ratio: float, limit_ms: int = 60_000) -> list[str]:
    """The page at ``url`` opened in a new browser context (an HTTP cache of its own, empty: a new visitor) with a
    window ``width`` CSS px wide at ``ratio`` device pixels per CSS pixel, scrolled through until each image has
    loaded; the link each ``<img>`` took from its srcset, in the page's order."""
    context = browser.new_context(viewport={"width": width, "height": 900}, device_scale_factor=ratio)
    try:
        page = context.new_page()
        page.goto(url)
        return page.evaluate(_SCROLL_THROUGH, limit_ms)
    finally:
        context.close()
