"""Regenerate docs/iam/*.json with `sluiceway iam` (`--check`: fail if they are stale).

The policies are those of the demo pipeline (pipelines/tpch_demo.toml) as docs/deploy.md
deploys it: its password and hash salt in Secrets Manager instead of environment
variables, output on S3, Iceberg tables in the Glue Data Catalog, a Glue connection for
the VPC. `${...}` placeholders stand for the names of your account:

    python3 scripts/iam_docs.py            # rewrite docs/iam/*.json
    python3 scripts/iam_docs.py --check    # exit 1 naming each stale file
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from sluiceway import iam  # noqa: E402

DOCS = ROOT / "docs" / "iam"
DEMO = ROOT / "pipelines" / "tpch_demo.toml"
# What docs/deploy.md's first step changes in a spec: secrets, not environment variables.
DEPLOYED = {
    'password_env = "SLUICEWAY_TPCH_PASSWORD"': 'secret_id = "${SecretName}"',
    'hash_salt_env = "SLUICEWAY_HASH_SALT"': 'hash_salt_secret_id = "${SaltSecretName}"',
}
COMMON = {"account": "${Account}", "region": "${Region}"}
ARTIFACTS = {"bucket": "${ArtifactsBucket}", "prefix": "${ArtifactsPrefix}"}
CONNECTION = {"connections": ("${ConnectionName}",)}
# file -> (role, Target settings besides COMMON)
POLICIES: dict[str, tuple[str, dict]] = {
    "glue-job-role.json": ("job", {"platform": "glue", **ARTIFACTS, **CONNECTION}),
    "emr-serverless-execution-role.json": ("job", {"platform": "emr", **ARTIFACTS}),
    "deployer-glue.json": (
        "deployer",
        {
            "platform": "glue",
            **ARTIFACTS,
            **CONNECTION,
            "job_name": "${JobName}",
            "job_role": "${GlueRoleName}",
        },
    ),
    "deployer-emr.json": (
        "deployer",
        {"platform": "emr", **ARTIFACTS, "job_role": "${EmrRoleName}"},
    ),
}


def rendered() -> dict[str, str]:
    text = DEMO.read_text(encoding="utf-8")
    for old, new in DEPLOYED.items():
        if old not in text:
            raise SystemExit(f"{DEMO}: expected {old!r} (update scripts/iam_docs.py)")
        text = text.replace(old, new)
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / DEMO.name
        spec_path.write_text(text, encoding="utf-8")
        spec = iam.load_any_spec(str(spec_path), "s3://${DataBucket}/${DataPrefix}", None, "glue")
    out = {}
    for name, (role, settings) in POLICIES.items():
        target = iam.Target(**COMMON, **settings)
        out[name] = json.dumps(iam.policies_for(spec, target, role), indent=2) + "\n"
    return out


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    stale = []
    for name, text in rendered().items():
        path = DOCS / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not check:
            path.write_text(text, encoding="utf-8")
    if check and stale:
        print(f"docs/iam is stale ({', '.join(stale)}): run python3 scripts/iam_docs.py")
        return 1
    print(f"docs/iam: {len(stale)} of {len(POLICIES)} policies {'stale' if check else 'written'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
