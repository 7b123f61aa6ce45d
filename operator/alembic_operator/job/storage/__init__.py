"""Where backups live for the job steps: S3, dump archives, the manifest, retention."""
