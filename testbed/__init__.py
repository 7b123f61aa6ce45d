"""The local test bed: real etcd, kube-apiserver, kube-controller-manager,
PostgreSQL 15 and 18, an S3 server, plus the one emulated part, the process
kubelet. Used by the tests (through the pytest plugins here), ``make demo``
and ``bench/``. Nothing here is imported by the product.
"""
