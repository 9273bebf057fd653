"""Which models may serve a call, in which order: the chain, filtered by the data policy.

The chain is the requested model followed by its configured fallbacks. Models whose
location the policy forbids for the call's data class are dropped, never used "just this
once"; when nothing is left the call is refused with a message naming the class and the
locations that would be allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

from allo.errors import InvalidInputError, PolicyRefusal
from allo.gateway.config import DataClass, GatewaySettings, ModelSpec


@dataclass(frozen=True, slots=True)
class Route:
    """The models to try in order, and those the policy removed from the chain."""

    allowed: tuple[ModelSpec, ...]
    forbidden: tuple[ModelSpec, ...]


def chain_of(model: str | None, settings: GatewaySettings) -> list[ModelSpec]:
    """The requested model (or the default) and its fallbacks, without repeats."""
    name = model or settings.default_model
    first = settings.spec(name)
    if first is None:
        known = ", ".join(spec.name for spec in settings.models)
        raise InvalidInputError(f"unknown model {name!r}; declared models: {known}")
    chain = [first]
    for fallback in settings.fallbacks.get(first.name, []):
        spec = settings.spec(fallback)
        if spec is not None and spec not in chain:
            chain.append(spec)
    return chain


def route(model: str | None, data_class: DataClass, settings: GatewaySettings) -> Route:
    """The allowed chain for ``data_class``; ``PolicyRefusal`` when it is empty."""
    chain = chain_of(model, settings)
    permitted = settings.policy.get(data_class, [])
    allowed = tuple(spec for spec in chain if spec.location in permitted)
    forbidden = tuple(spec for spec in chain if spec.location not in permitted)
    if not allowed:
        names = ", ".join(f"{spec.name} ({spec.location})" for spec in chain)
        places = ", ".join(str(location) for location in permitted) or "none"
        raise PolicyRefusal(
            f"this request carries {data_class} data, which the policy lets reach only "
            f"{places} models; the requested chain has none ({names}). Ask with a model of "
            "an allowed kind, or remove the sensitive documents or personal data"
        )
    return Route(allowed, forbidden)
