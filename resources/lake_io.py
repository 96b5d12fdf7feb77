"""IO manager that keeps every asset partition as one Parquet file in the lake, checked against its
table contract (``spoton.storage.schemas``) on the way in and on the way out."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
from dagster import ConfigurableIOManager, InputContext, MultiPartitionKey, OutputContext

from resources.store import ObjectStoreResource
from spoton.storage.lake import ParquetLake
from spoton.storage.schemas import table_contract
from spoton.storage.store import StoreError


class ParquetLakeIOManager(ConfigurableIOManager):
    """Arrow tables in, Arrow tables out; re-materializing a partition replaces its file. A table
    whose columns or types are not its contract's is refused, on write and on read, with a
    :class:`spoton.storage.schemas.TableContractError` naming the column.

    An environment-level asset loading a segment-level one gets the
    concatenation of the segments that exist; missing ones (a corrupt
    sub-video whose partition failed) are skipped and logged, not fatal.
    """

    store: ObjectStoreResource

    def _lake(self) -> ParquetLake:
        return ParquetLake(self.store.get_store())

    def handle_output(self, context: OutputContext, obj: pa.Table | pd.DataFrame | None) -> None:
        if obj is None:
            return
        contract = table_contract(context.asset_key.path[-1])
        table = contract.check(obj) if isinstance(obj, pa.Table) else contract.table(obj)
        environment, segment = _partition(context.partition_key)
        key = self._lake().write(context.asset_key.path[-1], table, environment, segment)
        context.add_output_metadata({"lake_key": key, "rows": table.num_rows})

    def load_input(self, context: InputContext) -> pa.Table:
        lake, name = self._lake(), context.asset_key.path[-1]
        contract = table_contract(name)
        tables, missing = [], []
        for partition in sorted(context.asset_partition_keys):
            environment, segment = _partition(partition)
            try:
                tables.append(contract.check(lake.read(name, environment, segment), stored=True))
            except StoreError:
                missing.append(str(partition))
        if missing:
            context.log.warning(f"{name}: no data for partitions {missing}; using the {len(tables)} that exist")
        if not tables:
            raise StoreError(f"{name} has no materialized partitions for {context.asset_partition_keys}: "
                             "materialize them first")
        return pa.concat_tables(tables, promote_options="default")


def _partition(key) -> tuple[str, str | None]:
    """(environment, segment) from a partition key; Dagster orders dimensions by name."""
    if isinstance(key, MultiPartitionKey):
        return key.keys_by_dimension["environment"], key.keys_by_dimension["segment"]
    if "|" in key:
        environment, segment = key.split("|")
        return environment, segment
    return key, None
