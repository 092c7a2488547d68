"""Which Azure Databricks regions offer the Databricks features the stack's options use.

Source: Microsoft Learn, "Features with limited regional availability"
(https://learn.microsoft.com/azure/databricks/resources/feature-region-support),
read 2026-12-05. The en-us copy that could be read that day was cut off in its first
table; the "System tables availability" table was read whole up to ``westindia`` in the
same page's zh-cn copy (https://learn.microsoft.com/zh-cn/azure/databricks/resources/feature-region-support,
region names and check marks are not translated). The "Serverless availability" and
"Model serving feature availability" tables (serverless compute for notebooks and jobs;
core Model Serving, external models) could not be read that day: no region is recorded
as offering those features, so the gateway and serverless compute are refused in every
region until someone who can read those tables adds their cells here. A region or a
feature missing from :data:`REGION_FEATURES` is treated as not offered: a cell nobody
read is never guessed.

One table for everything that asks: the program (a pinned region before anything is
registered, a drawn one right after the draw), ``plan`` and ``preflight``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from llmops_infra.stack.config import LlmopsConfig

__all__ = [
    "FEATURE_LABELS",
    "REGION_FEATURES",
    "Feature",
    "feature_keys",
    "missing_features",
    "needed_features",
    "region_problem",
    "unusable_regions",
]

Feature = Literal["model_serving", "external_models", "system_tables", "serverless_jobs"]

#: How messages and docs name each feature.
FEATURE_LABELS: Final[Mapping[Feature, str]] = MappingProxyType(
    {
        "model_serving": "Model Serving",
        "external_models": "external models",
        "system_tables": "system tables",
        "serverless_jobs": "serverless jobs",
    }
)

# "System tables availability", read 2026-12-05: every region below has the check mark.
# Left out because their cell is empty: chinaeast2, chinaeast3, chinanorth2, chinanorth3,
# switzerlandwest, westindia. Left out because the text read ended before them: westus,
# westus2, westus3 and any region after westindia in the table.
_SYSTEM_TABLES: Final = (
    "australiacentral", "australiacentral2", "australiaeast", "australiasoutheast",
    "brazilsouth", "canadacentral", "canadaeast", "centralindia", "centralus", "eastasia",
    "eastus", "eastus2", "francecentral", "germanywestcentral", "japaneast", "japanwest",
    "koreacentral", "mexicocentral", "northcentralus", "northeurope", "norwayeast",
    "qatarcentral", "southafricanorth", "southcentralus", "southeastasia", "southindia",
    "swedencentral", "switzerlandnorth", "uaenorth", "uksouth", "ukwest", "westcentralus",
    "westeurope",
)  # fmt: skip

# "Serverless availability" (serverless compute for notebooks and jobs) and "Model serving
# feature availability" (core Model Serving, external models): not read (see the module
# docstring), so no region is listed for serverless_jobs, model_serving or external_models.

#: Region -> the features of :data:`Feature` it offers; a region not listed offers none.
REGION_FEATURES: Final[Mapping[str, frozenset[Feature]]] = MappingProxyType(
    {region: frozenset({"system_tables"}) for region in _SYSTEM_TABLES}
)


def missing_features(region: str, needed: Iterable[Feature]) -> tuple[Feature, ...]:
    """The features of ``needed`` that ``region`` does not offer, in ``needed``'s order."""
    offered = REGION_FEATURES.get(region, frozenset())
    return tuple(feature for feature in needed if feature not in offered)


def feature_keys(config: LlmopsConfig) -> dict[Feature, str]:
    """Each feature the configuration needs -> the setting that needs it (``llmops:key=value``)."""
    keys: dict[Feature, str] = {}
    if config.gateway:
        # The gateway is a serving endpoint with an external model; its usage tracking
        # writes to system.serving.endpoint_usage, a system table.
        for feature in ("model_serving", "external_models", "system_tables"):
            keys[feature] = "llmops:gateway=true"
    if config.compute == "serverless":
        keys["serverless_jobs"] = "llmops:compute=serverless"
    return keys


def needed_features(config: LlmopsConfig) -> tuple[Feature, ...]:
    """The Databricks features the configuration uses, in a fixed order."""
    return tuple(feature_keys(config))


def region_problem(config: LlmopsConfig, region: str) -> str | None:
    """Why ``region`` cannot host this configuration, in one line, or None when it can."""
    missing = missing_features(region, needed_features(config))
    if not missing:
        return None
    keys = feature_keys(config)
    needs = sorted({keys[feature] for feature in missing})
    verb = "needs" if len(needs) == 1 else "need"
    return (
        f"region {region} does not offer {', '.join(FEATURE_LABELS[f] for f in missing)}, "
        f'which {" and ".join(needs)} {verb} (Microsoft Learn, "Features with limited regional '
        'availability"; the table is llmops_infra/stack/region_features.py): run '
        "`python -m llmops_infra preflight --pin` to pin an allowed region that offers them, "
        "or turn the option off"
    )


def unusable_regions(config: LlmopsConfig) -> dict[str, tuple[Feature, ...]]:
    """The allowed regions this configuration cannot use -> what each lacks."""
    needed = needed_features(config)
    return {
        region: missing
        for region in config.allowed_regions
        if (missing := missing_features(region, needed))
    }
