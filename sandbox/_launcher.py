"""Launcher for the bwrap backend, run as root with `python -I -S` and an empty environment.

bwrap must not run as root (root keeps host-root powers through `--uid`), but the slot uid cannot
reach the Python prefix under /root or a venv inside a private checkout. So this process, still root,
makes a private mount namespace, binds each needed host path into a fresh tmpfs "stage" the slot uid
can traverse, joins the slot's cgroups, sets the rlimits, drops to the slot uid, and execs bwrap,
which binds from the stage. argv[1] is a JSON config; fd `error_fd` receives a setup error, if any
(it is close-on-exec, so a successful exec closes it empty).
"""

import importlib.util
import json
import os
import shutil
import sys


def load_linux_helpers():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_linux.py")
    spec = importlib.util.spec_from_file_location("sandbox_linux", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    config = json.loads(sys.argv[1])
    error_fd = config["error_fd"]
    os.set_inheritable(error_fd, False)
    try:
        linux = load_linux_helpers()
        linux.unshare(linux.CLONE_NEWNS)
        linux.make_mounts_private()
        stage = config["stage"]
        linux.mount_tmpfs(stage, config["stage_bytes"])
        open(os.path.join(stage, ".empty"), "w").close()  # bwrap masks host counters in /proc with it
        for source, name, kind in config["binds"]:
            target = os.path.join(stage, name)
            if kind == "copy":  # no host path in the sandbox's mountinfo
                if os.path.isdir(source):
                    shutil.copytree(source, target, symlinks=True)
                else:
                    shutil.copyfile(source, target, follow_symlinks=False)
                    os.chmod(target, 0o644)
                continue
            if os.path.isdir(source):
                os.mkdir(target)
            else:
                open(target, "w").close()
            linux.mount(source, target, None, linux.MS_BIND | linux.MS_REC)
        linux.join_cgroups(config["cgroup_procs"])
        linux.apply_rlimits({k: tuple(v) for k, v in config["rlimits"].items()})
        linux.become_user(config["uid"], config["gid"])
        os.execv(config["argv"][0], config["argv"])
    except BaseException as exc:  # report, never run anything unconfined
        os.write(error_fd, f"launcher: {exc}".encode())
        os._exit(125)


if __name__ == "__main__":
    main()
