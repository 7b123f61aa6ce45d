"""The only modules that do I/O against Kubernetes, PostgreSQL and S3."""
