"""Pure builders, one per Kubernetes object: they return dicts and never call the API."""
