"""vik-tui against vik itself, on one corpus (`tests/vik_differential.py` says how).

vik's behaviours come from its recorded goldens (so this runs anywhere) and, where vik's binary
is present, from the binary too. Every difference must be listed, with its reason, in
docs/vik-compatibility.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import vik_differential as vd


def test_goldens_name_the_vik_they_came_from() -> None:
    goldens = vd.load_goldens()
    assert goldens["vik_commit"] == vd.VIK_COMMIT
    assert len(goldens["behaviours"]) > 100


def test_the_doc_lists_every_difference_from_vik_and_no_stale_one(tmp_path: Path) -> None:
    """One run of our side (a minute of subprocesses) checked three ways: every difference is
    listed with its reason, every behaviour has a row, and no listed difference now agrees.
    One test rather than three, so the parallel workers do not each run the corpus."""
    ours = vd.collect(vd.ours_command(), tmp_path)
    vik = vd.load_goldens()["behaviours"]
    doc = vd.COMPAT_DOC.read_text()
    rows = vd.compare(vik, ours)
    listed = vd.listed_differences(doc)
    problems: list[str] = []
    missing = vd.unlisted(rows, listed)
    if missing:
        problems.append(
            f"{len(missing)} difference(s) from vik not listed in docs/vik-compatibility.md "
            "(fix them, or list the id with `no: <reason>`; scripts/record_vik_goldens.py --doc):\n"
            + vd.describe(missing)
        )
    absent = sorted(set(vik) - set(vd.doc_rows(doc)))
    if absent:
        problems.append(f"not in docs/vik-compatibility.md (run scripts/record_vik_goldens.py --doc): {absent}")
    stale = sorted(row.id for row in rows if row.agree and row.id in listed)
    if stale:
        problems.append(f"listed as differing but now the same as vik (regenerate the doc): {stale}")
    assert not problems, "\n\n".join(problems)


def test_an_unlisted_difference_is_caught() -> None:
    """The comparison itself: a planted difference fails unless its id is listed with a reason."""
    vik = {"doctor/x/exit": 0, "template/y/rendered": "true"}
    ours = {"doctor/x/exit": 1, "template/y/rendered": "true"}
    rows = vd.compare(vik, ours)
    assert [row.id for row in vd.unlisted(rows, {})] == ["doctor/x/exit"]
    doc = "| `doctor/x/exit` | 0 | 1 | no: ours checks more |\n| `template/y/rendered` | a | b | no: |\n"
    assert vd.listed_differences(doc) == {"doctor/x/exit": "ours checks more"}
    assert vd.unlisted(rows, vd.listed_differences(doc)) == []
    assert vd.summary(rows, {}) == {"agree": 1, "listed": 0, "unlisted": 1}


def test_the_reader_of_session_files_follows_vik() -> None:
    """vik's rule: the first `completed` or `error` decides; neither means failed."""
    assert vd.vik_reading([{"kind": "unknown"}, {"kind": "completed"}, {"kind": "error"}]) == "completed"
    assert vd.vik_reading([{"kind": "error", "detail": "x"}, {"kind": "completed"}]) == "failed"
    assert vd.vik_reading([{"kind": "message", "text": "hi"}]) == "failed"


def test_live_vik_still_shows_its_goldens(tmp_path: Path) -> None:
    """With vik's binary at hand, the goldens are checked against it (a re-record is due if not)."""
    binary = vd.vik_binary()
    if binary is None:
        pytest.skip("vik's binary is not here (set VIK_BIN or put it at ../shared/reference/vik-a4b1e82/vik)")
    live = vd.collect([str(binary)], tmp_path)
    rows = [row for row in vd.compare(vd.load_goldens()["behaviours"], live) if not row.agree]
    assert not rows, "vik no longer shows its recorded behaviour (scripts/record_vik_goldens.py):\n" + vd.describe(rows)
