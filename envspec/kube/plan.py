"""The deploy plan, as cluster operations import it. It is built by the compiler, so it lives in the
compile layer (`envspec.plan`); this module only names it for the deployer's modules."""

from envspec.plan import ClusterBinding, DatabaseDrop, DeployPlan, HelmChart, RemoteManifest, SecretSource

__all__ = ["ClusterBinding", "DatabaseDrop", "DeployPlan", "HelmChart", "RemoteManifest", "SecretSource"]
