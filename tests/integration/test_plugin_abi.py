# SPDX-License-Identifier: MIT
"""A third party can build a backend against the installed header alone:
install drgw into a scratch prefix, compile examples/minimal-backend with
the flags of the installed drgw.pc, and back up and restore through it."""
import filecmp
import os
import subprocess

from conftest import BUILD, ROOT, make_app_db, run


def test_out_of_tree_backend(env, tmp_path):
    dest = tmp_path / "destdir"
    subprocess.run(["meson", "install", "-C", str(BUILD), "--destdir", str(dest),
                    "--no-rebuild", "--quiet"], check=True, capture_output=True)
    pcs = list(dest.rglob("drgw.pc"))
    assert pcs, "drgw.pc was not installed"
    headers = list(dest.rglob("drgw/backend.h"))
    assert headers, "the ABI header was not installed"
    prefix = str(pcs[0]).split("/lib/")[0].split("/share/")[0]
    pc_env = dict(os.environ, PKG_CONFIG_PATH=str(pcs[0].parent),
                  PKG_CONFIG_SYSROOT_DIR=str(dest))
    cflags = subprocess.run(["pkg-config", "--cflags", "drgw"], env=pc_env,
                            check=True, capture_output=True, text=True).stdout.split()
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    subprocess.run(["cc", "-shared", "-fPIC", "-fvisibility=hidden", "-Wall", "-Werror",
                    *cflags, "-o", str(plugins / "drgw-minimal.so"),
                    str(ROOT / "examples" / "minimal-backend" / "minimal.c")],
                   check=True)
    store = tmp_path / "store"
    store.mkdir()
    backend = ["--backend", f"third=minimal://{store}"]
    gw = env.gateway("--plugin-dir", plugins, backends=backend).start()
    make_app_db(env.mnt / "app.db", rows=3000)
    env.wait()
    assert env.ls()[0]["replicas"]["third"]["state"] == "replicated"
    gw.stop()
    out = tmp_path / "restored.db"
    run("restore", "app.db", out, "--cache", tmp_path / "c2", "--key-file", env.key,
        "--plugin-dir", plugins, *backend)
    assert filecmp.cmp(out, env.cache / "files" / "app.db", shallow=False)
