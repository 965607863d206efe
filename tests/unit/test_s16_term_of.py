"""benefits.term_of (seed 002 重大疾病 "三年90元"): which periods a member's once_per: term payment covers."""

from __future__ import annotations

import pytest

from services.claims.domain.benefits import term_of

ORDER = ["bj-2014", "bj-2015", "bj-2016", "bj-2017", "bj-2018", "bj-2019", "bj-2020"]


def test_a_term_is_the_first_period_joined_and_the_next_two_of_the_scheme() -> None:
    joined = ["bj-2015", "bj-2016", "bj-2017", "bj-2018"]
    assert term_of(ORDER, joined, 3, "bj-2016") == ("bj-2015", "bj-2016", "bj-2017")
    assert term_of(ORDER, joined, 3, "bj-2018") == ("bj-2018", "bj-2019", "bj-2020")


def test_a_gap_inside_a_term_does_not_move_it_and_a_return_after_it_begins_a_new_one() -> None:
    # Joined 2014, skipped 2015, back in 2016: still the 2014-2016 term; back in 2019 after a gap: a new term.
    assert term_of(ORDER, ["bj-2014", "bj-2016"], 3, "bj-2016") == ("bj-2014", "bj-2015", "bj-2016")
    assert term_of(ORDER, ["bj-2014", "bj-2019", "bj-2020"], 3, "bj-2020") == ("bj-2019", "bj-2020")


def test_a_term_of_one_period_and_an_unknown_period() -> None:
    assert term_of(ORDER, ORDER, 1, "bj-2017") == ("bj-2017",)
    assert term_of(ORDER, ORDER, 3, "tj-2017") == ("tj-2017",)
    with pytest.raises(ValueError):
        term_of(ORDER, ORDER, 0, "bj-2017")
