"""What a model call cost, in US dollars.

In order: the cost the provider reported with the response (OpenRouter sends `usage.cost`),
a price the user set for the model (`Session(prices={"my-model": (0.15, 0.60)})`, USD per
million input and output tokens), else pydantic's maintained price table (`genai-prices`,
shipped with its data: no network). A model found nowhere costs `None`, with the reason kept.
Rates are looked up once per model and applied linearly (tiered prices above a context size
are not modelled).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from ..core.errors import ConfigurationError

__all__ = ["Price", "Pricer", "check_prices"]

PER_TOKEN = 1e-6  # prices are given per million tokens


@dataclass(frozen=True)
class Price:
    """USD per million input and output tokens of one model, and where that came from."""

    input_per_mtok: float
    output_per_mtok: float
    source: str

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_mtok
                + completion_tokens * self.output_per_mtok) * PER_TOKEN


class Pricer:
    """Prices of the models one session uses; thread-safe, each model looked up once."""

    def __init__(self, overrides: Mapping[str, tuple[float, float]] | None = None) -> None:
        self._lock = threading.Lock()
        self._known: dict[str, Price | None] = {
            model: Price(float(i), float(o), "settings")
            for model, (i, o) in check_prices(overrides or {}).items()
        }
        self.unknown_reason: dict[str, str] = {}

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int,
             reported: float | None = None) -> float | None:
        """The call's cost in USD: the provider's figure when it sent one, else priced."""
        if reported is not None and math.isfinite(reported) and reported >= 0:
            return float(reported)
        price = self.price(model)
        return None if price is None else price.cost(prompt_tokens, completion_tokens)

    def price(self, model: str) -> Price | None:
        with self._lock:
            if model in self._known:
                return self._known[model]
        found = _from_table(model)
        with self._lock:
            if isinstance(found, str):
                self.unknown_reason[model] = found
                self._known[model] = None
                return None
            self._known[model] = found
            return found


def _from_table(model: str) -> Price | str:
    try:
        from genai_prices import Usage, calc_price
    except ImportError:
        return "genai-prices is not installed"
    try:
        per_in = calc_price(Usage(input_tokens=1_000_000, output_tokens=0), model)
        per_out = calc_price(Usage(input_tokens=0, output_tokens=1_000_000), model)
    except LookupError:
        return (f"no price known for model {model!r}: set one with "
                f"prices={{{model!r}: (input_usd_per_mtok, output_usd_per_mtok)}}")
    return Price(float(per_in.total_price), float(per_out.total_price),
                 f"genai-prices ({per_in.provider.id})")


def check_prices(prices: Mapping[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Validate `{model: (input_usd_per_mtok, output_usd_per_mtok)}`."""
    if not isinstance(prices, Mapping):
        raise ConfigurationError(f"Bad prices {prices!r}: pass a dict like "
                                 "{'my-model': (0.15, 0.60)} (USD per million tokens).")
    out = {}
    for model, pair in prices.items():
        ok = (isinstance(model, str) and isinstance(pair, tuple | list) and len(pair) == 2
              and all(isinstance(v, int | float) and not isinstance(v, bool)
                      and math.isfinite(v) and v >= 0 for v in pair))
        if not ok:
            raise ConfigurationError(f"Bad price for {model!r}: {pair!r}; use (input, output) "
                                     "USD per million tokens, two numbers ≥ 0.")
        out[model] = (float(pair[0]), float(pair[1]))
    return out
