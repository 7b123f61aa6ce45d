# Image targets; the main Makefile does `include image/image.mk`.
# Builds need root, buildah, umoci, debootstrap (and runc to run them): `make image-deps`.
.PHONY: image image-deps image-base image-lock image-test

IMAGE_SH := bash image/build.sh

## image-deps: install debootstrap, buildah, runc, umoci (Debian packages; idempotent, as root)
image-deps:
	bash image/install-deps.sh

## image: build alembic-operator:dev and example-app:dev (local debootstrap base when no
## registry answers; cached by content) and export them for runc under ~/.cache/alembic-operator/images
image: image-deps
	$(IMAGE_SH) all

## image-base: only the local base image localhost/bookworm-python:base (debootstrap; cached)
image-base: image-deps
	bash image/base.sh

## image-lock: regenerate the hashed locks image/requirements{,-client,-base}.txt from pyproject.toml
image-lock:
	bash image/lock.sh

## image-test: build (cached) and test the images: under runc directly, and as pods on the bed's real node
image-test: image $(VENV)/.installed
	$(VENV)/bin/pytest -q tests/image $(PYTEST_ARGS)
