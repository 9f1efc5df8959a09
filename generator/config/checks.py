"""Checks for the config's value types. Each returns None when the value is fine, else
a message saying what is wrong and what would be right."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from decimal import Decimal

from generator.config import model

Check = Callable[[str], str | None]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", re.ASCII)
_DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$", re.ASCII)
_DNS_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", re.ASCII
)
_QUANTITY = re.compile(
    r"^(?P<sign>[+-]?)(?P<number>[0-9]+(\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$",
    re.ASCII,
)
# Suffixes people write that Kubernetes does not read, and what they most likely meant.
_QUANTITY_NEAR_MISS = {
    "KB": "'{n}Ki' or '{n}k'",
    "MB": "'{n}Mi' or '{n}M'",
    "GB": "'{n}Gi' or '{n}G'",
    "TB": "'{n}Ti' or '{n}T'",
    "KIB": "'{n}Ki'",
    "MIB": "'{n}Mi'",
    "GIB": "'{n}Gi'",
    "TIB": "'{n}Ti'",
    "MI": "'{n}Mi'",
    "GI": "'{n}Gi'",
    "TI": "'{n}Ti'",
}
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", re.ASCII)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$", re.ASCII)
# AWS Secrets Manager names: 1 to 512 of letters, digits and /_+=.@- (AWS Secrets Manager
# API Reference, CreateSecret `Name`); Google's secret ids are a subset (config/rules.py).
_SECRET_PATH = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$", re.ASCII)
# A dataset's source: a bucket and an optional prefix (folders of letters, digits and
# ._-, none starting with a dot), or a claim of the workload's namespace. The clouds'
# bucket naming rules beyond the alphabet are checked in `data_source`.
_BUCKET_SOURCE = re.compile(
    r"^(?P<scheme>s3|gs)://(?P<bucket>[a-z0-9._-]+)"
    r"(?P<prefix>(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*)/?$",
    re.ASCII,
)
_CLAIM_SOURCE = re.compile(r"^pvc:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", re.ASCII)
_DURATION = re.compile(r"^([0-9]+(h|m|s))+$", re.ASCII)
_K8S_VERSION = re.compile(r"^1\.([0-9]+)$", re.ASCII)
_GIT_URL = re.compile(r"^(https://|ssh://|git@[^:/ \t\n\r\f\v]+:)[!-~]+$", re.ASCII)
_AWS_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$", re.ASCII)
_AWS_SUBNET = re.compile(r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$", re.ASCII)
_GCP_PROJECT = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$", re.ASCII)
_GCP_LOCATION = re.compile(r"^[a-z]+-[a-z]+[0-9]+(-[a-z])?$", re.ASCII)
_IMAGE_PATH = re.compile(r"^[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$", re.ASCII)
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", re.ASCII)
_IMAGE_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$", re.ASCII)
_REGISTRY = re.compile(
    r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$",
    re.ASCII,
)
# A registry host: DNS labels (a letter or digit at both ends), or an IPv4 address, and
# an optional port (distribution/reference's domain grammar, lowercase as registries are).
_REGISTRY_HOST = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:[0-9]{1,5})?$",
    re.ASCII,
)
_EFS_ID = re.compile(r"^fs-([0-9a-f]{8}|[0-9a-f]{17})$", re.ASCII)
_IAM_POLICY_ARN = re.compile(
    r"^arn:aws[a-z-]*:iam::(aws|[0-9]{12}):policy/[A-Za-z0-9_+=,.@/-]+$", re.ASCII
)
_GCP_ROLE = re.compile(
    r"^(roles/[a-zA-Z0-9_.]+|projects/[a-z][-a-z0-9]+/roles/[a-zA-Z0-9_.]+)$", re.ASCII
)
_GCP_SERVICE_ACCOUNT = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$", re.ASCII)
_IAM_PRINCIPAL_ARN = re.compile(
    r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]+$", re.ASCII
)
_AWS_ACCOUNT_ID = re.compile(r"^[0-9]{12}$", re.ASCII)
_GCP_SERVICE_ACCOUNT_EMAIL = re.compile(
    r"^[a-z][-a-z0-9]{4,28}[a-z0-9]@[a-z][-a-z0-9]{4,28}[a-z0-9]\.iam\.gserviceaccount\.com$",
    re.ASCII,
)

# Kubernetes versions whose strict schemas `validate` can use.
SUPPORTED_KUBERNETES_MINORS = range(25, 38)


def dns_label(value: str) -> str | None:
    if len(value) > 63:
        return f"{value!r} is longer than 63 characters"
    if not _DNS_LABEL.fullmatch(value):
        return (
            f"{value!r} is not a valid DNS label "
            "(lowercase letters, digits and '-', starting and ending with a letter or digit)"
        )
    return None


def workload_name(value: str) -> str | None:
    if len(value) > 63:
        return f"{value!r} is longer than 63 characters"
    if not _DNS_1035_LABEL.fullmatch(value):
        return (
            f"{value!r} is not a valid name (lowercase letters, digits and '-', starting "
            "with a letter and ending with a letter or digit: it also names a Service)"
        )
    return None


def quantity(value: str) -> str | None:
    match = _QUANTITY.fullmatch(value)
    if not match:
        suffix = re.sub(r"^[0-9.]+", "", value)
        hint = _QUANTITY_NEAR_MISS.get(suffix.upper()) if suffix != value else None
        number = value[: len(value) - len(suffix)]
        if hint and re.fullmatch(r"[0-9]+(\.[0-9]+)?", number, re.ASCII):
            meant = hint.format(n=number)
            return f"{value!r} is not a Kubernetes quantity (did you mean {meant}?)"
        return f"{value!r} is not a Kubernetes quantity (e.g. 500m, 4, 16Gi, 10G)"
    if match.group("sign") == "-" or Decimal(match.group("number")) == 0:
        return f"{value!r} must be greater than zero"
    return None


def cidr(value: str) -> str | None:
    if not value.strip():
        return "a CIDR must not be empty (e.g. 10.20.0.0/16)"
    address, slash, prefix = value.partition("/")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"{value!r} is not a valid CIDR: {address!r} is not an IP address"
    if not slash:
        single = "32" if ip.version == 4 else "128"
        return f"{value!r} is not a CIDR: it needs a prefix length (e.g. {value}/{single})"
    if not re.fullmatch("[0-9]{1,3}", prefix, re.ASCII) or int(prefix) > ip.max_prefixlen:
        return (
            f"{value!r} is not a valid CIDR: the prefix length must be "
            f"0 to {ip.max_prefixlen} (e.g. {address}/16)"
        )
    network = ipaddress.ip_network(value, strict=False)
    if str(network.network_address) != str(ip):
        return f"{value!r} has host bits set (did you mean {network}?)"
    return None


def image(value: str) -> str | None:
    name, _, digest = value.partition("@")
    if digest and not _IMAGE_DIGEST.fullmatch(digest):
        return f"{value!r}: the digest must look like sha256:<64 hex digits>"
    last = name.rsplit("/", 1)[-1]
    repository, tag = name.rsplit(":", 1) if ":" in last else (name, "")
    registry, _, path = repository.partition("/")
    if "/" in repository and ("." in registry or ":" in registry or registry == "localhost"):
        repository = path
        if not _REGISTRY_HOST.fullmatch(registry):
            return (
                f"{value!r}: {registry!r} is not a registry host (host names of letters, "
                "digits, '-' and '.', and an optional :port)"
            )
    if not _IMAGE_PATH.fullmatch(repository):
        return f"{value!r} is not a valid image reference"
    if tag and not _IMAGE_TAG.fullmatch(tag):
        return f"{value!r} has an invalid tag {tag!r}"
    if not tag and not digest:
        return f"{value!r} is not pinned: add a tag or digest (e.g. {value}:1.0.0)"
    if tag == "latest" and not digest:
        return f"{value!r} uses the moving tag 'latest': pin a version or digest"
    return None


def absolute_path(value: str) -> str | None:
    if not value.startswith("/"):
        return f"{value!r} is not an absolute path (e.g. /var/ml_model)"
    if any(part == ".." for part in value.split("/")):
        return f"{value!r} must not contain '..'"
    return None


def env_name(value: str) -> str | None:
    if not _ENV_NAME.fullmatch(value):
        return f"{value!r} is not a valid environment variable name (letters, digits and '_')"
    return None


def secret_path(value: str) -> str | None:
    if not _SECRET_PATH.fullmatch(value):
        return (
            f"{value!r} is not a secret name a cloud store accepts (1 to 512 letters, digits "
            "and /_+=.@-)"
        )
    return None


def data_source(value: str) -> str | None:
    if _CLAIM_SOURCE.fullmatch(value):
        return None
    found = _BUCKET_SOURCE.fullmatch(value)
    if not found:
        return (
            f"{value!r} is not a dataset source: s3://BUCKET/PREFIX, gs://BUCKET/PREFIX "
            "(a lowercase bucket, folders of letters, digits and ._-) or pvc:CLAIM"
        )
    bucket = found["bucket"]
    broken = (s3_bucket_problem if found["scheme"] == "s3" else gcs_bucket_problem)(bucket)
    if broken:
        store = "S3" if found["scheme"] == "s3" else "Cloud Storage"
        return f"{bucket!r} breaks {store}'s bucket naming rules: {broken}"
    return None


# Amazon S3 User Guide, "General purpose bucket naming rules": 3 to 63 characters of
# lowercase letters, digits, dots and hyphens; a letter or digit first and last; no two
# adjacent dots; not an IP address; none of the prefixes and suffixes S3 keeps for
# itself (access point aliases, Object Lambda, Multi-Region Access Points, directory and
# table buckets).
S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
S3_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", re.ASCII)
# Google Cloud Storage, "Bucket naming": lowercase letters, digits, -, _ and .; a letter
# or digit first and last; 3 to 63 characters, or up to 222 with dots, each dot-separated
# part at most 63; not an IP address; not starting with "goog"; not containing "google".
_GCS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$", re.ASCII)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def s3_bucket_problem(bucket: str) -> str | None:
    if not _S3_BUCKET.fullmatch(bucket):
        return "3 to 63 lowercase letters, digits, . and -, a letter or digit first and last"
    if ".." in bucket:
        return "no two dots in a row"
    if _is_ip(bucket):
        return "not an IP address"
    for prefix in S3_RESERVED_PREFIXES:
        if bucket.startswith(prefix):
            return f"the prefix {prefix!r} is reserved"
    for suffix in S3_RESERVED_SUFFIXES:
        if bucket.endswith(suffix):
            return f"the suffix {suffix!r} is reserved"
    return None


def gcs_bucket_problem(bucket: str) -> str | None:
    if not _GCS_BUCKET.fullmatch(bucket):
        return "3 to 222 lowercase letters, digits, -, _ and ., a letter or digit first and last"
    parts = bucket.split(".")
    if "." not in bucket and len(bucket) > 63:
        return "at most 63 characters without dots"
    if any(not part or len(part) > 63 for part in parts):
        return "each dot-separated part 1 to 63 characters"
    if _is_ip(bucket):
        return "not an IP address"
    if bucket.startswith("goog"):
        return "no name starting with 'goog'"
    if "google" in bucket:
        return "no name containing 'google'"
    return None


def bucket_and_prefix(source: str) -> tuple[str, str, str]:
    """A checked bucket source as (scheme, bucket, prefix without slashes at its ends)."""
    found = _BUCKET_SOURCE.fullmatch(source)
    assert found is not None
    return found["scheme"], found["bucket"], found["prefix"].strip("/")


def duration(value: str) -> str | None:
    if not _DURATION.fullmatch(value) or not any(c in "123456789" for c in value):
        return f"{value!r} is not a positive duration such as 1h, 15m or 1h30m"
    return None


def label_key(value: str) -> str | None:
    prefix, _, name = value.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return f"{value!r}: the prefix {prefix!r} is not a DNS subdomain"
    if len(name) > 63 or not _LABEL_NAME.fullmatch(name):
        return f"{value!r} is not a valid label key"
    return None


def label_value(value: str) -> str | None:
    if value and (len(value) > 63 or not _LABEL_NAME.fullmatch(value)):
        return f"{value!r} is not a valid label value (at most 63 letters, digits, '-', '_', '.')"
    return None


def kubernetes_version(value: str) -> str | None:
    match = _K8S_VERSION.fullmatch(value)
    if not match:
        return f'{value!r} is not a Kubernetes version (write it as a string, e.g. "1.33")'
    if int(match.group(1)) not in SUPPORTED_KUBERNETES_MINORS:
        first, last = SUPPORTED_KUBERNETES_MINORS[0], SUPPORTED_KUBERNETES_MINORS[-1]
        return f"Kubernetes {value} is not supported (1.{first} to 1.{last})"
    return None


def git_url(value: str) -> str | None:
    if not _GIT_URL.fullmatch(value):
        return f"{value!r} is not a Git URL (https://…, ssh://… or git@host:path)"
    scheme, _, rest = value.partition("://")
    userinfo = rest.split("/", 1)[0].rpartition("@")[0] if scheme in ("https", "http") else ""
    if userinfo:
        masked = value.replace(userinfo, "***", 1)
        return (
            f"{masked!r} holds a credential, which would be written into every Application, "
            "AppProject and GitRepository in git: give the URL without it, and the "
            "credential to the engine (`argocd repo add URL --username … --password …`, "
            "or `flux create secret git NAME --url=URL --username … --password …`)"
        )
    ssh_user = rest.split("/", 1)[0].rpartition("@")[0] if scheme == "ssh" else ""
    if ":" in ssh_user:
        masked = value.replace(ssh_user, "***", 1)
        return (
            f"{masked!r} holds a password, which would be written into git: give the URL "
            "without it (ssh://git@host/…) and the engine a deploy key"
        )
    return None


def aws_region(value: str) -> str | None:
    if not _AWS_REGION.fullmatch(value):
        return f"{value!r} is not an AWS region (e.g. us-west-2)"
    return None


def aws_subnet_id(value: str) -> str | None:
    if not _AWS_SUBNET.fullmatch(value):
        return f"{value!r} is not a subnet id (subnet- and 8 or 17 hex digits)"
    return None


def gcp_project(value: str) -> str | None:
    if not _GCP_PROJECT.fullmatch(value):
        return (
            f"{value!r} is not a Google Cloud project id "
            "(6-30 lowercase letters, digits and '-', starting with a letter)"
        )
    return None


def gcp_location(value: str) -> str | None:
    if not _GCP_LOCATION.fullmatch(value):
        return f"{value!r} is not a Google Cloud region or zone (e.g. us-central1, us-central1-a)"
    return None


def image_registry(value: str) -> str | None:
    if "://" in value:
        return f"{value!r}: give the registry without a scheme (e.g. {value.split('://', 1)[1]})"
    if not _REGISTRY.fullmatch(value):
        return (
            f"{value!r} is not an image registry "
            "(e.g. 123456789012.dkr.ecr.us-west-2.amazonaws.com/ml or localhost:5001)"
        )
    return None


def efs_file_system_id(value: str) -> str | None:
    if not _EFS_ID.fullmatch(value):
        return f"{value!r} is not an EFS file system id (fs- and 8 or 17 hex digits)"
    return None


def iam_policy_arn(value: str) -> str | None:
    if not _IAM_POLICY_ARN.fullmatch(value):
        return (
            f"{value!r} is not an IAM policy ARN "
            "(e.g. arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess)"
        )
    return None


def gcp_role(value: str) -> str | None:
    if not _GCP_ROLE.fullmatch(value):
        return f"{value!r} is not a Google Cloud IAM role (e.g. roles/storage.objectViewer)"
    return None


def gcp_service_account_name(value: str) -> str | None:
    if not _GCP_SERVICE_ACCOUNT.fullmatch(value):
        return (
            f"{value!r} is not a Google service account name "
            "(6-30 lowercase letters, digits and '-', starting with a letter)"
        )
    return None


def iam_principal_arn(value: str) -> str | None:
    if not _IAM_PRINCIPAL_ARN.fullmatch(value):
        return (
            f"{value!r} is not an IAM role or user ARN "
            "(e.g. arn:aws:iam::123456789012:role/platform-admins)"
        )
    return None


def aws_account_id(value: str) -> str | None:
    if not _AWS_ACCOUNT_ID.fullmatch(value):
        return f'{value!r} is not an AWS account id (12 digits, quoted: "123456789012")'
    return None


def gcp_service_account_email(value: str) -> str | None:
    if not _GCP_SERVICE_ACCOUNT_EMAIL.fullmatch(value):
        return (
            f"{value!r} is not a Google service account email "
            "(e.g. config-connector@acme-ml.iam.gserviceaccount.com)"
        )
    return None


# git check-ref-format: what a branch, tag or full reference may not contain.
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//", re.ASCII)


def git_revision(value: str) -> str | None:
    """A commit SHA, or a name git accepts as a reference (git check-ref-format)."""
    problem = None
    if not value:
        problem = "must not be empty"
    elif _REF_FORBIDDEN.search(value):
        problem = (
            "holds a character or sequence git refuses in a reference (space, ~^:?*[\\, .., @{, //)"
        )
    elif value.startswith(("-", "/")) or value.endswith(("/", ".", ".lock")) or value == "@":
        problem = "starts with '-' or '/', or ends with '/', '.' or '.lock'"
    elif any(part.startswith(".") for part in value.split("/")):
        problem = "has a part that starts with '.'"
    if problem:
        return f"{value!r} cannot be a git branch, tag or reference: it {problem}"
    return None


def non_empty(value: str) -> str | None:
    return "must not be empty" if not value.strip() else None


def port(value: int) -> str | None:
    if not 1 <= value <= 65535:
        return f"{value} is not a port (1 to 65535)"
    return None


def exit_code(value: int) -> str | None:
    if not 1 <= value <= 255:
        return f"{value} is not an exit code of a failed container (1 to 255)"
    return None


# NewType -> (the YAML kinds it accepts, its check). Quantities may be written as numbers.
STRING_CHECKS: dict[object, Check] = {
    model.DnsLabel: dns_label,
    model.WorkloadName: workload_name,
    model.Quantity: quantity,
    model.Cidr: cidr,
    model.Image: image,
    model.AbsolutePath: absolute_path,
    model.EnvName: env_name,
    model.SecretPath: secret_path,
    model.DataSource: data_source,
    model.Duration: duration,
    model.LabelKey: label_key,
    model.LabelValue: label_value,
    model.KubernetesVersion: kubernetes_version,
    model.GitUrl: git_url,
    model.AwsRegion: aws_region,
    model.AwsSubnetId: aws_subnet_id,
    model.GcpProject: gcp_project,
    model.GcpLocation: gcp_location,
    model.NonEmptyString: non_empty,
    model.GitRevision: git_revision,
    model.ImageRegistry: image_registry,
    model.EfsFileSystemId: efs_file_system_id,
    model.IamPolicyArn: iam_policy_arn,
    model.GcpRole: gcp_role,
    model.GcpServiceAccountName: gcp_service_account_name,
    model.IamPrincipalArn: iam_principal_arn,
    model.AwsAccountId: aws_account_id,
    model.GcpServiceAccountEmail: gcp_service_account_email,
}
INTEGER_CHECKS: dict[object, Callable[[int], str | None]] = {
    model.Port: port,
    model.ExitCode: exit_code,
}
NUMBERS_ALLOWED_AS_STRINGS = {model.Quantity, model.LabelValue}


def _plain(pattern: re.Pattern[str]) -> str:
    """A Python pattern as JSON Schema's dialect reads it: no named groups."""
    return re.sub(r"\(\?P<\w+>", "(", pattern.pattern)


_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_MINORS = "|".join(str(m) for m in SUPPORTED_KUBERNETES_MINORS)
_LABEL_KEY = rf"^({_DNS_SUBDOMAIN.pattern[1:-1]}/)?{_LABEL_NAME.pattern[1:]}"

# What each value type's check accepts, as far as JSON Schema can say it (the config's
# JSON Schema is built from these and the model; the checks above stay the authority
# for what a pattern cannot express, such as a CIDR's host bits).
SCHEMA_KEYWORDS: dict[object, dict[str, object]] = {
    model.DnsLabel: {"pattern": _DNS_LABEL.pattern, "maxLength": 63},
    model.WorkloadName: {"pattern": _DNS_1035_LABEL.pattern, "maxLength": 63},
    model.Quantity: {"pattern": _plain(_QUANTITY)},
    model.Cidr: {
        "pattern": rf"^(({_OCTET}\.){{3}}{_OCTET}/(3[0-2]|[12]?[0-9])"
        r"|[0-9a-fA-F:]*:[0-9a-fA-F:.]*/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))$"
    },
    model.Image: {
        "pattern": r"^\S+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$",
        "not": {"pattern": r":latest$"},
    },
    model.AbsolutePath: {"pattern": r"^/"},
    model.EnvName: {"pattern": _ENV_NAME.pattern},
    model.SecretPath: {"pattern": _SECRET_PATH.pattern},
    # as data_source; the clouds' bucket naming rules beyond the alphabet are its own
    model.DataSource: {"pattern": f"{_plain(_BUCKET_SOURCE)}|{_CLAIM_SOURCE.pattern}"},
    # as duration: and not zero
    model.Duration: {"pattern": _DURATION.pattern, "not": {"pattern": r"^[0hms]+$"}},
    model.LabelKey: {"pattern": _LABEL_KEY},
    model.LabelValue: {"pattern": rf"^({_LABEL_NAME.pattern[1:-1]})?$", "maxLength": 63},
    model.KubernetesVersion: {"pattern": rf"^1\.({_MINORS})$"},
    model.GitUrl: {
        # as _GIT_URL, and no credential: no user info in https://, no password in ssh://
        "pattern": r"^(https://(?![^/]*@)|ssh://(?![^/@]*:[^/@]*@)|git@[^:/ \t\n\r\f\v]+:)[!-~]+$"
    },
    model.AwsRegion: {"pattern": _AWS_REGION.pattern},
    model.AwsSubnetId: {"pattern": _AWS_SUBNET.pattern},
    model.GcpProject: {"pattern": _GCP_PROJECT.pattern},
    model.GcpLocation: {"pattern": _GCP_LOCATION.pattern},
    model.NonEmptyString: {"pattern": r"\S"},
    model.GitRevision: {
        # git check-ref-format, as git_revision: no "..", "@{", "//", "/." and no ending
        # in "/", "." or ".lock"
        "pattern": r"^(?!.*(\.\.|@\{|//|/\.|\.lock$|[/.]$))"
        r"[^-/.\x00-\x20\x7f~^:?*\[\\][^\x00-\x20\x7f~^:?*\[\\]*$"
    },
    model.ImageRegistry: {"pattern": _REGISTRY.pattern},
    model.EfsFileSystemId: {"pattern": _EFS_ID.pattern},
    model.IamPolicyArn: {"pattern": _IAM_POLICY_ARN.pattern},
    model.GcpRole: {"pattern": _GCP_ROLE.pattern},
    model.GcpServiceAccountName: {"pattern": _GCP_SERVICE_ACCOUNT.pattern},
    model.IamPrincipalArn: {"pattern": _IAM_PRINCIPAL_ARN.pattern},
    model.AwsAccountId: {"pattern": _AWS_ACCOUNT_ID.pattern},
    model.GcpServiceAccountEmail: {"pattern": _GCP_SERVICE_ACCOUNT_EMAIL.pattern},
    model.Port: {"minimum": 1, "maximum": 65535},
    model.ExitCode: {"minimum": 1, "maximum": 255},
}
