"""Deployment helpers: the KubeRay manifests generated from the Serve config."""
