"""How a cloud's name appears in the Dagster definitions: its asset keys and its OnApp resource's key."""

from collections.abc import Mapping

from pipeline.clouds.config import DEFAULT_CLOUD, asset_safe


def onapp_key(cloud: str) -> str:
    """The resource key of the cloud's OnApp resource: `onapp` for the cloud 'default', else onapp_<name>."""
    return "onapp" if cloud == DEFAULT_CLOUD else f"onapp_{asset_safe(cloud)}"


def asset_prefix(cloud: str) -> list[str]:
    """The key prefix of the cloud's API assets: none for 'default' (vm_list), else its name (eu/vm_list)."""
    return [] if cloud == DEFAULT_CLOUD else [asset_safe(cloud)]


def cloud_names(resources: Mapping[str, object]) -> list[str]:
    """The clouds the resources configure, each an OnApp resource, in name order."""
    from pipeline.defs.resources import OnAppResource

    return sorted(r.cloud for r in resources.values() if isinstance(r, OnAppResource))
