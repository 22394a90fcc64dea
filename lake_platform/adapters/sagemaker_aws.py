"""SageMaker on AWS: training jobs in the scikit-learn framework container, and batch transform jobs.

The local twin, the interface and the artifact layout are in `sagemaker.py`.
"""

import json
import time

from pydantic import Field

from lake_platform.adapters.sagemaker import (
    INPUT_CONTENT_TYPE,
    OUTPUT_CONTENT_TYPE,
    ModelTraining,
    TrainingFailed,
    TrainingResult,
)


class SageMakerTraining(ModelTraining):
    """SageMaker training jobs in the scikit-learn framework container, and batch transform jobs."""

    role_arn: str = Field(description="Execution role SageMaker assumes (e.g. dg.EnvVar('SAGEMAKER_ROLE_ARN')).")
    image_uri: str = Field(
        default="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3",
        description="scikit-learn framework image for the job's region (this default is us-east-1's).",
    )
    instance_type: str = Field(default="ml.m5.large", description="Training and transform instance type.")
    volume_size_gb: int = Field(default=30, description="Training volume; the channels are copied onto it.")
    max_runtime_seconds: int = Field(default=3600, description="Training StoppingCondition.")
    max_payload_mb: int = Field(default=50, description="Transform MaxPayloadInMB (service limit 100).")
    poll_interval_seconds: float = Field(default=15.0, description="First wait between status polls.")
    max_poll_interval_seconds: float = Field(default=120.0, description="Polls back off up to this.")
    wait_timeout_seconds: float = Field(default=4 * 3600, description="Give up waiting after this long.")
    region_name: str | None = Field(default=None, description="AWS region; default chain if unset.")
    endpoint_url: str | None = Field(default=None, description="Custom endpoint (tests, VPC endpoints).")

    def _client(self):
        import boto3

        return boto3.client("sagemaker", region_name=self.region_name, endpoint_url=self.endpoint_url)

    def _key(self, uri: str) -> str:
        root = self.store.uri("")
        if not uri.startswith(root):
            raise ValueError(f"{uri} is outside the lake ({root})")
        return uri[len(root) :]

    def _manifest(self, prefix: str, job_name: str, name: str, files: list[str]) -> str:
        """A SageMaker manifest file listing `files` (an Iceberg table's current data files) relative to the lake's
        root: in File mode each object lands in the channel at its relative path, so the files of an earlier
        snapshot under the same table location never reach the script."""
        root = self.store.uri("")
        keys = [self._key(f) for f in files]
        if not keys:
            raise FileNotFoundError(f"channel {name}: no files")
        key = self._job_key(prefix, job_name, f"input/{name}.manifest")
        self.store.put_bytes(key, json.dumps([{"prefix": root}, *keys]).encode())
        return self.store.uri(key)

    def train(self, context, job_name, channels, hyperparameters, output_key_prefix):
        client = self._client()
        source_key = self._upload_source(output_key_prefix, job_name)
        channels = {
            name: location if isinstance(location, str)
            else {"manifest": self._manifest(output_key_prefix, job_name, name, location)}
            for name, location in channels.items()
        }
        client.create_training_job(
            **self.training_job_request(
                job_name, channels, hyperparameters, output_key_prefix, source_key, client.meta.region_name
            )
        )
        context.log.info(f"started SageMaker training job {job_name}")
        done = self._wait(context, lambda: client.describe_training_job(TrainingJobName=job_name), "Training")
        model_uri = done["ModelArtifacts"]["S3ModelArtifacts"]
        metrics = self._metrics(self._job_key(output_key_prefix, job_name, "output/output.tar.gz"))
        return TrainingResult(job_name, self._key(model_uri), model_uri, source_key, metrics)

    def training_job_request(self, job_name, channels, hyperparameters, prefix, source_key, region) -> dict:
        """CreateTrainingJob arguments, as the SageMaker Python SDK's SKLearn estimator would send them."""
        framework = {
            "sagemaker_program": self._script().name,
            "sagemaker_submit_directory": self.store.uri(source_key),
            "sagemaker_container_log_level": 20,
            "sagemaker_region": region,
        }
        # The training toolkit json-decodes every value, so strings travel JSON-quoted, like the SDK sends them.
        encoded = {k: json.dumps(v) for k, v in {**hyperparameters, **framework}.items()}
        metrics = ["roc_auc", "log_loss", "accuracy", "baseline_log_loss"]
        return {
            "TrainingJobName": job_name,
            "RoleArn": self.role_arn,
            "AlgorithmSpecification": {
                "TrainingImage": self.image_uri,
                "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": m, "Regex": f"^{m}=([0-9.]+)"} for m in metrics],
            },
            "HyperParameters": encoded,
            "InputDataConfig": [
                {
                    "ChannelName": name,
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": location.rstrip("/") + "/",
                            "S3DataDistributionType": "FullyReplicated",
                        }
                        if isinstance(location, str)
                        else {
                            "S3DataType": "ManifestFile",
                            "S3Uri": location["manifest"],
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                    "ContentType": INPUT_CONTENT_TYPE,
                }
                for name, location in channels.items()
            ],
            "OutputDataConfig": {"S3OutputPath": self.store.uri(prefix.rstrip("/"))},
            "ResourceConfig": {
                "InstanceType": self.instance_type,
                "InstanceCount": 1,
                "VolumeSizeInGB": self.volume_size_gb,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": self.max_runtime_seconds},
            **({"Environment": dict(self.environment)} if self.environment else {}),
        }

    def batch_predict(self, context, job_name, model, input_key, output_key):
        client = self._client()
        try:
            client.create_model(
                ModelName=model.job_name,
                ExecutionRoleArn=self.role_arn,
                PrimaryContainer={
                    "Image": self.image_uri,
                    "ModelDataUrl": model.model_uri,
                    "Environment": {
                        "SAGEMAKER_PROGRAM": self._script().name,
                        "SAGEMAKER_SUBMIT_DIRECTORY": self.store.uri(model.source_key),
                        "SAGEMAKER_REGION": client.meta.region_name,
                        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                    },
                },
            )
        except client.exceptions.ClientError as error:
            if "already exist" not in str(error):  # one SageMaker model per trained job, reused across runs
                raise
        input_uri = self.store.uri(input_key.rstrip("/") + "/")
        client.create_transform_job(
            TransformJobName=job_name,
            ModelName=model.job_name,
            MaxPayloadInMB=self.max_payload_mb,
            BatchStrategy="SingleRecord",
            TransformInput={
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
                "ContentType": INPUT_CONTENT_TYPE,
                "SplitType": "None",  # a Parquet file is one record: it cannot be split on line breaks
            },
            TransformOutput={
                "S3OutputPath": self.store.uri(output_key.rstrip("/")),
                "Accept": OUTPUT_CONTENT_TYPE,
                "AssembleWith": "None",
            },
            TransformResources={"InstanceType": self.instance_type, "InstanceCount": 1},
        )
        context.log.info(f"started SageMaker transform job {job_name} with model {model.job_name}")
        self._wait(context, lambda: client.describe_transform_job(TransformJobName=job_name), "Transform")
        return self.store.uri(output_key)

    def _wait(self, context, describe, kind: str) -> dict:
        """Poll with exponential backoff until the job ends; unless it Completed, raise with its FailureReason."""
        delay, deadline, seen = self.poll_interval_seconds, time.monotonic() + self.wait_timeout_seconds, None
        while True:
            job = describe()
            status = job[f"{kind}JobStatus"]
            if (status, job.get("SecondaryStatus")) != seen:
                seen = (status, job.get("SecondaryStatus"))
                context.log.info(f"{kind.lower()} job {job[f'{kind}JobName']}: {' / '.join(filter(None, seen))}")
            if status in ("Completed", "Failed", "Stopped"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{kind.lower()} job {job[f'{kind}JobName']} still {status}; stopped waiting")
            time.sleep(delay)
            delay = min(delay * 2, self.max_poll_interval_seconds)
        if status != "Completed":
            reason = job.get("FailureReason") or "SageMaker gave no FailureReason"
            raise TrainingFailed(f"{kind.lower()} job {job[f'{kind}JobName']} ended {status}: {reason}")
        return job
