#!/usr/bin/env python3
"""Writes small test images around busybox-static (the e2e tests' own):

  oci_image.py oci OUT.tar [REF]      OCI image layout archive, two layers
  oci_image.py oci-user OUT.tar       the same, its config naming User app
  oci_image.py docker OUT.tar [TAG]   docker save archive of the same image
  oci_image.py layout DIR             the same as an OCI layout folder
  oci_image.py evil KIND OUT.tar      one malicious layer: dotdot, symlink,
                                      device (OCI layout archive, ref evil)
  oci_image.py big MIB OUT.tar DIR    an image of several layers of MIB MiB
                                      of random files in all; its layers'
                                      plain tars also go to DIR (the bench)

Layer 1: busybox at /bin/busybox with sh, ls, cat, id, pwd, env, echo,
test links, /etc/passwd and /etc/group (user app = 1234:4321),
/etc/secret. Layer 2: a whiteout of /etc/secret, /data/readme, an opaque
/opt. Config: Env GREETING=hello, WorkingDir /data, Cmd [sh, -c, ...].
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

BUSYBOX = "/bin/busybox"
APPLETS = ["sh", "ls", "cat", "id", "pwd", "env", "echo", "test", "touch", "mkdir",
           "sleep", "true", "false", "stat", "wc", "head"]


def add_file(t, name, data, mode=0o644, uid=0, gid=0):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.mtime = 1700000000
    t.addfile(info, io.BytesIO(data))


def add_dir(t, name, mode=0o755):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.mtime = 1700000000
    t.addfile(info)


def add_link(t, name, target, hard=False):
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    info.mtime = 1700000000
    t.addfile(info)


def tar_bytes(fill):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        fill(t)
    return buf.getvalue()


def layer1(t):
    add_dir(t, "bin")
    with open(BUSYBOX, "rb") as f:
        add_file(t, "bin/busybox", f.read(), 0o755)
    for a in APPLETS:
        add_link(t, "bin/" + a, "busybox")
    add_dir(t, "etc")
    add_file(t, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\napp:x:1234:4321::/data:/bin/sh\n")
    add_file(t, "etc/group", b"root:x:0:\napp:x:4321:\n")
    add_file(t, "etc/secret", b"this must be gone\n")
    add_dir(t, "opt")
    add_file(t, "opt/old", b"hidden by the opaque folder above\n")


def layer2(t):
    add_file(t, "etc/.wh.secret", b"")
    add_dir(t, "data", 0o777)
    add_file(t, "data/readme", b"from layer two\n")
    add_dir(t, "opt")
    add_file(t, "opt/.wh..wh..opq", b"")
    add_file(t, "opt/new", b"new\n")


CONFIG = {
    "architecture": "amd64", "os": "linux",
    "config": {
        "Env": ["PATH=/bin", "GREETING=hello"],
        "WorkingDir": "/data",
        "Cmd": ["sh", "-c", "echo default command in $(pwd)"],
    },
}


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def oci_blobs(layers, config=None):
    """-> (files {path: bytes}, index bytes)"""
    cfg = dict(config or CONFIG)
    cfg["rootfs"] = {"type": "layers", "diff_ids": [sha(l) for l in layers]}
    files, descs = {}, []
    for l in layers:
        gz = gzip.compress(l, mtime=0)
        files["blobs/sha256/" + sha(gz)[7:]] = gz
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": sha(gz), "size": len(gz)})
    cb = json.dumps(cfg).encode()
    files["blobs/sha256/" + sha(cb)[7:]] = cb
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": sha(cb), "size": len(cb)},
                      "layers": descs}).encode()
    files["blobs/sha256/" + sha(man)[7:]] = man
    return files, man


def write_oci(out, layers, ref, config=None):
    files, man = oci_blobs(layers, config)
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(man),
        "size": len(man), "annotations": {"org.opencontainers.image.ref.name": ref}}]}).encode()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
        add_file(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        for p, b in files.items():
            add_file(t, p, b)
        add_file(t, "index.json", index)


def write_layout_dir(d, layers, ref):
    files, man = oci_blobs(layers)
    os.makedirs(os.path.join(d, "blobs", "sha256"), exist_ok=True)
    for p, b in files.items():
        with open(os.path.join(d, p), "wb") as f:
            f.write(b)
    with open(os.path.join(d, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(man),
            "size": len(man), "annotations": {"org.opencontainers.image.ref.name": ref}}]}, f)


def write_docker(out, layers, tag):
    cfg = dict(CONFIG)
    cfg["rootfs"] = {"type": "layers", "diff_ids": [sha(l) for l in layers]}
    cb = json.dumps(cfg).encode()
    with tarfile.open(out, "w") as t:
        names = []
        for i, l in enumerate(layers):
            name = "l%d/layer.tar" % i
            add_file(t, name, l)
            names.append(name)
        add_file(t, sha(cb)[7:] + ".json", cb)
        add_file(t, "manifest.json", json.dumps(
            [{"Config": sha(cb)[7:] + ".json", "RepoTags": [tag], "Layers": names}]).encode())


def evil(kind):
    def fill(t):
        if kind == "dotdot":
            add_file(t, "../../../../../tmp/jobrt-evil-dotdot", b"escaped\n")
        elif kind == "symlink":
            add_link(t, "escape", "/tmp")
            add_file(t, "escape/jobrt-evil-symlink", b"escaped\n")
        elif kind == "device":
            info = tarfile.TarInfo("dev/sda")
            info.type = tarfile.BLKTYPE
            info.devmajor, info.devminor = 8, 0
            t.addfile(info)
        else:
            raise SystemExit("unknown kind " + kind)
    return tar_bytes(fill)


def big(mib):
    n = max(2, min(8, mib // 8))
    per = mib * 1024 * 1024 // n
    layers = []
    for i in range(n):
        def fill(t, i=i):
            if i == 0:
                layer1(t)
            left, k = per, 0
            while left > 0:
                size = min(left, 4 * 1024 * 1024)
                add_file(t, "data/l%d/f%d" % (i, k), os.urandom(size))
                left -= size
                k += 1
        layers.append(tar_bytes(fill))
    return layers


def main(argv):
    if len(argv) < 3:
        raise SystemExit(__doc__)
    kind = argv[1]
    if kind == "oci":
        write_oci(argv[2], [tar_bytes(layer1), tar_bytes(layer2)], argv[3] if len(argv) > 3 else "1")
    elif kind == "oci-user":
        cfg = json.loads(json.dumps(CONFIG))
        cfg["config"]["User"] = "app"
        write_oci(argv[2], [tar_bytes(layer1), tar_bytes(layer2)], "user", cfg)
    elif kind == "docker":
        write_docker(argv[2], [tar_bytes(layer1), tar_bytes(layer2)],
                     argv[3] if len(argv) > 3 else "bb:docker")
    elif kind == "layout":
        write_layout_dir(argv[2], [tar_bytes(layer1), tar_bytes(layer2)], "1")
    elif kind == "evil":
        write_oci(argv[3], [tar_bytes(layer1), evil(argv[2])], "evil")
    elif kind == "big":
        layers = big(int(argv[2]))
        write_oci(argv[3], layers, "big")
        os.makedirs(argv[4], exist_ok=True)
        for i, l in enumerate(layers):
            with open(os.path.join(argv[4], "layer%d.tar" % i), "wb") as f:
                f.write(l)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
