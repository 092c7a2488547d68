"""Which Azure Databricks regions offer the Databricks features the stack's options use.

Source: Microsoft Learn, "Features with limited regional availability"
(https://learn.microsoft.com/azure/databricks/resources/feature-region-support),
read 2026-12-05. The en-us copy that could be read that day was cut off in its first
table; the "System tables availability" table was read whole up to ``westindia`` in the
same page's zh-cn copy (https://learn.microsoft.com/zh-cn/azure/databricks/resources/feature-region-support,
region names and check marks are not translated). The "Serverless availability" and
"Model serving feature availability" tables (serverless compute for notebooks and jobs;
core Model Serving, Foundation Model API pay-per-token, external models) could not be read
that day, nor on 2026-12-07 (the search tool gives only the page's opening).

Serverless jobs follow, until Learn's table is read, the lab publisher's own list: the
serverless edition's setup script (below, beside the cells). AI Guardrails are offered only
in the regions with Foundation Model APIs pay-per-token (Databricks' AI Gateway page,
https://learn.microsoft.com/azure/databricks/ai-gateway/, as the project's review quoted it;
its text could not be read here), whose column of the Learn table was not read either: no
guardrail cell is recorded.

So each cell is one of three things, and none is guessed: offered (read, with the check
mark: :data:`REGION_FEATURES`), lacking (read, empty: a region in :data:`READ_CELLS` for
that feature but not offering it), or not confirmed (not read). A lacking feature stops
the program and keeps a region out of a first draw; one not confirmed does neither
(refusing the gateway everywhere because a page could not be read would serve nobody): the
program warns, naming the page to check, and ``plan`` and ``preflight`` say so beside the
region. Adding a table's cells here turns those warnings into the rule.

One table for everything that asks: the program (a pinned region before anything is
registered, the regions a first draw picks from, a drawn one right after the draw),
``plan`` and ``preflight``.
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
    "draw_candidates",
    "draw_problem",
    "feature_keys",
    "missing_features",
    "needed_features",
    "region_problem",
    "region_warning",
    "unconfirmed_features",
    "unusable_regions",
]

Feature = Literal[
    "model_serving", "external_models", "system_tables", "ai_guardrails", "serverless_jobs"
]

#: How messages and docs name each feature.
FEATURE_LABELS: Final[Mapping[Feature, str]] = MappingProxyType(
    {
        "model_serving": "Model Serving",
        "external_models": "external models",
        "system_tables": "system tables",
        "ai_guardrails": "AI Guardrails",
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

# Read, and empty: these regions lack system tables.
_NO_SYSTEM_TABLES: Final = (
    "chinaeast2", "chinaeast3", "chinanorth2", "chinanorth3", "switzerlandwest", "westindia",
)  # fmt: skip

# Serverless compute for notebooks and jobs: Learn's "Serverless availability" table was not
# read. Until it is, the rule is the lab publisher's own list, in the setup script of the
# serverless edition of these labs: MicrosoftLearning/mslearn-databricks,
# setup-serverless.ps1 at commit 2076e18a4b713a0cc3afbb173606c7e6cd46c3d6, "These regions
# support Serverless compute for notebooks, jobs, pipelines, and SQL warehouses". Every
# region below is on that list, as written there.
_SERVERLESS: Final = (
    "australiaeast", "australiasoutheast", "brazilsouth", "canadacentral", "canadaeast",
    "centralindia", "centralus", "eastasia", "eastus", "eastus2", "francecentral",
    "japaneast", "koreacentral", "mexicocentral", "northcentralus", "northeurope",
    "norwayeast", "southafricanorth", "southcentralus", "southeastasia", "swedencentral",
    "switzerlandnorth", "uaenorth", "uksouth", "westcentralus", "westeurope", "westus",
    "westus2", "westus3",
)  # fmt: skip

# Off that list, and read as lacking: the lab's one region the list leaves out. Other
# regions off the list stay not confirmed: a secondary source's silence is taken as "no"
# only for the lab's own four regions, the default draw.
_NO_SERVERLESS: Final = ("switzerlandwest",)

# "Model serving feature availability" (core Model Serving, external models, and the
# Foundation Model API pay-per-token column AI Guardrails follow): not read, so no region is
# listed for model_serving, external_models or ai_guardrails.

# Feature -> the regions read to offer it.
_OFFERED: Final[Mapping[Feature, tuple[str, ...]]] = {
    "system_tables": _SYSTEM_TABLES,
    "serverless_jobs": _SERVERLESS,
}

#: Region -> the features of :data:`Feature` it offers, as read (a check mark, or on a list).
REGION_FEATURES: Final[Mapping[str, frozenset[Feature]]] = MappingProxyType(
    {
        region: frozenset(f for f, regions in _OFFERED.items() if region in regions)
        for region in sorted({r for regions in _OFFERED.values() for r in regions})
    }
)

#: Feature -> the regions whose cell for it was read (with a check mark or empty). A
#: region read and not offering the feature lacks it; a region not read is unconfirmed.
READ_CELLS: Final[Mapping[Feature, frozenset[str]]] = MappingProxyType(
    {
        "system_tables": frozenset(_SYSTEM_TABLES + _NO_SYSTEM_TABLES),
        "model_serving": frozenset(),
        "external_models": frozenset(),
        "ai_guardrails": frozenset(),
        "serverless_jobs": frozenset(_SERVERLESS + _NO_SERVERLESS),
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
    if config.gateway_guardrails:
        # AI Guardrails run only where Foundation Model APIs pay-per-token do (AI Gateway page).
        keys["ai_guardrails"] = "llmops:gatewayGuardrails=true"
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
        f"which {' and '.join(needs)} {verb} (the table of features by region, with its "
        "sources: llmops_infra/stack/region_features.py): run "
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


def draw_candidates(config: LlmopsConfig) -> tuple[str, ...]:
    """The allowed regions a first draw picks from, in their order: every one that is not
    read to lack a feature the configuration needs. A cell not confirmed keeps its region
    in, as it does not stop ``up`` either; with no option that any allowed region lacks,
    this is ``allowedRegions`` itself (the lab's draw, unchanged)."""
    unusable = unusable_regions(config)
    return tuple(region for region in config.allowed_regions if region not in unusable)


def draw_problem(config: LlmopsConfig) -> str | None:
    """Why no region can be drawn (every allowed region lacks something the configuration
    needs), in one line, or None when one can."""
    if draw_candidates(config):
        return None
    unusable = unusable_regions(config)
    keys = feature_keys(config)
    needs = sorted({keys[feature] for missing in unusable.values() for feature in missing})
    lacks = "; ".join(
        f"{region} lacks {', '.join(FEATURE_LABELS[f] for f in missing)}"
        for region, missing in unusable.items()
    )
    return (
        f"no region of llmops:allowedRegions offers what {' and '.join(needs)} "
        f"{'needs' if len(needs) == 1 else 'need'} on Azure Databricks ({lacks}; the table "
        "is llmops_infra/stack/region_features.py): add a region that offers it to "
        "llmops:allowedRegions, or turn the option off"
    )
