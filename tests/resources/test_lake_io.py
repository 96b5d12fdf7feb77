"""The lake IO manager stores and loads only tables that keep their contract (spoton.storage.schemas)."""
import pyarrow as pa
import pytest
from dagster import StaticPartitionsDefinition, build_input_context, build_output_context

from orchestration.definitions import defs
from resources.lake_io import ParquetLakeIOManager
from resources.store import LocalStoreResource
from spoton.storage.lake import ParquetLake
from spoton.storage.schemas import DWELL, TABLES, TableContractError
from spoton.storage.store import LocalStore

ENVIRONMENTS = StaticPartitionsDefinition(["env"])
VISIT = {"global_id": 1, "zone": "door", "enter_ts": 0.0, "exit_ts": 2.5, "seconds": 2.5}


def _manager(root) -> ParquetLakeIOManager:
    return ParquetLakeIOManager(store=LocalStoreResource(root=str(root)))


def _load(manager: ParquetLakeIOManager, table: str) -> pa.Table:
    return manager.load_input(build_input_context(asset_key=table, partition_key="env",
                                                  asset_partitions_def=ENVIRONMENTS))


def test_every_asset_the_lake_stores_has_a_contract():
    assets = {key.path[-1] for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert assets <= set(TABLES)
    assert set(TABLES) - assets == {"identity_overrides"}  # written by the review app, read by global_identities


def test_a_contract_table_round_trips(tmp_path):
    manager = _manager(tmp_path)
    manager.handle_output(build_output_context(asset_key="dwell", partition_key="env"),
                          DWELL.table(pa.Table.from_pylist([VISIT])))
    loaded = _load(manager, "dwell")
    assert loaded.column_names == ["environment", *DWELL.names] and loaded.to_pylist() == [{"environment": "env", **VISIT}]


def test_an_output_off_its_contract_is_refused_before_it_lands(tmp_path):
    manager = _manager(tmp_path)
    wrong = pa.Table.from_pylist([VISIT | {"seconds": "2.5"}])  # a string where the contract says double
    with pytest.raises(TableContractError, match="dwell: mistyped column: seconds is string, the contract says double"):
        manager.handle_output(build_output_context(asset_key="dwell", partition_key="env"), wrong)
    assert not ParquetLake(LocalStore(tmp_path)).keys("dwell")


def test_a_stored_file_off_its_contract_is_refused_on_read(tmp_path):
    lake = ParquetLake(LocalStore(tmp_path))
    lake.write("dwell", pa.Table.from_pylist([{k: v for k, v in VISIT.items() if k != "zone"}]), "env")
    with pytest.raises(TableContractError, match=r"dwell: missing zone \(string: zone name"):
        _load(_manager(tmp_path), "dwell")
