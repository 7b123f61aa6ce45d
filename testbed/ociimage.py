"""Tiny OCI image archives made from files on this machine, for the real node.

:func:`write_archive` writes an OCI image layout as a tar (``oci-layout``,
``index.json``, ``blobs/sha256/...``: one uncompressed layer, one config, one
manifest), the format ``ctr images import`` reads, with the image's name in the
``io.containerd.image.name`` annotation. Two images come from it:

- :func:`pause_image`: ``/pause`` (tools/pause, static Go), the pod sandbox;
- :func:`busybox_image`: Debian's static ``busybox`` with a link per applet,
  ``CMD ["sh"]`` — enough for the node's own tests (no network needed to make it).
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed import tools

PAUSE_IMAGE = "localhost/bed/pause:1"
BUSYBOX_IMAGE = "localhost/bed/busybox:1"


@dataclass
class Layer:
    """Files of one layer: path in the image -> (host file or ``None`` for a directory, symlink target)."""

    files: dict[str, Path] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)

    def tar(self) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(self.dirs):
                info = tarfile.TarInfo(name)
                info.type, info.mode = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755
                tar.addfile(info)
            for name, source in sorted(self.files.items()):
                data = source.read_bytes()
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o755
                tar.addfile(info, io.BytesIO(data))
            for name, target in sorted(self.links.items()):
                info = tarfile.TarInfo(name)
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
                tar.addfile(info)
        return buffer.getvalue()


def _blob(tar: tarfile.TarFile, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
    return f"sha256:{digest}"


def write_archive(path: Path, name: str, layer: Layer, config: dict[str, Any]) -> Path:
    """Write the OCI archive of a one-layer image called ``name`` (``repo:tag``) to ``path``."""
    layer_tar = layer.tar()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        layer_digest = _blob(tar, layer_tar)
        image_config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": config,
                "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            },
            sort_keys=True,
        ).encode()
        config_digest = _blob(tar, image_config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": len(image_config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest,
                        "size": len(layer_tar),
                    }
                ],
            },
            sort_keys=True,
        ).encode()
        manifest_digest = _blob(tar, manifest)
        index = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": manifest_digest,
                        "size": len(manifest),
                        "platform": {"architecture": "amd64", "os": "linux"},
                        "annotations": {
                            "io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1],
                        },
                    }
                ],
            },
            sort_keys=True,
        ).encode()
        for member, data in (("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index)):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def pause_image(directory: Path) -> Path:
    """The sandbox image: ``/pause`` from tools/pause as entrypoint."""
    layer = Layer(files={"pause": tools.binary("pause")})
    return write_archive(directory / "pause.oci.tar", PAUSE_IMAGE, layer, {"Entrypoint": ["/pause"]})


def busybox_image(directory: Path) -> Path:
    """Debian's static busybox with every applet linked in /bin, ``CMD ["sh"]``."""
    busybox = tools.system_binary("busybox", "install busybox-static (apt-get install busybox-static)")
    if _is_dynamic(busybox):
        raise tools.MissingTool(f"{busybox} is not static: install busybox-static (apt-get install busybox-static)")
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout.split()
    layer = Layer(
        files={"bin/busybox": busybox},
        dirs=["bin", "tmp", "etc", "root"],
        links={f"bin/{applet}": "busybox" for applet in applets if applet != "busybox"},
    )
    return write_archive(
        directory / "busybox.oci.tar", BUSYBOX_IMAGE, layer, {"Cmd": ["sh"], "Env": ["PATH=/bin"], "WorkingDir": "/"}
    )


def _is_dynamic(binary: Path) -> bool:
    """True when the ELF file has a PT_INTERP program header (needs a dynamic loader)."""
    data = binary.read_bytes()[:4096]
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return True
    phoff = int.from_bytes(data[32:40], "little")
    phentsize = int.from_bytes(data[54:56], "little")
    phnum = int.from_bytes(data[56:58], "little")
    for i in range(phnum):
        start = phoff + i * phentsize
        if int.from_bytes(data[start : start + 4], "little") == 3:  # PT_INTERP
            return True
    return False


def built_layout(name: str) -> Path:
    """The OCI layout ``make image`` left for image ``name`` (``alembic-operator``, ``example-app``)."""
    layout = Path.home() / ".cache" / "alembic-operator" / "images" / f"{name}-current" / "oci"
    if not (layout / "index.json").exists():
        raise tools.MissingTool(f"{layout} not found: build the images first (make image)")
    return layout


def normalized(name: str) -> str:
    """``name`` as containerd's CRI plugin stores it (``example-app:dev`` -> ``docker.io/library/example-app:dev``)."""
    repo, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "latest")
    first = repo.split("/", 1)[0]
    if "/" not in repo:
        repo = f"docker.io/library/{repo}"
    elif "." not in first and ":" not in first and first != "localhost":
        repo = f"docker.io/{repo}"
    return f"{repo}:{tag}"


def variant_stream(
    layout: Path, variants: dict[str, dict[str, Any]], *, with_layers: bool
) -> Iterator[tuple[str, bytes | Path]]:
    """Members of an OCI archive holding one image per ``variants`` entry (name -> changes), each
    the layout's image with its config changed: ``workingDir`` and ``entrypoint`` (with ``args`` as
    CMD) replaced, ``env`` (a mapping) set over the image's ENV. Layers are the layout's own blobs,
    included only ``with_layers`` (an import into a content store that has them needs only the new
    config and manifest)."""
    index = json.loads((layout / "index.json").read_text())
    blobs = layout / "blobs" / "sha256"
    manifest_digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((blobs / manifest_digest).read_bytes())
    config = json.loads((blobs / manifest["config"]["digest"].split(":", 1)[1]).read_bytes())
    entries = []
    if with_layers:
        for layer in manifest["layers"]:
            digest = layer["digest"].split(":", 1)[1]
            yield f"blobs/sha256/{digest}", blobs / digest
    for name, change in sorted(variants.items()):
        cfg = json.loads(json.dumps(config))
        inner = cfg.setdefault("config", {})
        if change.get("workingDir"):
            inner["WorkingDir"] = change["workingDir"]
        if change.get("entrypoint") is not None:  # ENTRYPOINT resets CMD, as in a Dockerfile
            inner["Entrypoint"], inner["Cmd"] = list(change["entrypoint"]), list(change.get("args") or [])
        env = dict(item.split("=", 1) for item in inner.get("Env", []))
        env.update(change.get("env") or {})
        inner["Env"] = [f"{key}={value}" for key, value in env.items()]
        cfg_bytes = json.dumps(cfg, sort_keys=True).encode()
        cfg_digest = hashlib.sha256(cfg_bytes).hexdigest()
        yield f"blobs/sha256/{cfg_digest}", cfg_bytes
        new_manifest = dict(
            manifest, config=dict(manifest["config"], digest=f"sha256:{cfg_digest}", size=len(cfg_bytes))
        )
        man_bytes = json.dumps(new_manifest, sort_keys=True).encode()
        man_digest = hashlib.sha256(man_bytes).hexdigest()
        yield f"blobs/sha256/{man_digest}", man_bytes
        entries.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": f"sha256:{man_digest}",
                "size": len(man_bytes),
                "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name},
            }
        )
    yield "oci-layout", b'{"imageLayoutVersion":"1.0.0"}'
    yield "index.json", json.dumps({"schemaVersion": 2, "manifests": entries}, sort_keys=True).encode()


def write_stream(fileobj: Any, members: Iterator[tuple[str, bytes | Path]]) -> None:
    """Write ``members`` (name -> bytes or a file) as a tar stream to ``fileobj``."""
    with tarfile.open(fileobj=fileobj, mode="w|") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if isinstance(data, Path):
                info.size = data.stat().st_size
                with data.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
