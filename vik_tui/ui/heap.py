"""Keep the cyclic garbage collector's passes short and rare in a long-running screen.

Two costs, measured with 20 agents talking on a 10,000-issue tracker:

- Every render makes cyclic garbage (a Textual `Strip` keeps caches that can point back at
  itself), so with the default thresholds the young generations were collected ~150 times a
  second and a full pass ran about once a second: 15 % of the UI's CPU, in pauses up to 300 ms
  on a busy machine. Those strips die within a frame or two: with a young generation of 20,000
  objects they are collected young, there is about one young pass a second, the middle one
  every other, and full passes are rare (2 % of the CPU, pauses of a few tens of ms).
- A full pass walks every container object in the process: Textual's widgets and styles, the
  imported modules, and the tracker's issues. What exists once the first list is on screen
  lives as long as the app, so it is moved out of the collector's sight (`gc.freeze`), and so
  is what exists when the app has started (before the first pull is parsed: 60 ms less).
  Reference counting still frees those objects, and cycles made later are still collected.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000  # objects allocated (net) between passes over the youngest generation
MIDDLE_THRESHOLD = 2  # young passes between passes over the middle one (the default 10 let it
# grow to ten young generations' survivors: a 300 ms pass on a busy machine)


def tune_collector() -> None:
    """Freeze what is alive now (call it once the app is up, and again once the first list is
    on screen) and collect the young generations less often."""
    gc.freeze()
    _young, _middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, old)
