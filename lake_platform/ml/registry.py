"""The approved model: a pointer object in the lake that the predictions read.

`ml/models/approved.json` names the last model that beat the baseline. Training writes its artifacts
under `ml/models/<job>/` first and moves the pointer only after the check passes, in one PUT (atomic on
S3; a rename locally), so a reader sees the previous approved model or the new one, never a half-made one.
A model that loses to the baseline is kept for inspection but never served.
"""

import json
from dataclasses import asdict
from datetime import datetime, timezone

from lake_platform.adapters.sagemaker import TrainingResult
from lake_platform.adapters.storage import ObjectStore

MODELS_PREFIX = "ml/models"
APPROVED_KEY = f"{MODELS_PREFIX}/approved.json"


def beats_baseline(metrics: dict, min_auc_lift: float) -> tuple[bool, str]:
    """Better ranking than chance by a margin, and better calibrated than predicting the training prior."""
    auc_ok = metrics["roc_auc"] > metrics["baseline_roc_auc"] + min_auc_lift
    loss_ok = metrics["log_loss"] < metrics["baseline_log_loss"]
    verdict = (
        f"roc_auc {metrics['roc_auc']:.4f} vs {metrics['baseline_roc_auc']} + {min_auc_lift} "
        f"({'ok' if auc_ok else 'too low'}); log_loss {metrics['log_loss']:.4f} vs baseline "
        f"{metrics['baseline_log_loss']:.4f} ({'ok' if loss_ok else 'not better'})"
    )
    return auc_ok and loss_ok, verdict


def approve(store: ObjectStore, model: TrainingResult) -> None:
    document = {"approved_at": datetime.now(timezone.utc).isoformat(), **asdict(model)}
    store.put_bytes(APPROVED_KEY, json.dumps(document, indent=2).encode())


def approved_model(store: ObjectStore) -> TrainingResult:
    if not store.exists(APPROVED_KEY):
        raise LookupError(
            f"no approved delay model ({store.uri(APPROVED_KEY)} is missing): materialize ml/delay_model "
            "and check that delay_model_beats_baseline passes"
        )
    document = json.loads(store.get_bytes(APPROVED_KEY))
    document.pop("approved_at", None)
    return TrainingResult(**document)
