# SPDX-License-Identifier: MIT
"""deploy/image/Dockerfile, checked without a Docker engine: it lints clean
(dockerfile-utils), its build stage builds and installs the source tree that
Dockerfile.dockerignore leaves in the context with the Dockerfile's own
meson commands, and its runtime stage installs a Debian package for every
shared library that the installed binary and plugins need.

The image is Debian 13 (libfuse 3.17, for FUSE passthrough).  The package
checks need that Debian release: tests/debian13/run runs this file in a
Debian 13 root; on Debian 12 they are skipped, the rest runs.
"""
import json
import os
import re
import shlex
import shutil
import subprocess

import pytest

from conftest import DEPLOY, NODE_MODULES, ROOT

DOCKERFILE = DEPLOY / "image" / "Dockerfile"
DOCKERIGNORE = DEPLOY / "image" / "Dockerfile.dockerignore"

# What the runtime image must have besides the libraries the binaries link
# (which test_runtime_libraries derives): fusermount3, sqlite3 for the jobs,
# CA certificates for TLS, curl for the Pushgateway.
RUNTIME_TOOLS = {"fuse3", "sqlite3", "ca-certificates", "curl"}
IMAGE = "debian:13-slim"


def os_release():
    text = open("/etc/os-release").read()
    return dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', text, re.M))


@pytest.fixture
def image_release():
    """Skips unless this machine runs the image's Debian release."""
    here = os_release().get("VERSION_ID")
    if f"debian:{here}-slim" != IMAGE:
        pytest.skip(f"the image is {IMAGE}, this is Debian {here}: "
                    "tests/debian13/run runs this in a Debian 13 root")


def instructions():
    """[(stage, INSTRUCTION, arguments)] with continuations joined."""
    out, stage, buf = [], -1, ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        buf += line.rstrip()
        if buf.endswith("\\"):
            buf = buf[:-1] + " "
            continue
        if buf.strip():
            instr, _, args = buf.strip().partition(" ")
            if instr.upper() == "FROM":
                stage += 1
            out.append((stage, instr.upper(), args.strip()))
        buf = ""
    return out


def stages():
    """{stage number: FROM arguments}."""
    return {s: a for s, i, a in instructions() if i == "FROM"}


def apt_installs(stage):
    """The packages `apt-get install` installs in a stage."""
    pkgs = set()
    for s, instr, args in instructions():
        if s != stage or instr != "RUN":
            continue
        for cmd in re.split(r"&&|;", args):
            words = shlex.split(cmd)
            if "apt-get" in words and "install" in words:
                rest = words[words.index("install") + 1:]
                pkgs |= {w for w in rest if not w.startswith("-")}
    return pkgs


def install_deps_packages(*groups):
    """Packages under the given '# group' comments of scripts/install-deps."""
    text = (ROOT / "scripts" / "install-deps").read_text()
    block = re.search(r"PACKAGES=\((.*?)\n\)", text, re.S).group(1)
    out, group = set(), None
    for line in block.splitlines():
        m = re.match(r"\s*#\s*(\w+)", line)
        if m:
            group = m.group(1)
            continue
        if group in groups:
            out |= set(line.split("#")[0].split())
    return out


def ignored(rel, patterns):
    """Whether Docker leaves the path rel (relative to the context) out."""
    parts = rel.split("/")
    for pat in patterns:
        rx = re.escape(pat.strip("/")).replace(r"\*\*", ".*") \
            .replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        for i in range(1, len(parts) + 1):
            if re.fullmatch(rx, "/".join(parts[:i])):
                return True
    return False


def dockerignore_patterns():
    lines = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines()]
    pats = [ln for ln in lines if ln and not ln.startswith("#")]
    assert not [p for p in pats if p.startswith("!")], "no exceptions supported here"
    return pats


def test_dockerfile_lint():
    lint = NODE_MODULES / ".bin" / "dockerfile-utils"
    if not lint.exists():
        pytest.fail(f"{lint} missing: run scripts/install-deps (npm ci in tests/deploy)")
    p = subprocess.run([str(lint), "lint", str(DOCKERFILE)], capture_output=True,
                       text=True)
    assert p.returncode == 0 and not p.stdout.strip(), p.stdout + p.stderr


def test_stages():
    ins = instructions()
    args = {a.split("=")[0]: a.split("=", 1)[1] for _, i, a in ins if i == "ARG" and "=" in a}
    st = stages()
    assert len(st) == 2, "a build stage and the runtime stage"
    for s, frm in st.items():
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], frm.split()[0])
        assert image == IMAGE, frm
    assert st[0].split()[-2:] == ["AS", "build"]
    copies = [a for s, i, a in ins if s == 1 and i == "COPY"]
    assert copies == ["--from=build /usr/local /usr/local"]
    user = [a for s, i, a in ins if s == 1 and i == "USER"]
    assert user == ["root"], "FUSE mounts need root (see the comment)"
    text = DOCKERFILE.read_text()
    assert "CAP_SYS_ADMIN" in text and "/dev/fuse" in text


def test_build_stage_has_the_build_dependencies():
    want = install_deps_packages("build", "libraries")
    assert want, "scripts/install-deps lists its build packages"
    assert want <= apt_installs(0), want - apt_installs(0)


def test_runtime_packages_exist(image_release):
    """Every runtime package is a package of the image's Debian release."""
    pkgs = apt_installs(1)
    assert RUNTIME_TOOLS <= pkgs
    for p in sorted(pkgs):
        q = subprocess.run(["apt-cache", "show", "--no-all-versions", p],
                           capture_output=True, text=True)
        assert q.returncode == 0 and f"Package: {p}" in q.stdout, \
            f"{p} is not a Debian package here"


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
    """What the build stage installs to /usr/local, built here from the
    context that Dockerfile.dockerignore leaves, with the Dockerfile's own
    meson commands (the build directory moved into the scratch space)."""
    tmp = tmp_path_factory.mktemp("image")
    ctx, dest = tmp / "src", tmp / "root"
    pats = dockerignore_patterns()
    for top, dirs, files in os.walk(ROOT):
        rel_top = os.path.relpath(top, ROOT)
        rel = (lambda n: n) if rel_top == "." else (lambda n: f"{rel_top}/{n}")
        dirs[:] = [d for d in dirs if not ignored(rel(d), pats)]
        for f in files:
            if not ignored(rel(f), pats):
                (ctx / rel_top).mkdir(parents=True, exist_ok=True)
                shutil.copy2(os.path.join(top, f), ctx / rel(f), follow_symlinks=False)
    (run,) = [a for s, i, a in instructions() if s == 0 and i == "RUN" and "meson setup" in a]
    steps = [shlex.split(c) for c in run.split("&&")]
    build = tmp / "build"
    for argv in steps:
        argv = [str(build) if a == "/build" else a for a in argv]
        if argv[:2] == ["meson", "install"]:
            argv += ["--destdir", str(dest)]
        p = subprocess.run(argv, cwd=ctx, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, f"{' '.join(argv)}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return dest, build


def test_context_builds_and_installs(image_root):
    dest, build = image_root
    drgw = dest / "usr/local/bin/drgw"
    assert drgw.exists()
    plugins = sorted(p.name for p in dest.glob("usr/local/lib/*/drgw/drgw-*.so"))
    assert {"drgw-local.so", "drgw-s3.so", "drgw-gcs.so"} <= set(plugins), plugins
    # The plugin directory compiled into drgw is where they are installed.
    (plugin_dir,) = {str(p.parent.relative_to(dest)) for p in
                     dest.glob("usr/local/lib/*/drgw/drgw-*.so")}
    installed = json.loads(subprocess.run(
        ["meson", "introspect", str(build), "--installed"], capture_output=True,
        text=True, check=True).stdout)
    assert f"/{plugin_dir}/drgw-local.so" in installed.values()
    header = (build / "drgw-build.h").read_text()
    assert f'DRGW_PLUGIN_DIR "/{plugin_dir}"' in header
    p = subprocess.run([str(drgw), "--version"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def needed_packages(path):
    """Debian packages of the shared libraries an ELF file links directly."""
    dyn = subprocess.run(["readelf", "-d", str(path)], capture_output=True,
                         text=True, check=True).stdout
    sonames = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dyn)
    ldd = subprocess.run(["ldd", str(path)], capture_output=True, text=True).stdout
    where = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
    # The dynamic loader, which newer toolchains also list as NEEDED, has
    # no "=>" in ldd's output.
    where.update((os.path.basename(p), p) for p in
                 re.findall(r"^\s*(/\S+) \(0x", ldd, re.M))
    out = {}
    for so in sonames:
        assert so in where, f"{path.name}: {so} not found by ldd"
        real = os.path.realpath(where[so])
        for candidate in (where[so], real, real.replace("/usr/lib/", "/lib/", 1)):
            q = subprocess.run(["dpkg-query", "-S", candidate], capture_output=True, text=True)
            # "pkg[:arch]: path" lines, after any "diversion by ..." lines
            # (Debian 13's libc6 diverts the loader's /lib64 path).
            owners = [ln.split(":")[0] for ln in q.stdout.splitlines()
                      if not ln.startswith("diversion by")]
            if q.returncode == 0 and owners:
                out[so] = owners[0]
                break
        else:
            raise AssertionError(f"{path.name}: no Debian package owns {where[so]}")
    return out


def minbase_packages():
    """What every debian:13-slim has: the Essential and priority-required
    packages and what they depend on (the closure over installed packages)."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f",
         "${Package}\t${Essential}\t${Priority}\t${Pre-Depends}, ${Depends}\n"],
        capture_output=True, text=True, check=True).stdout
    deps, todo = {}, []
    for line in out.splitlines():
        name, essential, prio, dep = line.split("\t")
        deps[name.split(":")[0]] = {re.split(r"[ :(]", d.strip())[0]
                                    for d in re.split(r"[,|]", dep) if d.strip()}
        if essential == "yes" or prio == "required":
            todo.append(name.split(":")[0])
    seen = set()
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo += [d for d in deps.get(p, ()) if d in deps]
    return seen


def test_runtime_libraries(image_release, image_root):
    """Each library the installed drgw and plugins link comes from a package
    the runtime stage installs, or from one every debian:13-slim has."""
    dest, _ = image_root
    ok = apt_installs(1) | minbase_packages()
    elves = [dest / "usr/local/bin/drgw", *dest.glob("usr/local/lib/*/drgw/*.so")]
    assert len(elves) >= 4
    missing = {f"{elf.name}: {so}": pkg for elf in elves
               for so, pkg in needed_packages(elf).items() if pkg not in ok}
    assert not missing, missing


def test_dockerignore_keeps_sources_out_of_the_way():
    pats = dockerignore_patterns()
    for rel in ("build", "build-asan", "tests/s3/node_modules", ".git",
                "tests/deploy/node_modules/typescript"):
        assert ignored(rel, pats), rel
    for rel in ("meson.build", "meson_options.txt", "gateway/main.c",
                "include/drgw/backend.h", "plugins/meson.build", "docs"):
        assert not ignored(rel, pats), rel
