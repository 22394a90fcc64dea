"""Model training and batch prediction: SageMaker on AWS, SageMaker's script-mode contract locally.

Both deployments run the same script (`lake_platform/ml/train.py`) the same way: it is packed into
`sourcedir.tar.gz`, run with `SM_CHANNEL_<NAME>`, `SM_MODEL_DIR`, `SM_OUTPUT_DATA_DIR`, `SM_HPS` and the
hyperparameters as `--name value` arguments, and its artifacts land under the same keys:

    <prefix>/<job>/source/sourcedir.tar.gz   the code that trained (and serves) the model
    <prefix>/<job>/output/model.tar.gz       SM_MODEL_DIR, tarred (SageMaker's ModelDataUrl)
    <prefix>/<job>/output/output.tar.gz      SM_OUTPUT_DATA_DIR, tarred (metrics.json)

Batch prediction feeds each Parquet object under an input prefix, whole, to the script's `input_fn`/
`predict_fn`/`output_fn` and writes `<output prefix>/<object name>.out` (JSON lines), which is what a
SageMaker batch transform with `SplitType=None` writes.
"""

import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from lake_platform.adapters.catalog import ICEBERG_ZONES
from lake_platform.adapters.storage import ObjectStore

TRAIN_SCRIPT = Path(__file__).resolve().parents[1] / "ml" / "train.py"
INPUT_CONTENT_TYPE = "application/x-parquet"
OUTPUT_CONTENT_TYPE = "application/jsonlines"


@dataclass(frozen=True)
class TrainingResult:
    """A trained model: where its artifacts are in the lake and what it scored on the hold-out set."""

    job_name: str
    model_key: str
    model_uri: str
    source_key: str
    metrics: dict[str, Any]


class TrainingFailed(RuntimeError):
    """A training or transform job (or the local script) did not complete."""


class ModelTraining(dg.ConfigurableResource):
    """Interface shared by both deployments (see LocalScriptMode here, SageMakerTraining in sagemaker_aws.py)."""

    store: dg.ResourceDependency[ObjectStore]
    entry_point: str | None = Field(
        default=None, description="Training script, shipped alone as sourcedir.tar.gz; default: ml/train.py."
    )
    environment: dict[str, str] = Field(
        default_factory=dict, description="Extra environment variables for the training script."
    )

    def train(
        self,
        context: dg.AssetExecutionContext,
        job_name: str,
        channels: dict[str, str | list[str]],
        hyperparameters: dict[str, Any],
        output_key_prefix: str,
    ) -> TrainingResult:
        """Run the script on `channels`; artifacts under the prefix. A channel is the location of a Parquet folder,
        or a list of Parquet files: an Iceberg table's current data files (`training_channel`), each arriving in
        the channel under its partition folder's name (`flight_date=<day>/<file>`)."""
        raise NotImplementedError

    def batch_predict(
        self,
        context: dg.AssetExecutionContext,
        job_name: str,
        model: TrainingResult,
        input_key: str,
        output_key: str,
    ) -> str:
        """Score every Parquet object under `input_key`; returns the location of the `.out` files."""
        raise NotImplementedError

    def _script(self) -> Path:
        return Path(self.entry_point) if self.entry_point else TRAIN_SCRIPT

    def _job_key(self, prefix: str, job_name: str, name: str) -> str:
        return f"{prefix.rstrip('/')}/{job_name}/{name}"

    def _upload_source(self, prefix: str, job_name: str) -> str:
        key = self._job_key(prefix, job_name, "source/sourcedir.tar.gz")
        script = self._script()
        self.store.put_bytes(key, tar_bytes({script.name: script.read_bytes()}))
        return key

    def _metrics(self, output_tar_key: str) -> dict[str, Any]:
        with tarfile.open(fileobj=io.BytesIO(self.store.get_bytes(output_tar_key))) as tar:
            member = tar.extractfile("metrics.json")
            if member is None:
                raise TrainingFailed(f"{output_tar_key} holds no metrics.json")
            return json.loads(member.read())


def tar_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def tar_folder(folder: Path) -> bytes:
    return tar_bytes({p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()})


def untar(data: bytes, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def cli_args(hyperparameters: dict[str, Any]) -> list[str]:
    """`--name value` pairs, sorted by name, as the SageMaker training toolkit passes them."""
    args: list[str] = []
    for name, value in sorted(hyperparameters.items()):
        args += [f"--{name}", json.dumps(value) if isinstance(value, (dict, list)) else str(value)]
    return args


def script_mode_env(opt_ml: Path, channels: list[str], hyperparameters: dict[str, Any], entry: str) -> dict:
    """The environment the SageMaker training toolkit exports to a script-mode entry point."""
    env = {
        "SM_MODEL_DIR": str(opt_ml / "model"),
        "SM_OUTPUT_DIR": str(opt_ml / "output"),
        "SM_OUTPUT_DATA_DIR": str(opt_ml / "output" / "data"),
        "SM_INPUT_DIR": str(opt_ml / "input"),
        "SM_INPUT_CONFIG_DIR": str(opt_ml / "input" / "config"),
        "SM_MODULE_DIR": str(opt_ml / "code"),
        "SM_USER_ENTRY_POINT": entry,
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(hyperparameters),
        "SM_CURRENT_HOST": "algo-1",
        "SM_HOSTS": json.dumps(["algo-1"]),
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": "0",
    }
    env.update({f"SM_CHANNEL_{c.upper()}": str(opt_ml / "input" / "data" / c) for c in channels})
    env.update({f"SM_HP_{k.upper().replace('-', '_')}": str(v) for k, v in hyperparameters.items()})
    return env


def run_script(cmd: list[str], cwd: Path, env: dict, log, timeout_seconds: float) -> None:
    """Run the script, streaming stdout and stderr into the run log; raise with the stderr tail on failure."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tail: deque[str] = deque(maxlen=25)

    def pump_stderr() -> None:
        for line in proc.stderr:
            tail.append(line.rstrip())
            log.info(f"[stderr] {line.rstrip()}")

    reader = threading.Thread(target=pump_stderr, daemon=True)
    reader.start()
    killer = threading.Timer(timeout_seconds, proc.kill)  # SageMaker's StoppingCondition, locally
    killer.start()
    try:
        for line in proc.stdout:
            log.info(line.rstrip())
        returncode = proc.wait()
        reader.join()
        timed_out = not killer.is_alive()
    finally:
        killer.cancel()
    if returncode != 0:
        why = f"was killed after {timeout_seconds} s" if timed_out else f"exited with code {returncode}"
        raise TrainingFailed(f"training script {cmd[1]} {why}; last lines of its stderr:\n" + "\n".join(tail))


def load_job_model(store: ObjectStore, model: TrainingResult, folder: Path, script: str | None = None):
    """(handlers, model) of a training job, as SageMaker's serving container loads them: the job's code
    (`sourcedir.tar.gz`) untarred under `folder` and its entry point imported, then `model_fn` on the untarred
    model. The entry point is `script`, else train.py, else the only script of the source folder."""
    code = untar(store.get_bytes(model.source_key), folder / "code")
    if script is None:
        scripts = [code / TRAIN_SCRIPT.name] if (code / TRAIN_SCRIPT.name).is_file() else sorted(code.glob("*.py"))
        if len(scripts) != 1:
            raise FileNotFoundError(
                f"the model's source folder holds {len(scripts)} scripts and no {TRAIN_SCRIPT.name}"
            )
        script = scripts[0].name
    handlers = load_handlers(code / script)
    return handlers, handlers.model_fn(untar(store.get_bytes(model.model_key), folder / "model"))


def load_handlers(script: Path):
    """Import a copy of the script as a fresh module, as the serving container imports the entry point."""
    spec = importlib.util.spec_from_file_location(f"lake_model_{uuid.uuid4().hex}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def training_channel(catalog, zone: str, table: str) -> str | list[str]:
    """What a training job reads of a cataloged table: an Iceberg table's current data files, never its location
    (which also holds the files of earlier snapshots, kept for time travel until they expire), or the folder of a
    version-folder table. A clear error for a table without data."""
    if zone not in ICEBERG_ZONES:
        return catalog.location(zone, table)  # raises the clear LookupError for a missing table
    files = catalog.data_files(zone, table)
    if not files:
        raise FileNotFoundError(f"{catalog.database(zone)}.{table} has no data files in its current snapshot")
    return files


def channel_name(file: str) -> str:
    """Where a channel's file lands in the channel: `<partition folder>/<file name>` (Iceberg's data files of a
    partitioned table sit in `<column>=<value>/` folders; the names are unique per table)."""
    parent, _, name = file.rstrip("/").rpartition("/")
    return f"{parent.rpartition('/')[2]}/{name}"


class LocalScriptMode(ModelTraining):
    """Runs the training script in a subprocess under the script-mode contract, in a temporary /opt/ml."""

    python: str | None = Field(default=None, description="Interpreter for the script; default: this one.")
    max_runtime_seconds: int = Field(default=3600, description="Kill the script after this long.")

    def train(self, context, job_name, channels, hyperparameters, output_key_prefix):
        source_key = self._upload_source(output_key_prefix, job_name)
        with tempfile.TemporaryDirectory(prefix=f"{job_name}-") as tmp:
            opt_ml = Path(tmp)
            untar(self.store.get_bytes(source_key), opt_ml / "code")
            for name, location in channels.items():
                # SageMaker's File mode copies each channel before the script starts; so do we, which also
                # keeps the script's view stable if the table is republished meanwhile.
                if isinstance(location, str):
                    shutil.copytree(location, opt_ml / "input" / "data" / name)
                    continue
                for file in location:
                    target = opt_ml / "input" / "data" / name / channel_name(file)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, target)
                (opt_ml / "input" / "data" / name).mkdir(parents=True, exist_ok=True)
            (opt_ml / "model").mkdir()
            (opt_ml / "output" / "data").mkdir(parents=True)
            config = opt_ml / "input" / "config"
            config.mkdir(parents=True)
            (config / "hyperparameters.json").write_text(
                json.dumps({k: json.dumps(v) for k, v in hyperparameters.items()})
            )
            entry = self._script().name
            contract = script_mode_env(opt_ml, list(channels), hyperparameters, entry)
            env = {**os.environ, **self.environment, **contract}
            context.log.info(f"training job {job_name}: {entry} {' '.join(cli_args(hyperparameters))}")
            cmd = [self.python or sys.executable, entry, *cli_args(hyperparameters)]
            run_script(cmd, opt_ml / "code", env, context.log, self.max_runtime_seconds)
            model_key = self._job_key(output_key_prefix, job_name, "output/model.tar.gz")
            output_key = self._job_key(output_key_prefix, job_name, "output/output.tar.gz")
            self.store.put_bytes(model_key, tar_folder(opt_ml / "model"))
            self.store.put_bytes(output_key, tar_folder(opt_ml / "output" / "data"))
        return TrainingResult(
            job_name, model_key, self.store.uri(model_key), source_key, self._metrics(output_key)
        )

    def batch_predict(self, context, job_name, model, input_key, output_key):
        with tempfile.TemporaryDirectory(prefix=f"{job_name}-") as tmp:
            handlers, loaded = load_job_model(self.store, model, Path(tmp), self._script().name)
            inputs = [o for o in self.store.list(input_key.rstrip("/") + "/") if o.key.endswith(".parquet")]
            for obj in inputs:
                data = handlers.input_fn(self.store.get_bytes(obj.key), INPUT_CONTENT_TYPE)
                body, _ = handlers.output_fn(handlers.predict_fn(data, loaded), OUTPUT_CONTENT_TYPE)
                name = obj.key[len(input_key.rstrip("/")) + 1 :]
                self.store.put_bytes(f"{output_key.rstrip('/')}/{name}.out", body)
            context.log.info(f"batch prediction {job_name}: scored {len(inputs)} object(s) with {model.job_name}")
        return self.store.uri(output_key)
