"""Which Azure Databricks regions offer the Databricks features the stack's options use.

Source: Microsoft Learn, "Features with limited regional availability"
(https://learn.microsoft.com/azure/databricks/resources/feature-region-support),
read 2026-12-05. The en-us copy that could be read that day was cut off in its first
table; the "System tables availability" table was read whole up to ``westindia`` in the
same page's zh-cn copy (https://learn.microsoft.com/zh-cn/azure/databricks/resources/feature-region-support,
region names and check marks are not translated). The "Serverless availability" and
"Model serving feature availability" tables (serverless compute for notebooks and jobs;
core Model Serving, external models) could not be read that day.

So each cell is one of three things, and none is guessed: offered (read, with the check
mark: :data:`REGION_FEATURES`), lacking (read, empty: a region in :data:`READ_CELLS` for
that feature but not offering it), or not confirmed (not read). A lacking feature stops
the program; one not confirmed does not (refusing the gateway and serverless compute in
every region because a page could not be read would serve nobody): the program warns,
naming the page to check, and ``plan`` and ``preflight`` say so beside the region. Adding
a table's cells here turns those warnings into the rule.

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
    "READ_CELLS",
    "REGION_FEATURES",
    "Feature",
    "feature_keys",
    "missing_features",
    "needed_features",
    "region_problem",
    "region_warning",
    "unconfirmed_features",
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

# Read, and empty: these regions lack system tables.
_NO_SYSTEM_TABLES: Final = (
    "chinaeast2", "chinaeast3", "chinanorth2", "chinanorth3", "switzerlandwest", "westindia",
)  # fmt: skip

#: Region -> the features of :data:`Feature` it offers, as read (a check mark).
REGION_FEATURES: Final[Mapping[str, frozenset[Feature]]] = MappingProxyType(
    {region: frozenset({"system_tables"}) for region in _SYSTEM_TABLES}
)

#: Feature -> the regions whose cell for it was read (with a check mark or empty). A
#: region read and not offering the feature lacks it; a region not read is unconfirmed.
READ_CELLS: Final[Mapping[Feature, frozenset[str]]] = MappingProxyType(
    {
        "system_tables": frozenset(_SYSTEM_TABLES + _NO_SYSTEM_TABLES),
        "model_serving": frozenset(),
        "external_models": frozenset(),
        "serverless_jobs": frozenset(),
    }
)


def _offers(region: str, feature: Feature) -> bool:
    return feature in REGION_FEATURES.get(region, frozenset())


def missing_features(region: str, needed: Iterable[Feature]) -> tuple[Feature, ...]:
    """The features of ``needed`` that ``region`` is read to lack, in ``needed``'s order."""
    return tuple(
        feature
        for feature in needed
        if not _offers(region, feature) and region in READ_CELLS.get(feature, frozenset())
    )


def unconfirmed_features(region: str, needed: Iterable[Feature]) -> tuple[Feature, ...]:
    """The features of ``needed`` whose cell for ``region`` was not read, in order."""
    return tuple(
        feature
        for feature in needed
        if not _offers(region, feature) and region not in READ_CELLS.get(feature, frozenset())
    )


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


def region_warning(config: LlmopsConfig, region: str) -> str | None:
    """What could not be confirmed for ``region`` from the table, in one line, or None."""
    unconfirmed = unconfirmed_features(region, needed_features(config))
    if not unconfirmed:
        return None
    return (
        f"whether region {region} offers "
        f"{', '.join(FEATURE_LABELS[f] for f in unconfirmed)} on Azure Databricks is not "
        "confirmed (those cells of Microsoft Learn's \"Features with limited regional "
        'availability" were not recorded in llmops_infra/stack/region_features.py): check '
        "https://learn.microsoft.com/azure/databricks/resources/feature-region-support "
        "before relying on it"
    )


def unusable_regions(config: LlmopsConfig) -> dict[str, tuple[Feature, ...]]:
    """The allowed regions this configuration cannot use -> what each lacks."""
    needed = needed_features(config)
    return {
        region: missing
        for region in config.allowed_regions
        if (missing := missing_features(region, needed))
    }
