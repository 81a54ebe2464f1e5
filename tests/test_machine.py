"""One machine-info helper for docs, benches, model metadata and reports."""

from __future__ import annotations

import json
from pathlib import Path

from jaxstyle import machine

REPO = Path(__file__).resolve().parents[1]


def test_machine_info_has_the_fields_every_report_uses():
    info = machine.machine_info(("numpy", "not-a-package"))
    for key in ("date", "host", "os", "python", "cpu_model", "cpu_count", "cpus_usable", "memory_gb",
                "load_average", "jax", "jaxlib", "backend", "device_kind", "device_count"):
        assert key in info, key
    assert info["cpu_model"] and info["cpu_count"] >= 1 and info["device_count"] >= 1
    assert info["versions"]["numpy"] and info["versions"]["not-a-package"] is None
    json.dumps(info)  # JSON-able as it is
    assert "device_kind" not in machine.machine_info(devices=False)


def test_machine_line_reads_new_and_old_records():
    line = machine.machine_line(machine.machine_info())
    assert line.endswith(f"jax {machine.machine_info(devices=False)['jax']}") and "CPUs" in line
    old = {"device_kind": "NVIDIA H200", "device_count": 2, "cpu": "Xeon", "cpu_count": 16, "jax": "0.11.2",
           "load_average": [0.5, 0.4, 0.3]}
    assert machine.machine_line(old) == "NVIDIA H200 x2 (Xeon, 16 CPUs, load average 0.5 at start), jax 0.11.2"


def test_benches_share_one_helper_without_sys_path_hacks():
    from bench import _common

    assert _common.machine_info()["cpu_model"] == machine.cpu_model()
    for script in sorted((REPO / "bench").glob("*.py")):
        text = script.read_text()
        assert "sys.path" not in text or script.name == "_common.py", script.name
        if not script.name.startswith("_"):
            assert "/proc/cpuinfo" not in text and "platform.platform()" not in text, script.name
