"""The job list's filters show their whole hints in a window 390 px wide, in headless Chromium with the scrollbar a
desktop browser narrowed to a phone's width shows (Playwright hides it by default): "2026-11-21 or …T10:00Z" was cut
to "…T10:002" in the From and To boxes, each half the window's width."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from browser_helpers import needs_chromium, sign_in
from devtools.browser_page import ARGS, CHROMIUM

pytestmark = needs_chromium

# Each text box's placeholder laid out in its font, in a box as wide as the input's text area: its scrollWidth past its
# clientWidth is the hint cut (an input's own scrollWidth does not count its placeholder).
HINTS = """() => [...document.querySelectorAll('.jobfilters input[placeholder]')].map(input => {
  const style = getComputedStyle(input);
  const probe = document.createElement('div');
  probe.style.cssText = 'position:absolute;visibility:hidden;white-space:pre;overflow:hidden;padding:0;border:0';
  probe.style.font = style.font;
  probe.style.width = (input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight)) + 'px';
  probe.textContent = input.placeholder;
  document.body.append(probe);
  const fit = [input.name, probe.scrollWidth, probe.clientWidth];
  probe.remove();
  return fit;
})"""


@pytest.fixture()
def scrolled_tab(chromium, stack):
    """A 390 × 600 tab of a Chromium that draws its scrollbar, the jobs page taller than the window."""
    browser = chromium.browser_type.launch(executable_path=CHROMIUM, args=ARGS,
                                           ignore_default_args=["--hide-scrollbars"])
    context = browser.new_context(base_url=stack.base_url, viewport={"width": 390, "height": 600})
    context.set_default_timeout(15_000)
    yield context.new_page()
    browser.close()


def test_the_job_filters_show_their_whole_hints_at_390_px(scrolled_tab):
    page = scrolled_tab
    sign_in(page)
    expect(page).to_have_url(re.compile(r"/jobs$"))
    page.wait_for_load_state()
    assert page.evaluate("document.documentElement.clientWidth") < 390  # the scrollbar takes its width
    hints = page.evaluate(HINTS)
    assert {name for name, _, _ in hints} == {"model", "account", "q", "from", "to"}
    assert [(name, scroll, client) for name, scroll, client in hints if scroll > client] == []
