"""SageMaker on AWS: training jobs in the scikit-learn framework container, and batch transform jobs.

The local twin, the interface and the artifact layout are in `sagemaker.py`.

The scikit-learn image is the one of the job's region (SKLEARN_REGISTRIES). With `kms_key_id` (LAKE_KMS_KEY_ID: the
lake key's ARN) the model artifacts, the transform output and the instances' storage volumes are encrypted with that
key (OutputDataConfig/TransformOutput KmsKeyId: SSE-KMS; VolumeKmsKeyId); the files the adapter puts itself (source,
manifests) go through the store, which writes them SSE-KMS with its own `kms_key_id`.
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


# The AWS accounts of SageMaker's scikit-learn framework images (repository `sagemaker-scikit-learn`) per region,
# from the SageMaker Python SDK's image_uris configuration (github.com/aws/sagemaker-python-sdk,
# src/sagemaker/image_uri_config/sklearn.json; the same account for every framework version and for training and
# inference), which `sagemaker.image_uris.retrieve("sklearn", region, "1.4-2")` reads. A table, not the SDK: the SDK
# is not a dependency of the project (its import alone takes seconds), and these accounts change only when AWS opens
# a region. A region missing here: set `image_uri`.
SKLEARN_REGISTRIES = {
    "af-south-1": "510948584623", "ap-east-1": "651117190479", "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698", "ap-northeast-3": "867004704886", "ap-south-1": "720646828776",
    "ap-south-2": "628508329040", "ap-southeast-1": "121021644041", "ap-southeast-2": "783357654285",
    "ap-southeast-3": "951798379941", "ap-southeast-4": "106583098589", "ca-central-1": "341280168497",
    "cn-north-1": "450853457545", "cn-northwest-1": "451049120500", "eu-central-1": "492215442770",
    "eu-central-2": "680994064768", "eu-north-1": "662702820516", "eu-south-1": "978288397137",
    "eu-south-2": "104374241257", "eu-west-1": "141502667606", "eu-west-2": "764974769150",
    "eu-west-3": "659782779980", "me-central-1": "272398656194", "me-south-1": "801668240914",
    "sa-east-1": "737474898029", "us-east-1": "683313688378", "us-east-2": "257758044811",
    "us-gov-east-1": "237065988967", "us-gov-west-1": "414596584902", "us-west-1": "746614075791",
    "us-west-2": "246618743249",
}
SKLEARN_REPOSITORY = "sagemaker-scikit-learn"


def sklearn_image_uri(region: str, framework_version: str = "1.4-2") -> str:
    """The scikit-learn framework image (CPU, Python 3) of `region`, as the SageMaker SDK's image_uris resolves it."""
    try:
        account = SKLEARN_REGISTRIES[region]
    except KeyError:
        raise ValueError(
            f"no SageMaker scikit-learn image known for region {region!r} (SKLEARN_REGISTRIES in {__name__}): "
            "set the resource's image_uri"
        ) from None
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/{SKLEARN_REPOSITORY}:{framework_version}-cpu-py3"


class SageMakerTraining(ModelTraining):
    """SageMaker training jobs in the scikit-learn framework container, and batch transform jobs."""

    role_arn: str = Field(description="Execution role SageMaker assumes (e.g. dg.EnvVar('SAGEMAKER_ROLE_ARN')).")
    image_uri: str | None = Field(
        default=None,
        description="Training and serving image; default: the scikit-learn framework image of the job's region.",
    )
    framework_version: str = Field(default="1.4-2", description="scikit-learn container version (default image).")
    kms_key_id: str | None = Field(
        default=None, description="KMS key (ARN) of the jobs' S3 outputs and volumes; None: the bucket default."
    )
    encrypt_volumes: bool = Field(
        default=True,
        description="Also encrypt the instances' EBS volumes with kms_key_id (VolumeKmsKeyId); set False for an "
        "instance type with only instance storage (NVMe), on which SageMaker refuses a volume key.",
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

    def image(self, region: str) -> str:
        return self.image_uri or sklearn_image_uri(region, self.framework_version)

    def _volume_key(self) -> dict:
        return {"VolumeKmsKeyId": self.kms_key_id} if self.kms_key_id and self.encrypt_volumes else {}

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
                "TrainingImage": self.image(region),
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
            "OutputDataConfig": {
                "S3OutputPath": self.store.uri(prefix.rstrip("/")),
                **({"KmsKeyId": self.kms_key_id} if self.kms_key_id else {}),
            },
            "ResourceConfig": {
                "InstanceType": self.instance_type,
                "InstanceCount": 1,
                "VolumeSizeInGB": self.volume_size_gb,
                **self._volume_key(),
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
                    "Image": self.image(client.meta.region_name),
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
                **({"KmsKeyId": self.kms_key_id} if self.kms_key_id else {}),
            },
            TransformResources={"InstanceType": self.instance_type, "InstanceCount": 1, **self._volume_key()},
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
