"""`sluiceway iam SPEC`: least-privilege IAM policies computed from a pipeline spec.

Two roles:
- the **job** role, what a run of the spec calls: S3 (every bucket's ListBucket, which
  HeadBucket, the pre-flight check, needs without an `s3:prefix`; objects under the
  output, state, staging, quarantine and warehouse prefixes, incl. the state store's
  conditional writes, which are plain s3:PutObject), the Glue tables the spec names (and
  the Glue catalog of Iceberg tables), its secrets, Kinesis streams, Redshift Data, and on
  a platform the artifact set, temporary files, logs and the VPC the job runs in;
- the **deployer**, what `sluiceway deploy glue` / `submit emr` call (lib/sluiceway/deploy).

Resources are named down to the prefix, table, secret, stream and job. Where AWS offers no
resource-level permission (ec2:Describe*, redshift-data:DescribeStatement, ...) the
statement says `*`. Standard library only: it runs where `package` runs.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sluiceway import aws
from sluiceway.errors import SluicewayError, SpecError
from sluiceway.spec import (
    IcebergSink,
    OutputSpec,
    PipelineSpec,
    RedshiftLoad,
    TableSpec,
    load_spec,
)
from sluiceway.stream_spec import StreamSpec, load_stream_spec

PLATFORMS = ("glue", "emr")
ROLES = ("job", "deployer")
MANAGED_POLICY_CHARS = 6144  # IAM's limit for a managed policy, whitespace not counted
Statement = dict[str, Any]
S3_OBJECT_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
# What the Glue Data Catalog tables of a spec need (sinks/catalog.py): the table kept in
# step with the data, its database created if missing, partitions added and removed.
GLUE_TABLE_ACTIONS = [
    "glue:GetDatabase",
    "glue:CreateDatabase",
    "glue:GetTable",
    "glue:CreateTable",
    "glue:UpdateTable",
    "glue:GetPartitions",
    "glue:BatchCreatePartition",
    "glue:BatchDeletePartition",
]
# Iceberg's GlueCatalog: namespaces are databases, a commit is an UpdateTable.
GLUE_ICEBERG_ACTIONS = [
    "glue:GetDatabase",
    "glue:CreateDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "glue:CreateTable",
    "glue:UpdateTable",
]
KINESIS_READ_ACTIONS = [
    "kinesis:DescribeStream",  # Glue's own Kinesis source
    "kinesis:DescribeStreamSummary",
    "kinesis:ListShards",
    "kinesis:GetShardIterator",
    "kinesis:GetRecords",
]
# A Glue job in a VPC: Glue creates the job's network interfaces as the job role.
GLUE_VPC_ACTIONS = [
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeRouteTables",
    "ec2:DescribeVpcAttribute",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeNetworkInterfaces",
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:CreateTags",
    "ec2:DeleteTags",
]


@dataclass(frozen=True)
class Target:
    """Where the policies apply, and how the roles are deployed (the deploy options)."""

    account: str = "${Account}"
    region: str = "${Region}"
    partition: str = "aws"
    platform: str | None = None  # glue | emr: add what the platform's job needs
    bucket: str | None = None  # the artifacts bucket of `deploy` / `submit`
    prefix: str = "sluiceway"
    job_name: str | None = None  # Glue job name (deployer)
    application: str | None = None  # EMR Serverless application id (deployer; default any)
    job_role: str | None = None  # the job role's name, passed by the deployer
    connections: tuple[str, ...] = ()  # Glue connections the job is given

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.region if regional else ""
        account = self.account if regional or service == "iam" else ""
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"

    def s3(self, bucket: str, key: str | None = None) -> str:
        return f"arn:{self.partition}:s3:::{bucket}" + (f"/{key}" if key is not None else "")

    def base(self) -> str:
        return self.prefix.strip("/")


def statement(
    sid: str, actions: Sequence[str], resources: Iterable[str], **extra: Any
) -> Statement:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(set(actions)),
        "Resource": sorted(set(resources)),
        **extra,
    }


def policy(statements: Iterable[Statement | None]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [s for s in statements if s]}


def load_any_spec(
    path: str,
    output: str | None,
    state: str | None,
    iceberg_catalog: str | None,
    checkpoint: str | None = None,
) -> PipelineSpec | StreamSpec:
    """A batch spec, or a stream spec (one with a [source] table)."""
    try:
        with Path(path).open("rb") as handle:
            is_stream = "source" in tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        is_stream = False  # the batch loader names what is wrong with the file
    if is_stream:
        if state or iceberg_catalog:
            raise SpecError(f"{path}: a stream spec takes --output and --checkpoint only")
        return load_stream_spec(path, output_root=output, checkpoint=checkpoint)
    if checkpoint:
        raise SpecError(f"{path}: --checkpoint is a stream spec's (a pipeline has --state)")
    return load_spec(
        path, output_root=output, state_location=state, iceberg_catalog=iceberg_catalog
    )


# ---------------------------------------------------------------------------------------
# The job role


def job_policy(spec: PipelineSpec | StreamSpec, target: Target) -> dict[str, Any]:
    if isinstance(spec, StreamSpec):
        data, state = _stream_locations(spec)
        specific = [_kinesis(spec, target)]
    else:
        data, state = _batch_locations(spec)
        specific = [
            _glue_tables(spec, target),
            _iceberg_glue(spec, target),
            _secrets(spec, target),
            *_redshift_data(spec, target),
        ]
        target = replace(target, connections=(*target.connections, *glue_connections(spec)))
    artifacts = _artifact_statements(spec.name, target)
    buckets = {aws.split_s3_uri(u)[0] for u in (*data, *state) if aws.is_s3_uri(u)}
    if artifacts:
        buckets.add(target.bucket or "")
    return policy(
        [
            # HeadBucket (the pre-flight check) and every listing: ListBucket on the
            # bucket with no s3:prefix condition, which HeadBucket never carries.
            statement("ListTheBuckets", ["s3:ListBucket"], map(target.s3, buckets))
            if buckets
            else None,
            _s3_objects("ReadAndWriteTheData", data, target),
            _s3_objects("KeepTheRunStateAndLock", state, target),
            *specific,
            *artifacts,
            _read_connections(target),
            _vpc(target),
        ]
    )


def _items(spec: PipelineSpec) -> tuple[TableSpec | OutputSpec, ...]:
    return (*spec.tables, *spec.outputs)


def _batch_locations(spec: PipelineSpec) -> tuple[list[str], list[str]]:
    """(data locations, state locations) a batch run reads and writes."""
    data = [spec.staging_location]
    for item in _items(spec):
        data += [item.sink.path, item.sink.quarantine_path]
        if isinstance(item.sink, IcebergSink):
            data.append(item.sink.catalog.warehouse)
        data += [load.staging for load in item.load if isinstance(load, RedshiftLoad)]
    return data, [spec.state_location]


def _stream_locations(spec: StreamSpec) -> tuple[list[str], list[str]]:
    data = [spec.sink.path, spec.sink.dead_letter_path]
    if spec.source.kind == "files" and spec.source.path:
        data.append(spec.source.path)
    return data, [spec.trigger.checkpoint]


def _prefixes(locations: Iterable[str]) -> list[tuple[str, str]]:
    """(bucket, key prefix) of each S3 location, none inside another of the list."""
    found = sorted(
        {aws.split_s3_uri(u) for u in locations if aws.is_s3_uri(u)}, key=lambda p: (p[0], p[1])
    )
    kept: list[tuple[str, str]] = []
    for bucket, key in found:
        inside = any(
            b == bucket and (not k or key == k or key.startswith(k + "/")) for b, k in kept
        )
        if not inside:
            kept.append((bucket, key))
    return kept


def _s3_objects(sid: str, locations: Iterable[str], target: Target) -> Statement | None:
    prefixes = _prefixes(locations)
    if not prefixes:
        return None
    # `prefix` itself too: Hadoop's S3A probes a directory's own key with HEAD.
    resources = [target.s3(b, f"{k}/*" if k else "*") for b, k in prefixes]
    resources += [target.s3(b, k) for b, k in prefixes if k]
    return statement(sid, S3_OBJECT_ACTIONS, resources)


def _glue_resources(target: Target, database: str, table: str) -> list[str]:
    return [
        target.arn("glue", "catalog"),
        target.arn("glue", f"database/{database}"),
        target.arn("glue", f"table/{database}/{table}"),
    ]


def _glue_tables(spec: PipelineSpec, target: Target) -> Statement | None:
    resources = [
        r
        for item in _items(spec)
        if item.catalog
        for r in _glue_resources(target, item.catalog.database, item.catalog.table)
    ]
    if not resources:
        return None
    return statement("KeepTheGlueTablesInStep", GLUE_TABLE_ACTIONS, resources)


def _iceberg_glue(spec: PipelineSpec, target: Target) -> Statement | None:
    resources = []
    for item in _items(spec):
        sink = item.sink
        if isinstance(sink, IcebergSink) and sink.catalog.type == "glue":
            database, _, table = sink.table.rpartition(".")
            resources += _glue_resources(target, database, table)
    if not resources:
        return None
    return statement("CommitTheIcebergTablesInTheGlueCatalog", GLUE_ICEBERG_ACTIONS, resources)


def secret_arn(target: Target, secret_id: str) -> str:
    """A secret's ARN: as given, or for a name, any of the six characters AWS appends."""
    if secret_id.startswith("arn:"):
        return secret_id
    return target.arn("secretsmanager", f"secret:{secret_id}-??????")


def _secrets(spec: PipelineSpec, target: Target) -> Statement | None:
    ids = [c.secret_id for c in spec.connections.values() if c.secret_id]
    if spec.hash_salt_secret_id:
        ids.append(spec.hash_salt_secret_id)
    if not ids:
        return None
    resources = [secret_arn(target, i) for i in ids]
    return statement("ReadTheSecrets", ["secretsmanager:GetSecretValue"], resources)


def _redshift_data(spec: PipelineSpec, target: Target) -> list[Statement]:
    loads = [
        load
        for item in _items(spec)
        for load in item.load
        if isinstance(load, RedshiftLoad) and load.via == "data_api"
    ]
    if not loads:
        return []
    clusters: list[str] = []
    credentials: list[Statement] = []
    for load in loads:
        if load.cluster_identifier:
            clusters.append(target.arn("redshift", f"cluster:{load.cluster_identifier}"))
        else:
            # ExecuteStatement names a workgroup by its id, which the spec does not know.
            clusters.append(target.arn("redshift-serverless", "workgroup/*"))
        if load.secret_arn:
            credentials.append(
                statement(
                    "ReadTheRedshiftSecret",
                    ["secretsmanager:GetSecretValue"],
                    [secret_arn(target, load.secret_arn)],
                )
            )
        elif load.cluster_identifier:
            cluster = load.cluster_identifier
            user = load.db_user or "*"
            credentials.append(
                statement(
                    "GetTemporaryRedshiftCredentials",
                    ["redshift:GetClusterCredentials"],
                    [
                        target.arn("redshift", f"dbuser:{cluster}/{user}"),
                        target.arn("redshift", f"dbname:{cluster}/{load.database}"),
                    ],
                )
            )
        else:
            credentials.append(
                statement(
                    "GetTemporaryRedshiftServerlessCredentials",
                    ["redshift-serverless:GetCredentials"],
                    [target.arn("redshift-serverless", "workgroup/*")],
                )
            )
    return [
        statement(
            "RunTheRedshiftLoads",
            ["redshift-data:ExecuteStatement", "redshift-data:BatchExecuteStatement"],
            clusters,
        ),
        # Statement ids are not resources: AWS scopes these to the caller's own statements.
        statement(
            "FollowTheRedshiftStatements",
            ["redshift-data:DescribeStatement", "redshift-data:GetStatementResult"],
            ["*"],
        ),
        *_merge_same_sid(credentials),
    ]


def _merge_same_sid(statements: list[Statement]) -> list[Statement]:
    merged: dict[str, Statement] = {}
    for s in statements:
        if s["Sid"] in merged:
            resources = merged[s["Sid"]]["Resource"] + s["Resource"]
            merged[s["Sid"]]["Resource"] = sorted(set(resources))
        else:
            merged[s["Sid"]] = s
    return list(merged.values())


def _kinesis(spec: StreamSpec, target: Target) -> Statement | None:
    if spec.source.kind != "kinesis" or not spec.source.stream:
        return None
    region = spec.source.region or target.region
    stream = f"arn:{target.partition}:kinesis:{region}:{target.account}:stream/{spec.source.stream}"
    return statement("ReadTheStream", KINESIS_READ_ACTIONS, [stream])


def _artifact_statements(pipeline: str, target: Target) -> list[Statement]:
    """What the platform's job reads and writes besides the spec's own data."""
    if target.platform is None or target.bucket is None:
        return []
    base = "/".join(p for p in (target.base(), "artifacts", pipeline, "*") if p)
    read = statement("ReadTheArtifactSet", ["s3:GetObject"], [target.s3(target.bucket, base)])
    if target.platform == "emr":
        logs = "/".join(p for p in (target.base(), "emr-logs", "*") if p)
        return [
            read,
            statement("WriteTheJobRunLogs", ["s3:PutObject"], [target.s3(target.bucket, logs)]),
        ]
    temp = "/".join(p for p in (target.base(), "glue-temp", "*") if p)
    return [
        read,
        statement("UseTheJobTempDir", S3_OBJECT_ACTIONS, [target.s3(target.bucket, temp)]),
        statement(
            "WriteTheJobLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            [
                target.arn("logs", "log-group:/aws-glue/*"),
                target.arn("logs", "log-group:/aws-glue/*:log-stream:*"),
            ],
        ),
        statement(
            "PublishJobMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            Condition={"StringEquals": {"cloudwatch:namespace": "Glue"}},
        ),
    ]


def glue_connections(spec: PipelineSpec | StreamSpec) -> tuple[str, ...]:
    """The Glue connections a batch spec's database connections read their logins from."""
    if isinstance(spec, StreamSpec):
        return ()
    return tuple(c.glue_connection for c in spec.connections.values() if c.glue_connection)


def _connection_arns(target: Target, names: Iterable[str]) -> list[str]:
    return [target.arn("glue", "catalog")] + [target.arn("glue", f"connection/{c}") for c in names]


def _read_connections(target: Target) -> Statement | None:
    """A spec's `glue_connection` is read with GetConnection (extract_jdbc_conf on Glue);
    on Glue, every connection the job is given is read by Glue itself."""
    if not target.connections:
        return None
    return statement(
        "ReadTheGlueConnections",
        ["glue:GetConnection"],
        _connection_arns(target, target.connections),
    )


def _vpc(target: Target) -> Statement | None:
    """A Glue job given connections runs in their VPC: Glue opens the job's network
    interfaces there as the job role (EMR Serverless uses its own service-linked role)."""
    if target.platform != "glue" or not target.connections:
        return None
    return statement("RunInTheConnectionsVpc", GLUE_VPC_ACTIONS, ["*"])


# ---------------------------------------------------------------------------------------
# The deployer


def deployer_policy(spec: PipelineSpec | StreamSpec, target: Target) -> dict[str, Any]:
    if target.platform is None or target.bucket is None:
        raise SluicewayError("iam --role deployer: give --platform glue|emr and --bucket")
    base = target.base()
    artifacts = "/".join(p for p in (base, "artifacts", spec.name, "*") if p)
    upload = statement(
        "UploadTheArtifactSet",
        # HeadObject (is this file there already?) is s3:GetObject.
        ["s3:GetObject", "s3:PutObject"],
        [target.s3(target.bucket, artifacts)],
    )
    check = statement("CheckTheBucket", ["s3:ListBucket"], [target.s3(target.bucket)])
    role = target.job_role or "${JobRoleName}"
    role_arn = target.arn("iam", f"role/{role}", regional=False)
    platform = (
        _deploy_glue(target, glue_connections(spec))
        if target.platform == "glue"
        else _deploy_emr(target, base)
    )
    service = "glue.amazonaws.com" if target.platform == "glue" else "emr-serverless.amazonaws.com"
    return policy(
        [
            check,
            upload,
            *platform,
            statement("CheckTheJobRole", ["iam:GetRole"], [role_arn]),
            statement(
                "PassTheJobRole",
                ["iam:PassRole"],
                [role_arn],
                Condition={"StringEquals": {"iam:PassedToService": service}},
            ),
        ]
    )


def _deploy_glue(target: Target, spec_connections: tuple[str, ...]) -> list[Statement]:
    job = target.arn("glue", f"job/{target.job_name or '${JobName}'}")
    statements = [
        statement(
            "CreateUpdateAndRunTheGlueJob",
            [
                "glue:GetJob",
                "glue:CreateJob",
                "glue:UpdateJob",
                "glue:StartJobRun",
                "glue:GetJobRun",
            ],
            [job],
        ),
        statement(
            "ReadGlueDriverLogs",
            ["logs:GetLogEvents"],
            [target.arn("logs", "log-group:/aws-glue/jobs/error:log-stream:*")],
        ),
    ]
    if spec_connections:
        # The spec's glue_connections are attached to the job, once they are found.
        statements.append(
            statement(
                "CheckTheSpecsGlueConnections",
                ["glue:GetConnection"],
                _connection_arns(target, spec_connections),
            )
        )
    if target.connections:
        # `--connection` is checked; `--subnet` creates (or checks) a NETWORK connection,
        # in the subnet's availability zone.
        statements += [
            statement(
                "CreateOrCheckTheNetworkConnection",
                ["glue:GetConnection", "glue:CreateConnection"],
                _connection_arns(target, target.connections),
            ),
            statement("FindTheSubnetsZone", ["ec2:DescribeSubnets"], ["*"]),
        ]
    return statements


def _deploy_emr(target: Target, base: str) -> list[Statement]:
    app = target.application or "*"
    logs = "/".join(p for p in (base, "emr-logs", "*") if p)
    return [
        statement(
            "ReadFailedRunDriverLogs", ["s3:GetObject"], [target.s3(target.bucket or "", logs)]
        ),
        statement(
            "FindOrCreateTheApplication",
            ["emr-serverless:ListApplications", "emr-serverless:CreateApplication"],
            ["*"],
        ),
        statement(
            "StartAndFollowJobRuns",
            [
                "emr-serverless:GetApplication",
                "emr-serverless:StartJobRun",
                "emr-serverless:GetJobRun",
                "emr-serverless:TagResource",
            ],
            [
                target.arn("emr-serverless", f"/applications/{app}"),
                target.arn("emr-serverless", f"/applications/{app}/jobruns/*"),
            ],
        ),
    ]


def policies_for(spec: PipelineSpec | StreamSpec, target: Target, role: str) -> dict[str, Any]:
    if role == "deployer":
        return deployer_policy(spec, target)
    return job_policy(spec, target)
