"""What the layout tests measure in the browser, as the layout has it (bounding boxes and computed styles, not
the HTML): text covered by other text or by a badge, text cut short or spilling out of its cell, text too small
to read, text past the window's edges, a word broken across lines, a value shown without its label.

Each check is a function of the page (``page.evaluate``) that returns what is wrong, in words: [] when all is
well, so a failing assertion says where to look.
"""

from __future__ import annotations

# Shared by the checks below: the visible text nodes under a root, and their line boxes.
_TEXT = """
// Drawn: not display: none, not hidden, not inside a closed <details>.
const visible = el => el.checkVisibility({visibilityProperty: true}) && el.getClientRects().length > 0;
const boxes = node => { const range = document.createRange(); range.selectNodeContents(node);
  return [...range.getClientRects()].filter(r => r.width > 0.5 && r.height > 0.5); };
const texts = root => {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const found = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.textContent.trim() && visible(node.parentElement) && boxes(node).length) found.push(node);
  }
  return found;
};
const meets = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1
                     && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
// Inside a pop-up (a box positioned on its own, such as a question that hangs below its button), short of a cell.
const popup = el => { for (let e = el; e && !e.matches('td, th'); e = e.parentElement) {
  if (['absolute', 'fixed'].includes(getComputedStyle(e).position)) return true; } return false; };
const word = node => JSON.stringify(node.textContent.trim().slice(0, 40));
"""

# What is wrong with the text under ``selector``, each element matched taken on its own: text over other text or
# under a badge (an inline box with a background of its own), text cut short (an element that clips what it
# holds), text spilling out of its table cell (but for a pop-up's), text smaller than ``smallest`` px as drawn,
# text past the window.
FAULTS = """([selector, smallest]) => {""" + _TEXT + """
  const faults = [];
  for (const root of document.querySelectorAll(selector)) {
    const nodes = texts(root);
    const badges = [...root.querySelectorAll('*')].filter(e => visible(e)
      && getComputedStyle(e).display.startsWith('inline')
      && !['rgba(0, 0, 0, 0)', 'transparent'].includes(getComputedStyle(e).backgroundColor));
    nodes.forEach((node, i) => {
      const own = boxes(node);
      for (const other of nodes.slice(i + 1)) {
        if (own.some(a => boxes(other).some(b => meets(a, b)))) faults.push(`${word(node)} and ${word(other)} overlap`);
      }
      for (const badge of badges) {
        if (badge.contains(node)) continue;
        const box = badge.getBoundingClientRect();
        if (own.some(a => meets(a, box))) faults.push(`${word(node)} is under ${word(badge)}`);
      }
      const cell = node.parentElement.closest('td, th');
      if (cell && !popup(node.parentElement)) {
        const edge = cell.getBoundingClientRect();
        if (own.some(a => a.left < edge.left - 1 || a.right > edge.right + 1)) {
          faults.push(`${word(node)} spills out of its cell`);
        }
      }
      const element = node.parentElement;
      const scale = element.closest('svg') ? element.getScreenCTM().a : 1;
      const size = parseFloat(getComputedStyle(element).fontSize) * scale;
      if (size < smallest) faults.push(`${word(node)} is ${size.toFixed(1)} px`);
      if (own.some(a => a.left < -0.5 || a.right > document.documentElement.clientWidth + 0.5)) {
        faults.push(`${word(node)} is past the window's edge`);
      }
    });
    for (const e of [root, ...root.querySelectorAll('*')]) {
      if (!visible(e)) continue;
      const style = getComputedStyle(e);
      if (style.overflowX !== 'visible' && e.scrollWidth > e.clientWidth + 1 && e.tagName !== 'svg') {
        faults.push(`${word(e)} is cut (${e.scrollWidth} px in ${e.clientWidth})`);
      }
    }
  }
  return faults;
}"""

# The words of ``words`` found under ``selector`` that are laid out on more than one line: a model name broken at
# its hyphen ("flux-2-" / "pro"), a title split from its first word. Each is looked for inside one text node.
BROKEN = """([selector, words]) => {""" + _TEXT + """
  const broken = [];
  for (const root of document.querySelectorAll(selector)) {
    for (const node of texts(root)) {
      for (const w of words) {
        const at = node.textContent.indexOf(w);
        if (at < 0) continue;
        const range = document.createRange();
        range.setStart(node, at);
        range.setEnd(node, at + w.length);
        const lines = new Set([...range.getClientRects()].filter(r => r.width > 0.5).map(r => Math.round(r.top)));
        if (lines.size > 1) broken.push(`${JSON.stringify(w)} on ${lines.size} lines`);
      }
    }
  }
  return broken;
}"""

# The label a value is shown with, read from the layout: ``{field: label}`` for each ``[data-field]`` under
# ``selector`` whose cell shows no ``label`` in sight, neither inside the cell nor as its column's visible header.
UNLABELLED = """([selector, labels]) => {""" + _TEXT + """
  const missing = [];
  for (const [field, label] of Object.entries(labels)) {
    const value = document.querySelector(`${selector} [data-field="${field}"]`);
    if (!value || !visible(value)) { missing.push(`${field}: no value in sight`); continue; }
    const cell = value.closest('td') || value.parentElement;
    const inside = [...cell.querySelectorAll('*')].some(e => e !== value && visible(e) && e.textContent.trim() === label);
    const table = cell.closest('table');
    const head = table && table.tHead && table.tHead.rows[0].cells[cell.cellIndex];
    const above = head && visible(head) && head.textContent.trim() === label;
    if (!inside && !above) missing.push(`${field}: no "${label}" beside it`);
  }
  return missing;
}"""


def overflow(page) -> list[int]:
    """The page's width as laid out, and the window's."""
    return page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")


# The rows the children of ``selector`` are laid out on, top to bottom, each its children's words left to right (a
# label's own text, a button's): a grid or a flex box that wraps shows here what it put on a row of its own. Two
# children share a row when their boxes share most of their height.
ROWS = """(selector) => {
  const root = document.querySelector(selector);
  const rows = [];
  for (const child of root.children) {
    const box = child.getBoundingClientRect();
    if (box.width < 0.5 || box.height < 0.5) continue;
    const own = [...child.childNodes].filter(n => n.nodeType === Node.TEXT_NODE).map(n => n.textContent.trim()).join(' ');
    const name = own || child.textContent.trim().split(/\\s+/)[0];
    const row = rows.find(r => Math.min(r.bottom, box.bottom) - Math.max(r.top, box.top)
                               > Math.min(r.bottom - r.top, box.height) / 2);
    if (row) { row.items.push([box.left, name]); row.top = Math.min(row.top, box.top);
               row.bottom = Math.max(row.bottom, box.bottom); }
    else rows.push({top: box.top, bottom: box.bottom, items: [[box.left, name]]});
  }
  return rows.sort((a, b) => a.top - b.top).map(r => r.items.sort((a, b) => a[0] - b[0]).map(i => i[1]));
}"""
