"""`vik-tui web`: the same UI in a browser, one attached UI process per tab.

textual-serve (Textualize's aiohttp server for Textual apps) runs the app as a subprocess per
browser tab and relays its screen over a websocket; it has no authentication, no cap and no
way to end a process that does not answer, so this package wraps it:

- `access`: the supervisor's API token, entered once (login form or `?token=`), exchanged for
  an HttpOnly, SameSite=Strict session cookie; nothing of the app without it.
- `tabs`: one `vik-tui attach WORKFLOW` process per tab (its own process group, ended when the
  tab closes, killed if it does not quit), and the cap on open tabs.
- `page`: the HTML around textual-serve's terminal front end (no third-party requests), and
  its script served with one hook added (the terminal, for focus and the screen's text).
- `server`: the aiohttp application and the command's loop.

The web server never talks to the supervisor itself: each tab's process attaches over the
workflow's Unix socket like `vik-tui attach`, so closing tabs (or this server) leaves the
supervisor and its agents untouched.
"""
