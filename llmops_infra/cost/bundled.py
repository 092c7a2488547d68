"""The dated price table shipped with the project, for when the Retail Prices API cannot be
reached (no network, as in CI): items in the API's own shape, so the same :func:`pick`
chooses among them.

Only prices read from a public source are here; every other meter stays out and prices as
``unknown`` offline (never a guess, never another region's price). Source of every row:
the Azure Retail Prices API's answer for ``serviceName eq 'Foundry Models' and productName
eq 'Azure OpenAI' and priceType eq 'Consumption'``, retrieved 2026-09-30, as recorded in
microsoft/mosaic-apim ``apps/api/src/mosaic_api/data/model_prices.json`` (commit
5b94fe72d028c724b71ac0ebe1dcf49bf04663c3: gpt-4o 2024-11-20 Standard, USD per million
tokens: eastus2 and northcentralus input 2.75, output 11.0; swedencentral 3.025 and 12.1;
switzerlandwest not listed). The API prices these meters per ``1K`` tokens.

Not found in a citable public source, hence absent: the ``Standard_D4ds_v5`` Linux VM per
region, the Premium DBU prices per region, the serverless DBU price.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["AS_OF", "ITEMS"]

#: The day the prices below were read from the API.
AS_OF: Final = "2026-09-30"


def _tokens(region: str, meter: str, per_million: float) -> dict[str, Any]:
    return {
        "serviceName": "Foundry Models",
        "productName": "Azure OpenAI",
        "armRegionName": region,
        "meterName": meter,
        "skuName": meter.removesuffix(" Tokens"),
        "armSkuName": "",
        "type": "Consumption",
        "unitOfMeasure": "1K",
        "retailPrice": round(per_million / 1000, 9),
        "currencyCode": "USD",
    }


ITEMS: Final[tuple[dict[str, Any], ...]] = tuple(
    _tokens(region, meter, price)
    for region, prices in {
        "eastus2": (2.75, 11.0),
        "northcentralus": (2.75, 11.0),
        "swedencentral": (3.025, 12.1),
    }.items()
    for meter, price in zip(
        ("gpt 4o 1120 Inp regnl Tokens", "gpt 4o 1120 Outp regnl Tokens"), prices, strict=True
    )
)
