"""What Gemini work costs, estimated: the tokens and searches it used, at the configured prices."""

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
    embedding: float = 0.0  # File Search indexing


@dataclass(frozen=True, slots=True)
class TokenUse:
    """What one message's answer used (or indexing a document: `embedding`); added up per day,
    and an answer's per user."""

    prompt: int = 0
    output: int = 0
    thinking: int = 0
    tts: int = 0
    searches: int = 0
    embedding: int = 0

    @property
    def tokens(self) -> int:
        """An answer's tokens (what USER_DAILY_TOKEN_LIMIT counts); indexing is no one's."""
        return self.prompt + self.output + self.thinking + self.tts

    def __add__(self, other: TokenUse) -> TokenUse:
        return TokenUse(
            self.prompt + other.prompt,
            self.output + other.output,
            self.thinking + other.thinking,
            self.tts + other.tts,
            self.searches + other.searches,
            self.embedding + other.embedding,
        )

    def cost(self, prices: Prices) -> float:
        """The estimate in USD (Google's bill is the truth: see docs/costs.md)."""
        per_token = (
            self.prompt * prices.input
            + self.output * prices.output
            + self.thinking * prices.thinking
            + self.tts * prices.tts
            + self.embedding * prices.embedding
        ) / MILLION
        return per_token + self.searches * prices.search


NOTHING_USED = TokenUse()

# File Search does not report the tokens it embeds; a document is estimated at one token per
# this many bytes (about right for text in English; more than a PDF's or an office file's text).
BYTES_PER_EMBEDDING_TOKEN = 4


def indexing_use(size_bytes: int) -> TokenUse:
    """What indexing a document of this size is estimated to embed."""
    return TokenUse(embedding=-(-max(size_bytes, 0) // BYTES_PER_EMBEDDING_TOKEN))
