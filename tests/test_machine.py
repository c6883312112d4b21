"""netdyn.machine: the one description of a machine that every result file carries."""

import os
import platform

from netdyn.machine import commit, cpu_model, describe, one_line


def test_describe_names_this_machine():
    info = describe("cpu")
    assert info["cpu_count"] == os.cpu_count() and info["python"] == platform.python_version()
    assert info["os"] == f"{platform.system()} {platform.release()}"
    assert info["device"] == "cpu" and info["device_name"] == info["cpu_model"] == cpu_model()
    assert "device" not in describe()  # no device given: nothing said about one


def test_cpu_model_is_the_marketing_name_not_the_architecture():
    if os.path.exists("/proc/cpuinfo") and "model name" in open("/proc/cpuinfo").read():
        expected = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
        assert cpu_model() == expected


def test_one_line_reads_only_the_description():
    info = {"cpu_model": "Some CPU", "cpu_count": 16, "os": "Linux 6.1", "device": "cuda:0", "device_name": "H200"}
    assert one_line(info) == "Some CPU, 16 cores, Linux 6.1, H200"
    assert one_line({**info, "device": "cpu"}) == "Some CPU, 16 cores, Linux 6.1"


def test_commit_is_git_head_or_else_the_environment(monkeypatch, tmp_path):
    import subprocess

    from netdyn import machine

    head = subprocess.run(["git", "-C", str(machine.REPO), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    if head:
        assert commit().split("+")[0] == head and describe()["commit"] == commit()
    monkeypatch.setattr(machine, "REPO", tmp_path)  # a copy of the tree without .git
    monkeypatch.setenv("NETDYN_COMMIT", "abc123")
    assert commit() == "abc123"
    monkeypatch.delenv("NETDYN_COMMIT")
    assert commit() is None
