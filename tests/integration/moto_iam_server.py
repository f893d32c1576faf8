"""moto_server that checks IAM policies as AWS does for the calls a Sluiceway job makes.

Run with moto's own Python (`.run/moto/venv/bin/python moto_iam_server.py PORT`); the
test turns enforcement on over moto's API (`POST /moto-api/reset-auth`, the server form of
`INITIAL_NO_AUTH_ACTION_COUNT`) once its fixtures exist. moto 5.2.5 enforces IAM, but
three of its simplifications would make the test prove less than it says, so this
launcher corrects them before the server starts (and logs each refusal):

1. HeadBucket: AWS authorizes it as s3:ListBucket (its documented permission); moto asks
   for an "s3:HeadBucket" action that IAM does not have.
2. Glue and Secrets Manager: moto checks every call against the resource "*", so a policy
   naming tables or secrets would be refused for all. Here a call is checked against the
   ARNs AWS checks: the catalog, database and table (or connection) for Glue, the
   secret's full ARN for Secrets Manager.
3. Wildcards: IAM's `?` matches one character (`secret:name-??????`); moto passes it to a
   regular expression unescaped.
4. DeleteObjects (S3A's way to delete): AWS checks s3:DeleteObject on each key; moto on
   the bucket's ARN, refusing every key to a policy that names prefixes.
5. Signatures are not checked (below: moto cannot check the Java SDK's).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import xmltodict
from moto.core.responses import ActionResult, BaseResponse
from moto.glue.responses import GlueResponse
from moto.iam.access_control import IAMPolicyStatement, IAMRequestBase
from moto.s3 import responses as s3_responses
from moto.secretsmanager.responses import SecretsManagerResponse

s3_responses.ACTION_MAP["BUCKET"]["HEAD"]["DEFAULT"] = "ListBucket"
_delete_keys = s3_responses.S3Response._bucket_response_delete_keys


def _delete_keys_checked_per_key(self: Any, bucket_name: str, authenticated: bool = True) -> Any:
    """moto calls this with authenticated=False when the bucket ARN was refused."""
    if authenticated:
        return _delete_keys(self, bucket_name)
    objects = xmltodict.parse(self.body, strip_whitespace=False)["Delete"].get("Object", [])
    objects = objects if isinstance(objects, list) else [objects]
    allowed, errors = [], []
    for obj in objects:  # self.data["Action"] is DeleteObject here
        try:
            self._authenticate_and_authorize_s3_action(bucket_name=bucket_name, key_name=obj["Key"])
            allowed.append(obj)
        except Exception:
            errors.append({"Key": obj["Key"], "Code": "AccessDenied", "Message": "Access Denied"})
    deleted, _ = self.backend.delete_objects(bucket_name, allowed, False)
    self.data["Action"] = "DeleteObjects"
    gone = [{"Key": key, "VersionId": version or None} for key, version, _ in deleted]
    return self.serialized(ActionResult({"Deleted": gone, "Errors": errors}))


s3_responses.S3Response._bucket_response_delete_keys = _delete_keys_checked_per_key  # type: ignore[method-assign]


def _iam_match(pattern: str, value: str) -> re.Match[str] | None:
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.match(f"^{regex}$", value)


IAMPolicyStatement._match = staticmethod(_iam_match)  # type: ignore[method-assign]


def _glue_resources(response: GlueResponse) -> list[str]:
    body = json.loads(response.body or "{}")
    action = response._get_action()
    base = f"arn:aws:glue:{response.region}:{response.current_account}"
    if "Connection" in action:
        name = body.get("Name") or body.get("ConnectionInput", {}).get("Name", "*")
        return [f"{base}:catalog", f"{base}:connection/{name}"]
    if "DatabaseName" in body:
        database = body["DatabaseName"]
        table = body.get("TableName") or body.get("Name") or body.get("TableInput", {}).get("Name")
        tables = [f"{base}:table/{database}/{table}"] if table else []
        return [f"{base}:catalog", f"{base}:database/{database}", *tables]
    if "Database" in action:
        database = body.get("Name") or body.get("DatabaseInput", {}).get("Name")
        return [f"{base}:catalog", f"{base}:database/{database}"]
    return ["*"]


def _glue_authorize(self: GlueResponse, resource: str = "*") -> None:
    for arn in _glue_resources(self):
        BaseResponse._authenticate_and_authorize_normal_action(self, arn)


def _secret_resource(self: SecretsManagerResponse) -> str:
    secret_id = json.loads(self.body or "{}").get("SecretId")
    if not secret_id:
        return "*"
    try:
        return str(self.backend.describe_secret(secret_id).arn)
    except Exception:  # a missing secret: moto answers ResourceNotFound after the check
        return f"arn:aws:secretsmanager:{self.region}:{self.current_account}:secret:{secret_id}"


GlueResponse._authenticate_and_authorize_normal_action = _glue_authorize  # type: ignore[method-assign]
SecretsManagerResponse._determine_resource = _secret_resource  # type: ignore[attr-defined]


def _logged(name: str, check):  # noqa: ANN001, ANN202
    """`check`, printing what was refused to the server's log (the test keeps it)."""

    def wrapper(self: IAMRequestBase, *args: object) -> None:
        try:
            check(self, *args)
        except Exception:
            print(f"moto_iam: {name} refused {self._action} {args}", flush=True)
            raise

    return wrapper


# Signatures are not re-checked: moto recomputes them with botocore, which does not match
# how the Java SDK of Hadoop's S3A signs (every S3A request would be refused). The access
# key still picks the user, and so the policy that is checked.
IAMRequestBase.check_signature = lambda self: None  # type: ignore[method-assign]
IAMRequestBase.check_action_permitted = _logged(  # type: ignore[method-assign]
    "policy", IAMRequestBase.check_action_permitted
)

if __name__ == "__main__":
    from moto.server import main

    main(["-H", "127.0.0.1", "-p", sys.argv[1]])
