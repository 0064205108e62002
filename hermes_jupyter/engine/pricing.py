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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..core.errors import ConfigurationError
from ..core.models import Usage

__all__ = ["Price", "Pricer", "Spend", "budget_spent", "check_prices", "total_cost"]

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
            raise ConfigurationError(f"Bad prices entry {model!r}: {pair!r}; use "
                                     "{'model': (input, output)}, USD per million tokens, two "
                                     "numbers ≥ 0.")
        out[model] = (float(pair[0]), float(pair[1]))
    return out


def total_cost(usages: Iterable[Usage]) -> tuple[float, int]:
    """The known cost of `usages` in USD, and how many of them made calls of unknown cost."""
    total, unknown = 0.0, 0
    for usage in usages:
        if usage.cost_usd is not None:
            total += usage.cost_usd
        elif usage.api_calls:
            unknown += 1
    return total, unknown


class Spend:
    """The known cost (USD) of every call a session's tasks made, summed as calls are priced:
    O(1) to read however many tasks ran, and forgetting a task (`keep_finished`) refunds
    nothing. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = 0.0

    def add(self, cost_usd: float) -> None:
        with self._lock:
            self._total += cost_usd

    @property
    def total(self) -> float:
        with self._lock:
            return self._total


def budget_spent(spent: float, budget: float | None) -> str | None:
    """The one line that refuses new work once `spent` reaches `budget` (None: no budget)."""
    if budget is None or spent < budget:
        return None
    return (f"The session budget is spent (${spent:.4f} of session_budget_usd={budget:g}): no "
            "new task starts; raise the budget or make a new Session.")
