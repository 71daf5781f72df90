"""Imported once by the multiprocess executor's forkserver: what every step process needs before its step runs.

A step process forks from the forkserver and opens the Dagster instance first. Opening it imported the
instance's storage classes (SQLAlchemy, Alembic and about 500 modules for the default SQLite storage) in
every step process: 0.8 s a step, on the critical path of every step after the first. Imported here, they
are in every forked process already. Only modules are imported: the forkserver opens no instance, no
database and no thread, so nothing that cannot cross a fork is there when it forks.
"""

import importlib
import os

from dagster._core.instance.ref import InstanceRef

# What opening an instance imports whatever its storage: DagsterInstance.from_ref's own modules.
OPENING_MODULES = ("dagster._core.instance.factory", "dagster._core.secrets.loader",
                   "dagster._core.storage.migration.utils")


def import_instance_classes(home: str) -> None:
    """Import the classes the instance at home is configured with (its dagster.yaml), without creating any."""
    ref = InstanceRef.from_dir(home)
    configured = (ref.storage_data, ref.run_storage_data, ref.event_storage_data, ref.schedule_storage_data,
                  ref.compute_logs_data, ref.local_artifact_storage_data, ref.run_coordinator_data,
                  ref.run_launcher_data, ref.secrets_loader_data)
    for data in configured:
        if data is not None:
            getattr(importlib.import_module(data.module_name), data.class_name)


for _module in OPENING_MODULES:
    importlib.import_module(_module)
# Without DAGSTER_HOME there is no instance a step process could open (multiprocess runs need one).
if os.environ.get("DAGSTER_HOME"):
    import_instance_classes(os.environ["DAGSTER_HOME"])
