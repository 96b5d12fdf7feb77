import dagster as dg
import pyarrow as pa

from assets.adaptation import appearance_adaptation, model_key
from resources.store import LocalStoreResource
from spoton.identity.adaptation import ProjectionHead
from support.adaptation_sample import load_adaptation_sample


def test_asset_stores_a_versioned_head_and_checks_separation_before_and_after(tmp_path):
    boxes, embeddings, _ = load_adaptation_sample()
    embeddings_table = pa.table({"tracklet_id": embeddings["tracklet_id"],
                                 "embedding": pa.array([v.tolist() for v in embeddings["embedding"]],
                                                       pa.list_(pa.float32()))})
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("environments", ["pets_s2l1"])
        context = dg.build_asset_context(partition_key="pets_s2l1", instance=instance)
        output, check = appearance_adaptation(context, tracklets=pa.Table.from_pandas(boxes),
                                              tracklet_embeddings=embeddings_table,
                                              store=LocalStoreResource(root=str(tmp_path)))
    record = output.value.to_pandas().iloc[0]
    assert record["model_key"] == model_key("pets_s2l1", record["version"])
    head = ProjectionHead.from_bytes((tmp_path / record["model_key"]).read_bytes())
    assert head.version == record["version"] and head.data_sha256 == record["data_sha256"]
    assert check.passed
    metadata = {k: v.value for k, v in check.metadata.items()}
    assert metadata["auc_after"] > metadata["auc_before"]
    assert metadata["cosine_gap_after"] > metadata["cosine_gap_before"]
    assert abs(record["auc_after"] - metadata["auc_after"]) < 1e-4  # the table and the check agree
    assert metadata["held_out_same_pairs"] > 20 and metadata["held_out_different_pairs"] > 20
