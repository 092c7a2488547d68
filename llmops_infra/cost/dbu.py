"""Databricks Units per hour of a cluster node, by Azure VM size.

The Retail Prices API prices a DBU; how many DBUs an hour a node burns is Databricks'
own table, on Azure's pricing page for Azure Databricks
(https://azure.microsoft.com/pricing/details/databricks/, all-purpose compute, "DBU
count" per instance). The rows below are that page's values as recorded in
microsoft/LakeBench ``src/lakebench/engines/databricks_azure_dbu_map.py`` (commit
675feeef86a830af9dfd5a893288290884fe28ab, generated from that page): Photon off, as the
lab's cluster runs. A size not listed prices its DBUs as ``unknown``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = ["DBU_PER_HOUR", "PRICING_PAGE"]

PRICING_PAGE: Final = "https://azure.microsoft.com/pricing/details/databricks/"

#: DBUs per node-hour, all-purpose compute, by ``nodeType``.
DBU_PER_HOUR: Final[Mapping[str, float]] = MappingProxyType(
    {
        "Standard_D4ds_v5": 1.0,
        "Standard_D8ds_v5": 2.0,
        "Standard_D16ds_v5": 4.0,
        "Standard_D32ds_v5": 8.0,
        "Standard_D4s_v5": 1.0,
        "Standard_D8s_v5": 2.0,
        "Standard_D16s_v5": 4.0,
        "Standard_D4ads_v5": 1.0,
        "Standard_D8ads_v5": 2.0,
        "Standard_D4ds_v4": 0.75,
        "Standard_D8ds_v4": 1.5,
        "Standard_D4s_v3": 0.75,
        "Standard_D8s_v3": 1.5,
        "Standard_DS3_v2": 0.75,
        "Standard_DS4_v2": 1.5,
        "Standard_DS5_v2": 3.0,
        "Standard_E4ds_v4": 1.0,
    }
)
