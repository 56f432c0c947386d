"""What an answer costs, estimated: the tokens and searches it used, at the configured prices."""

from __future__ import annotations

from dataclasses import dataclass

MILLION = 1_000_000


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per million tokens of each kind, and per search (Google Search grounding)."""

    input: float
    output: float
    thinking: float
    tts: float
    search: float


@dataclass(frozen=True, slots=True)
class TokenUse:
    """What one message's answer used; added up per day and per user."""

    prompt: int = 0
    output: int = 0
    thinking: int = 0
    tts: int = 0
    searches: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt + self.output + self.thinking + self.tts

    def __add__(self, other: TokenUse) -> TokenUse:
        return TokenUse(
            self.prompt + other.prompt,
            self.output + other.output,
            self.thinking + other.thinking,
            self.tts + other.tts,
            self.searches + other.searches,
        )

    def cost(self, prices: Prices) -> float:
        """The estimate in USD (Google's bill is the truth: see docs/costs.md)."""
        per_token = (
            self.prompt * prices.input
            + self.output * prices.output
            + self.thinking * prices.thinking
            + self.tts * prices.tts
        ) / MILLION
        return per_token + self.searches * prices.search


NOTHING_USED = TokenUse()
