"""Environment level: the appearance adaptation learned from the environment's own tracklets.

Its own group (``adaptation``, job ``adapt_appearance``), outside ``analyze_environment``: no
asset reads the head (the resolver's adapted evidence measured worse, docs/benchmarks.md; the
review app's person search reads it where it exists), so ``make demo`` does not pay for the training; ``python -m orchestration.demo --adaptation`` or the
Dagster UI materializes it."""

import json
import time
from dataclasses import asdict

import numpy as np
import pandas as pd
import pyarrow as pa
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, AssetIn, Output, asset

from assets.ingest import StoreResource
from assets.partitions import ALL_SEGMENTS_OF_ENVIRONMENT, ENVIRONMENTS
from spoton.identity.adaptation import AdaptationParams, AdaptationResult, adapt_environment
from spoton.storage.schemas import APPEARANCE_ADAPTATION


def model_key(environment: str, version: str) -> str:
    """Store key of one version of an environment's projection head."""
    return f"{environment}/models/appearance_adaptation/{version}.npz"


def adaptation_record(result: AdaptationResult, key: str, train_s: float) -> pd.DataFrame:
    """The ``appearance_adaptation`` row of one training."""
    head = result.head
    return pd.DataFrame([{
        "version": head.version, "model_key": key, "data_sha256": head.data_sha256,
        "params": json.dumps(asdict(head.params), sort_keys=True), "tracklets": result.tracklets,
        "train_positives": result.train_positives, "train_negatives": result.train_negatives,
        "held_out_positives": result.before.same_pairs, "held_out_negatives": result.before.different_pairs,
        "auc_before": result.before.auc, "auc_after": result.after.auc,
        "gap_before": result.before.gap, "gap_after": result.after.gap, "train_s": train_s}])


def _rounded(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 4)


@asset(partitions_def=ENVIRONMENTS, group_name="adaptation", io_manager_key="lake_io_manager",
       ins={"tracklets": AssetIn(partition_mapping=ALL_SEGMENTS_OF_ENVIRONMENT),
            "tracklet_embeddings": AssetIn(partition_mapping=ALL_SEGMENTS_OF_ENVIRONMENT)},
       check_specs=[AssetCheckSpec("adaptation_separation", asset="appearance_adaptation")])
def appearance_adaptation(context: AssetExecutionContext, tracklets: pa.Table, tracklet_embeddings: pa.Table,
                          store: StoreResource):
    """A projection head over the tracklet embeddings, learned without labels from this
    environment's tracklets (spoton.identity.adaptation); the model is stored versioned (hash of
    data and parameters) in the store, this table records each training. The check compares
    same-vs-different separation of held-out tracks before and after."""
    boxes = tracklets.to_pandas()
    embeddings = tracklet_embeddings.select(["tracklet_id", "embedding"]).to_pandas()
    started = time.perf_counter()
    result = adapt_environment(boxes, embeddings, AdaptationParams())
    train_s = time.perf_counter() - started
    key = model_key(context.partition_key, result.head.version)
    store.get_store().write_bytes(key, result.head.to_bytes())
    record = adaptation_record(result, key, train_s)
    yield Output(APPEARANCE_ADAPTATION.table(record),
                 metadata={"version": result.head.version, "model_key": key, "train_s": round(train_s, 2),
                           "train_pairs": result.train_positives + result.train_negatives})
    before, after = result.before, result.after
    measured = before.same_pairs > 0 and before.different_pairs > 0
    yield AssetCheckResult(
        passed=bool(not measured or after.auc >= before.auc), severity=AssetCheckSeverity.WARN,
        metadata={"auc_before": _rounded(before.auc), "auc_after": _rounded(after.auc),
                  "cosine_gap_before": _rounded(before.gap), "cosine_gap_after": _rounded(after.gap),
                  "held_out_same_pairs": before.same_pairs, "held_out_different_pairs": before.different_pairs},
        description="held-out tracks: same-vs-different AUC and cosine gap of the raw and the adapted embeddings "
                    "(passes when the adaptation does not lower the AUC; no held-out pairs: nothing to judge)")
