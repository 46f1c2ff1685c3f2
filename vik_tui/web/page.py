"""The pages: the login form, the app page around textual-serve's terminal front end, and a
plain page for "cannot open a tab now".

The app page is ours, not textual-serve's template: it asks nothing of a third party (that
template loads a web font from a CDN), computes the websocket address from the address bar (so
an `ssh -L` tunnel on another port works), and carries `page.js`. textual-serve's `textual.js`
keeps its xterm.js terminal to itself; it is served with one hook added after
`this.terminal.open(e)`, an event that hands the terminal to `page.js`, which focuses it once
the app's first frame is in (Textual's web driver starts the app blurred, which leaves the footer
empty until the page reports focus; keys work without a click) and keeps the text of the
rendered screen in `#screen-text` (hidden from view and from screen readers; the browser tests
and the benchmark read the screen there).
"""

from __future__ import annotations

import functools
import html
from pathlib import Path

import textual_serve

STATIC_DIR = Path(textual_serve.__file__).parent / "static"
TEXTUAL_JS = STATIC_DIR / "js" / "textual.js"
HOOK_ANCHOR = b"this.terminal.open(e),"
HOOK = b'this.terminal.open(e),window.dispatchEvent(new CustomEvent("textual-terminal",{detail:this.terminal})),'

SECURITY_HEADERS = {
    # same-origin only (the websocket included); textual.js and xterm.js set inline styles
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
        " base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

PAGE_JS = """\
// vik-tui web: the websocket address from the address bar; the terminal focused once the app's
// first frame is in, and its rendered text kept in #screen-text (tests and benchmarks read it).
"use strict";
(() => {
  const terminal = document.getElementById("terminal");
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  terminal.dataset.sessionWebsocketUrl = `${scheme}//${window.location.host}/ws`;
  const screenText = document.getElementById("screen-text");
  window.addEventListener("textual-terminal", (event) => {
    const term = event.detail;
    let told = false;
    term.onRender(() => {
      // the app starts blurred (Textual's web driver) until the page says it has focus: say so
      // once its first frame is in, so keys and the footer work without a click
      if (!told && document.body.classList.contains("-first-byte")) {
        told = true;
        term.blur();
        term.focus();
      }
      const buffer = term.buffer.active;
      const rows = [];
      for (let y = 0; y < term.rows; y++) {
        const line = buffer.getLine(buffer.viewportY + y);
        rows.push(line ? line.translateToString(true) : "");
      }
      screenText.textContent = rows.join("\\n");
    });
    term.focus();
  });
  document.getElementById("reload").addEventListener("click", () => window.location.reload());
})();
"""

_STYLE = """
@font-face { font-family: "Roboto Mono"; src: url("/static/fonts/RobotoMono-VariableFont_wght.ttf"); }
html, body { margin: 0; height: 100%; background: #0c181f; color: rgba(255, 255, 255, 0.95);
  font-family: "Roboto Mono", menlo, monospace; }
.box { max-width: 40em; margin: 12vh auto; padding: 1.5em 2em; background: #12232d; }
.box h1 { font-size: 1.2em; margin-top: 0; }
.box code { color: #ffd27f; }
input, button { font: inherit; padding: 0.4em 0.8em; margin: 0.4em 0; }
input { width: 100%; box-sizing: border-box; }
button { background: #5e0ba7; color: white; border: none; cursor: pointer; }
.error { color: #ff8a80; }
"""

_APP_STYLE = """
#terminal { position: absolute; inset: 0; }
#screen-text { position: absolute; left: -10000px; width: 1px; height: 1px; overflow: hidden; }
.ended { display: none; position: absolute; inset: 0; z-index: 10; background: rgba(12, 24, 31, 0.85); }
body.-closed .ended { display: block; }
"""


@functools.cache
def textual_js() -> bytes:
    """textual-serve's front end with the terminal hook (unchanged when the anchor is missing:
    the page still works, without focus on load and `#screen-text`)."""
    source = TEXTUAL_JS.read_bytes()
    if source.count(HOOK_ANCHOR) != 1:
        return source
    return source.replace(HOOK_ANCHOR, HOOK)


def hook_installed() -> bool:
    return HOOK in textual_js()


def _page(title: str, body: str, head: str = "", style: str = "") -> str:
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title>"
        f"<style>{_STYLE}{style}</style>{head}</head>\n<body>{body}</body></html>\n"
    )


def login_page(workflow: str, token_file: str, error: str | None = None) -> str:
    message = f'<p class="error" id="error">{html.escape(error)}</p>' if error else ""
    return _page(
        "vik-tui: log in",
        '<div class="box"><h1>vik-tui</h1>'
        f"<p>{html.escape(workflow)}</p>"
        f"{message}"
        '<form method="post" action="/login">'
        '<label for="token">The supervisor\'s API token</label>'
        '<input id="token" name="token" type="password" autocomplete="current-password" autofocus required>'
        '<button type="submit">Open</button></form>'
        f"<p>It is in <code>{html.escape(token_file)}</code> (also shown by <code>vik-tui status</code>).</p>"
        "</div>",
    )


def app_page(workflow: str, font_size: int) -> str:
    return _page(
        f"vik-tui: {workflow}",
        f'<div id="terminal" class="textual-terminal" data-font-size="{font_size}"></div>'
        '<pre id="screen-text" aria-hidden="true"></pre>'
        '<div class="ended"><div class="box"><h1>This tab\'s UI has ended</h1>'
        "<p>It detached (q), or the supervisor went away. The agents are not affected.</p>"
        '<button id="reload" type="button">Attach again</button></div></div>'
        '<script src="/vik/page.js"></script>',
        head=(
            '<link rel="stylesheet" href="/static/css/xterm.css">'
            '<link rel="preload" href="/static/fonts/RobotoMono-VariableFont_wght.ttf" as="font" crossorigin>'
            '<script src="/static/js/textual.js"></script>'
        ),
        style=_APP_STYLE,
    )


def notice_page(title: str, text: str) -> str:
    """A page that says why no tab was opened (no supervisor runs, every tab is taken)."""
    return _page(
        f"vik-tui: {title}",
        f'<div class="box"><h1>{html.escape(title)}</h1><p id="notice">{html.escape(text)}</p></div>',
    )
