"""The built-in default config, used when no mlgitops.yaml is found."""

from importlib import resources

DEFAULT_CONFIG_NAME = "<built-in default>"


def default_config_text() -> str:
    """The reference scenario: two training workloads on an EKS, a GKE and a local cluster."""
    return resources.files(__package__).joinpath("mlgitops.yaml").read_text(encoding="utf-8")
