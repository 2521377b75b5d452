"""The SAM template (infra/template.yaml): both linters, its wiring, and `sam build`.

Tools: `cfn-lint` (the project's test extra) and `sam` from `.venv-sam` (created by
`infra/setup-sam.sh`; a `sam` on PATH also works). A test skips only when its tool is not
installed at all. `sam build` needs a python3.12 interpreter (the Lambda runtime) on PATH; the
build tests find pyenv's and put it there.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
SAM_VENV = ROOT / ".venv-sam"

FUNCTION_DIRS = {
    "AuthorizerFunction": "functions/authorizer",
    "AuthFunction": "functions/auth",
    "HistoryFunction": "functions/history",
    "PredictFunction": "functions/predict",
    "UploadsFunction": "functions/uploads",
    "OnUploadFunction": "functions/on_upload",
    "BatchStartFunction": "functions/batch_start",
    "BatchWorkerFunction": "functions/batch_worker",
    "MigrateFunction": "functions/migrate",
    "HousekeepingFunction": "functions/housekeeping",
    "WebFunction": "functions/web",
}
BUCKET_NAME_SUB = "skinscan-${Stage}-${AWS::AccountId}-${AWS::Region}"


# ----------------------------------------------------------------------------- helpers


def _tool(name: str) -> str | None:
    candidate = SAM_VENV / "bin" / name
    if name == "sam" and candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    sibling = Path(sys.executable).parent / name  # the test venv's own console scripts
    return str(sibling) if sibling.exists() else None


def _require(name: str, hint: str) -> str:
    path = _tool(name)
    if path is None:
        pytest.skip(f"{name} is not installed ({hint})")
    return path


def _sam_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    env.setdefault("AWS_REGION", env["AWS_DEFAULT_REGION"])
    env["SAM_CLI_TELEMETRY"] = "0"
    py312 = _python312()
    if py312:
        env["PATH"] = f"{Path(py312).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _python312() -> str | None:
    candidates = [shutil.which("python3.12")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(str(p) for p in pyenv_root.glob("versions/3.12*/bin/python3.12"))
    for candidate in candidates:
        if not candidate or "shims" in candidate:
            continue
        ok = subprocess.run(
            [candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 12)"],
            capture_output=True,
        )
        if ok.returncode == 0:
            return candidate
    return None


def _run(cmd: list[str], timeout: int, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=_sam_env(), **kwargs
    )


def _load_template() -> dict:
    pytest.importorskip("cfnlint", reason="cfn-lint is not installed (pip install cfn-lint)")
    from cfnlint.decode import decode  # understands !Sub, !GetAtt, ... short forms

    template, matches = decode(str(TEMPLATE))
    assert not matches, matches
    return json.loads(json.dumps(template, default=str))


def _render() -> dict:
    """The template after the SAM transform (as CloudFormation will see it), done locally."""
    pytest.importorskip("samtranslator", reason="aws-sam-translator comes with cfn-lint")
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    from samtranslator.translator.transform import transform

    template = _load_template()
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if key in props:
                props[key] = f"s3://artifacts/{name}.zip"  # sam package does this on deploy

    class _NoManagedPolicies:
        def load(self):
            return {}

    return transform(template, {}, _NoManagedPolicies())


@pytest.fixture(scope="module")
def template() -> dict:
    return _load_template()


@pytest.fixture(scope="module")
def rendered() -> dict:
    return _render()["Resources"]


# ----------------------------------------------------------------------------- linters


def test_cfn_lint_passes() -> None:
    cfn_lint = _require("cfn-lint", "pip install cfn-lint")
    result = _run([cfn_lint, str(TEMPLATE)], timeout=900)
    assert result.returncode == 0, f"cfn-lint:\n{result.stdout}\n{result.stderr}"


def test_sam_validate_lint_passes() -> None:
    sam = _require("sam", "run infra/setup-sam.sh")
    result = _run([sam, "validate", "--lint", "-t", str(TEMPLATE)], timeout=900)
    assert result.returncode == 0, f"sam validate --lint:\n{result.stdout}\n{result.stderr}"
    assert "is a valid SAM Template" in result.stdout + result.stderr


# ----------------------------------------------------------------------------- wiring


def test_every_function_points_at_its_folder(template: dict) -> None:
    functions = {
        name: res["Properties"]["CodeUri"]
        for name, res in template["Resources"].items()
        if res["Type"] == "AWS::Serverless::Function"
    }
    assert set(functions) == set(FUNCTION_DIRS)
    for name, code_uri in functions.items():
        resolved = (TEMPLATE.parent / code_uri).resolve()
        assert resolved == (ROOT / FUNCTION_DIRS[name]).resolve(), name
    assert template["Globals"]["Function"]["Runtime"] == "python3.12"
    assert template["Globals"]["Function"]["Handler"] == "app.handler"
    layer = template["Resources"]["CommonLayer"]
    assert (TEMPLATE.parent / layer["Properties"]["ContentUri"]).resolve() == (
        ROOT / "layers" / "common"
    ).resolve()
    assert layer["Metadata"]["BuildMethod"] == "python3.12"


def test_http_routes_and_who_guards_them(template: dict, rendered: dict) -> None:
    paths = rendered["HttpApi"]["Properties"]["Body"]["paths"]
    routes = {}
    for path, methods in paths.items():
        for method, op in methods.items():
            if method == "x-amazon-apigateway-any-method" or not isinstance(op, dict):
                continue
            # SAM writes `Authorizer: NONE` as a "NONE" security requirement: public.
            schemes = {next(iter(s)) for s in op.get("security", [])} - {"NONE"}
            routes[(method.upper(), path)] = schemes
    guarded = {"SkinScanJwt"}
    expected = {
        ("POST", "/v1/auth/register"): set(),
        ("POST", "/v1/auth/login"): set(),
        ("POST", "/v1/auth/refresh"): set(),
        ("POST", "/v1/auth/logout"): set(),
        ("GET", "/v1/auth/me"): guarded,
        ("DELETE", "/v1/auth/me"): guarded,
        ("POST", "/v1/auth/logout-all"): guarded,
        ("POST", "/v1/auth/password"): guarded,
        ("GET", "/v1/predictions"): guarded,
        ("GET", "/v1/predictions/{id}"): set(),
        ("DELETE", "/v1/predictions/{id}"): set(),
        ("GET", "/v1/predictions/{id}/report.pdf"): set(),
        ("POST", "/v1/predict"): set(),
        ("POST", "/v1/uploads"): set(),
        ("GET", "/"): set(),  # the web app, at the API's own origin
        ("GET", "/{proxy+}"): set(),
    }
    assert routes == expected
    # API Gateway may invoke the authorizer (HTTP APIs get no such permission by default).
    assert "HttpApiSkinScanJwtAuthorizerPermission" in rendered
    cors = template["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]
    assert "authorization" in [h.lower() for h in cors["AllowHeaders"]]


def test_s3_notifications_have_no_circular_dependency(template: dict, rendered: dict) -> None:
    bucket = rendered["DataBucket"]
    configs = bucket["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]
    by_function = {c["Function"]["Fn::GetAtt"][0]: c for c in configs}
    assert set(by_function) == {"OnUploadFunction", "BatchStartFunction"}
    rules = lambda c: {r["Name"]: r["Value"] for r in c["Filter"]["S3Key"]["Rules"]}  # noqa: E731
    assert rules(by_function["OnUploadFunction"]) == {"prefix": "uploads/"}
    assert rules(by_function["BatchStartFunction"]) == {
        "prefix": "batch/",
        "suffix": "manifest.csv",
    }
    assert set(bucket["DependsOn"]) == {
        "OnUploadFunctionUploadedPermission",
        "BatchStartFunctionManifestUploadedPermission",
    }
    # The trap: a function (or its role) referring to the bucket resource itself. They must use
    # the computed name instead.
    assert template["Resources"]["DataBucket"]["Properties"]["BucketName"] == {
        "Fn::Sub": BUCKET_NAME_SUB
    }
    for name in FUNCTION_DIRS:
        for logical in (name, f"{name}Role"):
            text = json.dumps(rendered[logical])
            assert '"DataBucket"' not in text, (
                f"{logical} refers to DataBucket: circular dependency"
            )


def test_bucket_is_private_encrypted_and_expires_guest_uploads(template: dict) -> None:
    props = template["Resources"]["DataBucket"]["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert "POST" in props["CorsConfiguration"]["CorsRules"][0]["AllowedMethods"]
    rules = [r for r in props["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in r]
    expiring = [r["Prefix"] for r in rules if r["Status"] == "Enabled" and "Prefix" in r]
    # Every object a guest's scan leaves, as storage/keys.py names it, expires.
    from skinscan_common.storage import keys

    scan = uuid.uuid4()
    for key in (
        keys.image_key(scan, None, "jpg"),
        keys.heatmap_key(scan, None),
        keys.overlay_key(scan, None),
    ):
        assert any(key.startswith(prefix) for prefix in expiring), key
    # ... and nothing of a signed-in user's (their objects go with their account).
    user = uuid.uuid4()
    for key in (keys.image_key(scan, user), keys.overlay_key(scan, user)):
        assert not any(key.startswith(prefix) for prefix in expiring), key


def test_queues_have_dead_letter_queues(rendered: dict) -> None:
    chunk = rendered["BatchChunkQueue"]["Properties"]
    assert chunk["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["BatchChunkDLQ", "Arn"]}
    assert chunk["VisibilityTimeout"] >= 900  # at least the worker's timeout
    mapping = rendered["BatchWorkerFunctionChunks"]["Properties"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    for function, dlq in (
        ("OnUploadFunction", "UploadEventsDLQ"),
        ("BatchStartFunction", "BatchStartDLQ"),
    ):
        config = rendered[f"{function}EventInvokeConfig"]["Properties"]
        assert config["DestinationConfig"]["OnFailure"]["Destination"] == {
            "Fn::GetAtt": [dlq, "Arn"]
        }


def test_database_is_private_with_a_managed_password(template: dict) -> None:
    res = template["Resources"]
    db = res["Database"]["Properties"]
    assert db["ManageMasterUserPassword"] is True
    assert db["PubliclyAccessible"] is False
    assert "MasterUserPassword" not in db
    ingress = [
        r["Properties"] for r in res.values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"
    ]
    into_db = {
        r["SourceSecurityGroupId"]["Ref"]
        for r in ingress
        if r["GroupId"] == {"Ref": "DatabaseSecurityGroup"}
    }
    assert into_db == {"LambdaSecurityGroup", "EndpointSecurityGroup"}
    assert "SecurityGroupIngress" not in res["DatabaseSecurityGroup"]["Properties"]
    services = {
        r["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[-1]
        for r in res.values()
        if r["Type"] == "AWS::EC2::VPCEndpoint"
    }
    assert services >= {"s3", "secretsmanager", "runtime", "sqs"}
    assert not any(
        r["Type"] in ("AWS::EC2::NatGateway", "AWS::EC2::InternetGateway") for r in res.values()
    )


def test_iam_is_scoped(rendered: dict) -> None:
    """No function may do everything to everything; only describe-style actions use '*'."""
    allowed_star = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}
    for name, res in rendered.items():
        if res["Type"] != "AWS::IAM::Role":
            continue
        for policy in res["Properties"].get("Policies", []):
            for stmt in policy["PolicyDocument"]["Statement"]:
                actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
                assert not any(a == "*" or a.endswith(":*") for a in actions), (name, stmt)
                if stmt.get("Resource") == "*":
                    assert all(a in allowed_star or a.startswith("ec2:") for a in actions), (
                        name,
                        stmt,
                    )


# CUDA version of each endpoint machine image's NVIDIA driver (SageMaker's ProductionVariant
# documentation); without InferenceAmiVersion, g5 instances get driver 470 (CUDA 11.4).
AMI_CUDA = {
    "al2-ami-sagemaker-inference-gpu-2": (12, 2),
    "al2-ami-sagemaker-inference-gpu-2-1": (12, 2),
    "al2-ami-sagemaker-inference-gpu-3-1": (12, 4),
}


def test_the_endpoint_driver_runs_the_container_cuda(template: dict) -> None:
    """CUDA 12.x runs on any 12.x driver (minor-version compatibility), not on an 11.x one."""
    dockerfile = (ROOT / "inference_container" / "Dockerfile").read_text()
    image_cuda = re.search(r"ARG BASE_IMAGE=\S*-cuda(\d+)\.(\d+)", dockerfile)
    assert image_cuda, "the Dockerfile's base image names its CUDA version"
    variant = template["Resources"]["InferenceEndpointConfig"]["Properties"]
    ami = variant["ProductionVariants"][0].get("InferenceAmiVersion")
    assert ami == {"Ref": "EndpointAmiVersion"}, "no InferenceAmiVersion: driver 470 on g5"
    choices = template["Parameters"]["EndpointAmiVersion"]
    for choice in choices["AllowedValues"]:
        assert AMI_CUDA[choice][0] == int(image_cuda.group(1)), choice
    assert AMI_CUDA[choices["Default"]] == max(AMI_CUDA.values())
    # torchvision must be built for the same CUDA as the base image's torch (it refuses to
    # load otherwise), so it comes from PyTorch's index for that CUDA, not from PyPI.
    wheel_index = re.search(
        r"--index-url https://download\.pytorch\.org/whl/cu(\d+)\s*\\?\s*\"torchvision==",
        dockerfile,
    )
    assert wheel_index, "torchvision from PyTorch's index for the base image's CUDA"
    assert wheel_index.group(1) == image_cuda.group(1) + image_cuda.group(2)


def test_environment_of_the_functions(template: dict) -> None:
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    for key in (
        "SKINSCAN_DB_SECRET_ARN",
        "SKINSCAN_DB_HOST",
        "SKINSCAN_DB_NAME",
        "SKINSCAN_STORAGE_BACKEND",
        "SKINSCAN_BUCKET",
        "SKINSCAN_JWT_SECRET_ARN",
        "SKINSCAN_ENDPOINT_MODE",
        "SKINSCAN_ENDPOINT_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "LOG_LEVEL",
    ):
        assert key in env, key
    assert env["SKINSCAN_BUCKET"] == {"Fn::Sub": BUCKET_NAME_SUB}
    for name in FUNCTION_DIRS:
        own = template["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert own["POWERTOOLS_SERVICE_NAME"].startswith("skinscan-")
    for name in ("BatchStartFunction", "BatchWorkerFunction"):
        own = template["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert own["SKINSCAN_BATCH_QUEUE_URL"] == {"Ref": "BatchChunkQueue"}


def test_functions_stop_waiting_for_the_model_before_their_own_timeout(template: dict) -> None:
    """Each function that calls the endpoint gives up on it in time to answer or mark the row
    failed, rather than being killed mid-call by Lambda (which leaves nothing said)."""
    from skinscan_common.config import Settings

    default = Settings().endpoint_timeout_s
    for name in ("PredictFunction", "OnUploadFunction", "BatchWorkerFunction"):
        props = template["Resources"][name]["Properties"]
        wait = float(props["Environment"]["Variables"].get("SKINSCAN_ENDPOINT_TIMEOUT_S", default))
        assert wait + 5 <= props["Timeout"], name


def test_alarms_cover_api_endpoint_and_dead_letter_queues(template: dict) -> None:
    alarms = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    metrics = {(a["Namespace"], a["MetricName"]) for a in alarms}
    assert ("AWS/ApiGateway", "5xx") in metrics
    assert ("AWS/SageMaker", "Invocation5XXErrors") in metrics
    dlq_alarms = {
        a["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in alarms
        if a["MetricName"] == "ApproximateNumberOfMessagesVisible"
    }
    assert dlq_alarms == {"BatchChunkDLQ", "UploadEventsDLQ", "BatchStartDLQ"}
    assert {"ApiUrl", "BucketName", "EndpointName"} <= set(template["Outputs"])
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], alarm["AlarmName"]


def test_every_function_has_an_errors_alarm(template: dict) -> None:
    """A function that fails (housekeeping, migrate, the authorizer, a timeout anywhere) pages
    someone: one alarm on AWS/Lambda Errors per function."""
    alarmed = {
        a["Dimensions"][0]["Value"]["Ref"]
        for a in (
            r["Properties"]
            for r in template["Resources"].values()
            if r["Type"] == "AWS::CloudWatch::Alarm"
        )
        if (a["Namespace"], a["MetricName"]) == ("AWS/Lambda", "Errors")
        and a["Dimensions"][0]["Name"] == "FunctionName"
        and a["Threshold"] == 1
    }
    assert alarmed == set(FUNCTION_DIRS)


def test_refresh_token_reuse_alarm_watches_the_metric_as_it_is_emitted(template: dict) -> None:
    """Powertools emits the metric in POWERTOOLS_METRICS_NAMESPACE with one dimension,
    ``service`` = the emitting function's POWERTOOLS_SERVICE_NAME (the auth function's)."""
    accounts = ROOT / "layers/common/skinscan_common/services/accounts.py"
    assert '_add_metric("RefreshTokenReuse")' in accounts.read_text()
    (alarm,) = (
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"]["MetricName"] == "RefreshTokenReuse"
    )
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    auth_env = template["Resources"]["AuthFunction"]["Properties"]["Environment"]["Variables"]
    assert alarm["Namespace"] == env["POWERTOOLS_METRICS_NAMESPACE"]
    assert alarm["Dimensions"] == [
        {"Name": "service", "Value": auth_env["POWERTOOLS_SERVICE_NAME"]}
    ]
    assert alarm["Threshold"] == 1


def _log_group(template: dict, ref: dict) -> dict:
    resource = template["Resources"][ref["Ref"]]
    assert resource["Type"] == "AWS::Logs::LogGroup", ref
    return resource["Properties"]


def test_every_log_group_expires(template: dict, rendered: dict) -> None:
    """Logs hold user ids and error details: each function logs to its own group with the
    stack's retention (not to /aws/lambda/<name>, which Lambda would create and keep for ever),
    and so does the SageMaker endpoint."""
    names = []
    for name in FUNCTION_DIRS:
        config = template["Resources"][name]["Properties"]["LoggingConfig"]
        group = _log_group(template, config["LogGroup"])
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        names.append(group["LogGroupName"]["Fn::Sub"])
        # ... and the function CloudFormation creates (after the SAM transform) uses it.
        assert rendered[name]["Properties"]["LoggingConfig"]["LogGroup"] == config["LogGroup"]
    assert len(set(names)) == len(names)
    assert all(n.startswith("/aws/lambda/skinscan-${Stage}-") for n in names), names
    endpoint = template["Resources"]["InferenceEndpoint"]
    assert endpoint["Properties"]["EndpointName"] == {"Fn::Sub": "skinscan-${Stage}"}
    logs = template["Resources"][endpoint["DependsOn"]]["Properties"]
    assert logs["LogGroupName"] == {"Fn::Sub": "/aws/sagemaker/Endpoints/skinscan-${Stage}"}
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Logs::LogGroup":
            assert resource["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name


def test_tracing_and_log_correlation(template: dict) -> None:
    """X-Ray is on for every function (the layer's Tracer wraps the API handlers), and the
    access log records the Lambda request id next to API Gateway's (the functions' log lines
    carry both: function_request_id and correlation_id)."""
    assert template["Globals"]["Function"]["Tracing"] == "Active"
    log_format = template["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"]["Format"]
    access = json.loads(log_format)
    assert access["requestId"] == "$context.requestId"
    assert access["integrationRequestId"] == "$context.integration.requestId"


def _s3_grants(statements: list[dict]) -> set[tuple[str, str]]:
    """(action, resource) pairs, the resource as the JSON of its !Sub."""
    return {
        (action, json.dumps(stmt["Resource"]))
        for stmt in statements
        for action in (stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]])
        if not isinstance(stmt["Resource"], list)
    }


def test_who_deletes_a_deleted_prediction_s_heatmaps_may_do_so(template: dict) -> None:
    """on_upload (a photo arriving for a deleted prediction) lists and deletes its results
    folder; the container deletes the heatmaps it wrote for a prediction deleted meanwhile.
    Local stores and moto check no IAM: only this test does."""
    bucket = f'{{"Fn::Sub": "arn:${{AWS::Partition}}:s3:::{BUCKET_NAME_SUB}'
    on_upload = template["Resources"]["OnUploadFunction"]["Properties"]["Policies"]
    granted = _s3_grants([s for p in on_upload for s in p.get("Statement", [])])
    assert ("s3:ListBucket", bucket + '"}') in granted
    assert ("s3:DeleteObject", bucket + '/results/*"}') in granted
    role = template["Resources"]["InferenceRole"]["Properties"]["Policies"]
    granted = _s3_grants([s for p in role for s in p["PolicyDocument"]["Statement"]])
    assert ("s3:DeleteObject", bucket + '/results/*"}') in granted


def test_housekeeping_runs_every_hour_with_what_it_needs(template: dict) -> None:
    props = template["Resources"]["HousekeepingFunction"]["Properties"]
    (event,) = props["Events"].values()
    assert event["Type"] == "ScheduleV2"
    assert event["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    assert props["VpcConfig"]  # the database is in the private subnets
    granted = {
        (action, json.dumps(stmt["Resource"]))
        for policy in props["Policies"]
        for stmt in policy.get("Statement", [])
        for action in (stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]])
    }
    bucket = f'{{"Fn::Sub": "arn:${{AWS::Partition}}:s3:::{BUCKET_NAME_SUB}'
    assert ("s3:ListBucket", bucket + '"}') in granted  # else a missing photo answers 403
    assert ("s3:DeleteObject", bucket + '/uploads/*"}') in granted
    assert ("s3:PutObject", bucket + '/batch/*"}') in granted


# ----------------------------------------------------------------------------- sam build


def _sam_build(template_path: Path, build_dir: Path) -> subprocess.CompletedProcess[str]:
    sam = _require("sam", "run infra/setup-sam.sh")
    if _python312() is None:
        pytest.skip("no python3.12 interpreter for the Lambda runtime (pyenv install 3.12)")
    return _run(
        [
            sam,
            "build",
            "--template-file",
            str(template_path),
            "--build-dir",
            str(build_dir),
            "--cache-dir",
            str(build_dir.parent / "cache"),
        ],
        timeout=1200,
    )


@pytest.mark.slow
def test_sam_build_of_the_whole_stack(tmp_path: Path) -> None:
    """The acceptance check: every function and the layer build for python3.12."""
    missing = [d for d in FUNCTION_DIRS.values() if not (ROOT / d / "app.py").is_file()]
    assert not missing, f"sam build needs these function folders (with app.py): {missing}"
    result = _sam_build(TEMPLATE, tmp_path / "build")
    assert result.returncode == 0, f"sam build:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    built = tmp_path / "build"
    assert (built / "template.yaml").is_file()
    assert (built / "AuthorizerFunction" / "app.py").is_file()
    # The web app's files themselves, not a link to a folder Lambda will not have.
    index = built / "WebFunction" / "static" / "index.html"
    assert index.is_file() and not (built / "WebFunction" / "static").is_symlink()
    assert index.read_bytes() == (ROOT / "web" / "index.html").read_bytes()
    layer_dirs = list(built.glob("CommonLayer*/python"))
    assert layer_dirs and (layer_dirs[0] / "skinscan_common").is_dir()
    assert (layer_dirs[0] / "jwt").is_dir()
    _import_every_built_function(built, layer_dirs[0], tmp_path / "runtime")


_IMPORT_AS_LAMBDA = """
import importlib, sys
sys.path[:] = sys.argv[1:4] + [p for p in sys.path if "-packages" not in p]
app = importlib.import_module("app")
assert callable(app.handler), "no handler"
"""


def _lambda_runtime_packages(into: Path) -> Path:
    """boto3 and what it needs, as the Lambda runtime provides them (pure Python: any 3.x)."""
    from importlib import metadata

    from tests.infra.test_dependencies import _closure

    into.mkdir()
    for name in _closure(["boto3"]):
        dist = metadata.distribution(name)
        for top in {f.parts[0] for f in dist.files or [] if not f.parts[0].endswith("-info")}:
            source = Path(str(dist.locate_file(top)))
            if source.exists() and not (into / top).exists() and top != "..":
                (into / top).symlink_to(source)
    return into


def _import_every_built_function(built: Path, layer: Path, runtime: Path) -> None:
    """Each function as Lambda loads it: its folder, the layer and the runtime's boto3, nothing
    of the tests' virtualenv; a package the layer lacks fails here, not after a deploy."""
    python312 = _python312()
    assert python312 is not None
    packages = _lambda_runtime_packages(runtime)
    failed = {}
    for name in FUNCTION_DIRS:
        done = _run(
            [
                python312,
                "-I",
                "-c",
                _IMPORT_AS_LAMBDA,
                str(built / name),
                str(layer),
                str(packages),
            ],
            timeout=300,
        )
        if done.returncode != 0:
            failed[name] = done.stderr.strip().splitlines()[-1:]
    assert not failed, f"functions that fail to import as built: {failed}"


@pytest.mark.slow
def test_sam_build_of_the_layer_and_the_infra_functions(tmp_path: Path) -> None:
    """Builds what this folder owns (layer, authorizer, migrate) whatever else exists yet."""
    template = copy.deepcopy(_load_template())
    keep = {"AuthorizerFunction", "MigrateFunction"}
    for name in [
        n
        for n, r in template["Resources"].items()
        if r["Type"] == "AWS::Serverless::Function" and n not in keep
    ]:
        del template["Resources"][name]
    for name in ("AuthorizerFunction", "MigrateFunction"):
        props = template["Resources"][name]["Properties"]
        props["CodeUri"] = str((TEMPLATE.parent / props["CodeUri"]).resolve())
    layer = template["Resources"]["CommonLayer"]["Properties"]
    layer["ContentUri"] = str((TEMPLATE.parent / layer["ContentUri"]).resolve())
    subset = tmp_path / "template.json"  # JSON is YAML: sam reads it as is
    subset.write_text(json.dumps(template))
    result = _sam_build(subset, tmp_path / "build")
    assert result.returncode == 0, f"sam build:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    layer_dirs = list((tmp_path / "build").glob("CommonLayer*/python"))
    assert layer_dirs, list((tmp_path / "build").iterdir())
    for package in (
        "skinscan_common",
        "jwt",
        "fastapi",
        "mangum",
        "sqlalchemy",
        "pg8000",
        "alembic",
    ):
        assert (layer_dirs[0] / package).is_dir(), package
    assert list(layer_dirs[0].glob("argon2*")), "argon2-cffi wheel for the Lambda platform"
    assert (tmp_path / "build" / "MigrateFunction" / "app.py").is_file()
