"""mlgitops: one config file in, a GitOps repository for distributed ML training out."""

__version__ = "0.1.0"
