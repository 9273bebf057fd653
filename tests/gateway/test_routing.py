"""Data classes and the policy: confidential data never reaches a forbidden model."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from allo.errors import InvalidInputError, PolicyRefusal
from allo.gateway.call import DocumentUse
from allo.gateway.classification import classify, document_class, pii_class
from allo.gateway.config import (
    DataClass,
    DataLocation,
    GatewaySettings,
    ModelSpec,
    ProviderKind,
)
from allo.gateway.routing import chain_of, route


def gateway_settings() -> GatewaySettings:
    return GatewaySettings(
        models=[
            ModelSpec(name="extractive", provider=ProviderKind.EXTRACTIVE),
            ModelSpec(
                name="cloud",
                provider=ProviderKind.OPENAI,
                model="gpt-x",
                base_url="https://api.example/v1",
                location=DataLocation.EXTERNAL,
            ),
            ModelSpec(
                name="inhouse",
                provider=ProviderKind.OPENAI,
                model="qwen",
                base_url="http://10.0.0.5:8000/v1",
                location=DataLocation.SOVEREIGN,
            ),
        ],
        default_model="cloud",
        fallbacks={"cloud": ["inhouse", "extractive"]},
    )


def test_document_tags_set_the_class_case_insensitively() -> None:
    config = gateway_settings()
    assert document_class(["Confidentiel"], config) is DataClass.CONFIDENTIAL
    assert document_class(["faq", "INTERNE"], config) is DataClass.INTERNAL
    assert document_class(["faq"], config) is DataClass.PUBLIC
    stricter = config.model_copy(update={"untagged": DataClass.INTERNAL})
    assert document_class([], stricter) is DataClass.INTERNAL


def test_payment_and_identity_numbers_make_a_request_confidential() -> None:
    assert pii_class(["IBAN"]) is DataClass.CONFIDENTIAL
    assert pii_class(["NIR", "PHONE"]) is DataClass.CONFIDENTIAL
    assert pii_class(["PHONE"]) is DataClass.INTERNAL
    assert pii_class([]) is DataClass.PUBLIC


def test_the_most_sensitive_source_wins() -> None:
    config = gateway_settings()
    docs = (DocumentUse("d1", ("faq",)), DocumentUse("d2", ("interne",)))
    assert classify(docs, [], config) is DataClass.INTERNAL
    assert classify(docs, ["CARD"], config) is DataClass.CONFIDENTIAL
    assert classify((), [], config) is DataClass.PUBLIC


def test_confidential_data_skips_the_external_model_by_default() -> None:
    chosen = route(None, DataClass.CONFIDENTIAL, gateway_settings())
    assert [spec.name for spec in chosen.allowed] == ["inhouse", "extractive"]
    assert [spec.name for spec in chosen.forbidden] == ["cloud"]
    assert [spec.name for spec in route(None, DataClass.PUBLIC, gateway_settings()).allowed] == [
        "cloud",
        "inhouse",
        "extractive",
    ]


def test_no_allowed_model_is_a_clear_refusal_not_a_downgrade() -> None:
    with pytest.raises(PolicyRefusal, match=r"confidential data.*local, sovereign"):
        route(
            "cloud", DataClass.CONFIDENTIAL, gateway_settings().model_copy(update={"fallbacks": {}})
        )


def test_a_stricter_policy_is_obeyed() -> None:
    config = gateway_settings().model_copy(
        update={"policy": {DataClass.INTERNAL: [DataLocation.LOCAL]}}
    )
    assert [spec.name for spec in route(None, DataClass.INTERNAL, config).allowed] == ["extractive"]
    with pytest.raises(PolicyRefusal):
        route("inhouse", DataClass.INTERNAL, config)


def test_unknown_model_names_the_declared_ones() -> None:
    with pytest.raises(InvalidInputError, match=r"unknown model 'gpt-9'.*extractive, cloud"):
        chain_of("gpt-9", gateway_settings())


@pytest.mark.parametrize(
    ("update", "problem"),
    [
        ({"default_model": "nope"}, "default_model"),
        ({"fallbacks": {"cloud": ["ghost"]}}, "unknown model 'ghost'"),
    ],
)
def test_inconsistent_gateway_settings_are_refused_at_load(
    update: dict[str, object], problem: str
) -> None:
    raw = gateway_settings().model_dump()
    raw.update(update)
    with pytest.raises(ValidationError, match=problem):
        GatewaySettings.model_validate(raw)


def test_model_declarations_are_checked() -> None:
    with pytest.raises(ValidationError, match="base_url"):
        ModelSpec(name="x", provider=ProviderKind.OPENAI, model="m")
    with pytest.raises(ValidationError, match="run locally"):
        ModelSpec(
            name="x",
            provider=ProviderKind.LOCAL,
            packaged="qwen2.5-coder-0.5b",
            location=DataLocation.EXTERNAL,
        )
    with pytest.raises(ValidationError, match="gguf_path or packaged"):
        ModelSpec(name="x", provider=ProviderKind.LOCAL)
    with pytest.raises(ValidationError, match="repeated: a"):
        GatewaySettings(
            models=[
                ModelSpec(name="a", provider=ProviderKind.EXTRACTIVE),
                ModelSpec(name="a", provider=ProviderKind.EXTRACTIVE),
            ],
            default_model="a",
        )
