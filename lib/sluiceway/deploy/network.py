"""How a deployed job reaches a database inside a VPC: a subnet and security groups, as a
Glue NETWORK connection attached to the job, or as the network configuration of a new EMR
Serverless application. Without one, a job cannot open a connection to an RDS instance that
is not publicly reachable (it times out at the first JDBC connect)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sluiceway.deploy.aws import AwsClients, aws_call, aws_lookup
from sluiceway.errors import DeployError

_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SECURITY_GROUP = re.compile(r"^sg-[0-9a-f]{8,17}$")


@dataclass(frozen=True)
class Network:
    """`--subnet` and `--security-group`, as given (both repeatable)."""

    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()

    @property
    def given(self) -> bool:
        return bool(self.subnets or self.security_groups)

    def validate(self) -> None:
        for subnet in self.subnets:
            if not _SUBNET.match(subnet):
                raise DeployError(f"--subnet {subnet!r}: expected a subnet id (subnet-0abc...)")
        for group in self.security_groups:
            if not _SECURITY_GROUP.match(group):
                raise DeployError(
                    f"--security-group {group!r}: expected a security group id (sg-0abc...)"
                )
        if self.given and not (self.subnets and self.security_groups):
            raise DeployError(
                "--subnet and --security-group go together: the job runs in the subnets with "
                "the security groups the database's own security group admits"
            )

    def emr_configuration(self) -> dict[str, list[str]]:
        """CreateApplication's networkConfiguration."""
        return {"subnetIds": list(self.subnets), "securityGroupIds": list(self.security_groups)}


def ensure_glue_network_connection(clients: AwsClients, name: str, network: Network) -> None:
    """The Glue NETWORK connection `name` for `network`: created (its availability zone is
    the subnet's), or kept when one with that name already has this subnet and groups."""
    if len(network.subnets) != 1:
        raise DeployError("a Glue job runs in one subnet: give exactly one --subnet")
    subnet = network.subnets[0]
    wanted = {"SubnetId": subnet, "SecurityGroupIdList": sorted(network.security_groups)}
    found = aws_lookup(
        f"Glue connection {name}",
        clients.glue.get_connection,
        missing=("EntityNotFoundException",),
        Name=name,
    )
    if found is not None:
        _check_same(name, found["Connection"], wanted)
        return
    subnets = aws_call(f"EC2 subnet {subnet}", clients.ec2.describe_subnets, SubnetIds=[subnet])
    zone = subnets["Subnets"][0]["AvailabilityZone"]
    aws_call(
        f"create Glue connection {name}",
        clients.glue.create_connection,
        ConnectionInput={
            "Name": name,
            "Description": "Sluiceway: the VPC path of a job to its databases",
            "ConnectionType": "NETWORK",
            "ConnectionProperties": {},
            "PhysicalConnectionRequirements": {**wanted, "AvailabilityZone": zone},
        },
    )


def _check_same(name: str, connection: dict[str, Any], wanted: dict[str, Any]) -> None:
    physical = connection.get("PhysicalConnectionRequirements", {})
    have = {
        "SubnetId": physical.get("SubnetId"),
        "SecurityGroupIdList": sorted(physical.get("SecurityGroupIdList", [])),
    }
    # Glue names the type; moto_server leaves it out (None), which is taken as unknown.
    if connection.get("ConnectionType") not in ("NETWORK", None) or have != wanted:
        raise DeployError(
            f"Glue connection {name} exists with subnet "
            f"{have['SubnetId']} and security groups {have['SecurityGroupIdList']}; it is not "
            "changed here: give another --network-connection name, or delete it"
        )
