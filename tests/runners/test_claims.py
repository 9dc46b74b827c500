"""python -m runners.claims: the zoo-level claim checks write tidy rows the report reads."""

from __future__ import annotations

import pytest

from reports import claims as page
from results import schema
from runners import claims


def test_the_checks_write_rows_that_the_claims_page_judges(tmp_path, monkeypatch):
    monkeypatch.setattr(claims, "CAUSAL_N", (8,))
    monkeypatch.setattr(claims, "CAUSAL_ITERS", (1, 2, 4, 400))
    monkeypatch.setattr(claims, "LOT_R", (4,))
    monkeypatch.setattr(claims, "LOT_ITERS", (5,))
    monkeypatch.setattr(claims, "LOT_EPS", (1.0,))
    assert claims.main(["--out", str(tmp_path)]) == 0
    rows, problems = schema.read_table(tmp_path)
    assert not problems and set(rows["check"]) == set(claims.CHECKS)
    assert (rows["status"] == "ok").all() and rows["git_commit"].notna().all()
    found = {"claims": rows}
    assert page.one_iteration(found).verdict == "supported"
    refused = rows[rows["metric"] == "refused"]
    assert refused["value"].tolist() == [1.0] and "Appendix F" in refused["note"].iloc[0]
    causal = page.causal_identity(found)
    assert causal.verdict in ("supported", "mixed") and "N=8" in causal.ours
    ranks = rows[rows["metric"] == "rank_max"]["value"]
    assert (ranks <= 4).all()  # r = 4 pivots: the rank the construction promises


def test_an_unknown_check_is_refused_with_the_known_ones(capsys):
    with pytest.raises(SystemExit) as exit_:
        claims.main(["--checks", "causal,telepathy"])
    assert exit_.value.code == 2
    assert "unknown ['telepathy']" in capsys.readouterr().err
