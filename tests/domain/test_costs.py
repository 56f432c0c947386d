"""The cost estimate: each kind of token at its own price per million, searches per query."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.costs import Prices, TokenUse

PRICES = Prices(input=0.5, output=3.0, thinking=3.0, tts=10.0, search=0.014)
counts = st.integers(min_value=0, max_value=10**9)
uses = st.builds(TokenUse, counts, counts, counts, counts, st.integers(0, 1000))


def test_each_kind_is_priced_per_million_and_searches_per_query() -> None:
    use = TokenUse(prompt=2_000_000, output=1_000_000, thinking=500_000, tts=100_000, searches=3)
    # $1 input + $3 output + $1.50 thinking + $1 speech + 3 x $0.014
    assert use.cost(PRICES) == pytest.approx(6.542)
    assert use.tokens == 3_600_000


def test_nothing_used_costs_nothing() -> None:
    assert TokenUse().cost(PRICES) == 0
    assert TokenUse(prompt=1000).cost(Prices(0, 0, 0, 0, 0)) == 0


@given(uses, uses)
def test_costs_add_up_like_their_uses(first: TokenUse, second: TokenUse) -> None:
    together = (first + second).cost(PRICES)
    assert together == pytest.approx(first.cost(PRICES) + second.cost(PRICES))
    assert (first + second).tokens == first.tokens + second.tokens
