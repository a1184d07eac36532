"""envspec: compile typed environment specs into deterministic Kubernetes manifests."""

__version__ = "0.1.0"
