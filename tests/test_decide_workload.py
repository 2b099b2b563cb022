"""The workload file of `python -m experiments.decide`: the examples load; every bad file is one line that
names the field, the value and what is allowed."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.decide import workload
from experiments.paths import DATA

GOOD = """
name = "test"
tasks = 4
peak_multiple = 2
turn_budget_ms = 2000
[origin]
capacity_per_s = 33
latency_ms = 120
[[families]]
name = "product"
reads_per_s = 667
keys = 500000
zipf_alpha = 1.0
value_kb = 2.0
ttl_s = 300
max_stale_s = 5
changed_by_events = true
cacheable = true
in_dynamodb = false
"""


def _write(tmp_path, text: str, name: str = "w.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_example_workload_loads():
    examples = sorted((DATA / "workloads").glob("*.toml"))
    assert examples
    for path in examples:
        loaded = workload.load(path)
        assert loaded.families and loaded.name


def test_a_good_file_loads_with_its_defaults(tmp_path):
    w = workload.load(_write(tmp_path, GOOD))
    assert w.tasks == 4 and w.eviction == "lru" and w.task_cache_mb == 500.0
    assert (w.zones, w.connections_per_task, w.origin_max_utilization) == (3, 8, workload.ORIGIN_MAX_UTILIZATION)
    assert w.team == workload.Team()
    assert w.families[0].keys == 500_000 and w.families[0].trace is None and w.families[0].projections == 1


def test_a_csv_trace_replaces_the_zipf_assumption(tmp_path):
    (tmp_path / "product.csv").write_text("timestamp,key,size\n0,a,100\n1,b,200\n2,a,100\n")
    text = GOOD.replace("keys = 500000\nzipf_alpha = 1.0", 'trace = "product.csv"').replace("value_kb = 2.0\n", "")
    trace = workload.load(_write(tmp_path, text)).families[0].trace
    assert trace.entry.tolist() == [0, 1, 0] and trace.sizes.tolist() == [100, 200]


def test_an_oracle_general_trace_is_read_too(tmp_path):
    records = np.zeros(3, np.dtype([("time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"), ("next_access", "<i8")]))
    records["obj_id"], records["obj_size"], records["time"] = [5, 6, 5], [10, 20, 10], [0, 1, 1]
    records.tofile(tmp_path / "t.bin")
    text = GOOD.replace("keys = 500000\nzipf_alpha = 1.0", 'trace = "t.bin"').replace("value_kb = 2.0\n", "")
    trace = workload.load(_write(tmp_path, text)).families[0].trace
    assert trace.entry.tolist() == [0, 1, 0] and trace.sizes.tolist() == [10, 20]


SECOND = GOOD[GOOD.index("[[families]]"):]

BAD = {
    "syntax error": (GOOD.replace("tasks = 4", "tasks = "), "not valid TOML"),
    "missing [origin]": (GOOD.replace("[origin]\ncapacity_per_s = 33\nlatency_ms = 120\n", ""), "[origin] table is missing"),
    "no families": (GOOD[:GOOD.index("[[families]]")], "no [[families]] table"),
    "missing field": (GOOD.replace("ttl_s = 300\n", ""), "families[0].ttl_s is missing"),
    "missing top field": (GOOD.replace("tasks = 4\n", ""), "workload.tasks is missing"),
    "unknown field": (GOOD.replace("ttl_s = 300", "ttl_s = 300\nttl_seconds = 300"), "unknown field 'ttl_seconds'"),
    "unknown top field": (GOOD.replace("tasks = 4", "tasks = 4\ntask = 4"), "unknown field 'task'"),
    "wrong type": (GOOD.replace("reads_per_s = 667", 'reads_per_s = "667"'), "reads_per_s = '667': must be a number"),
    "a boolean as a number": (GOOD.replace("value_kb = 2.0", "value_kb = true"), "value_kb = True: must be a number"),
    "a number as a boolean": (GOOD.replace("cacheable = true", "cacheable = 1"), "cacheable = 1: must be true or false"),
    "negative rate": (GOOD.replace("reads_per_s = 667", "reads_per_s = -3"), "reads_per_s = -3: must be above 0"),
    "zero rate": (GOOD.replace("reads_per_s = 667", "reads_per_s = 0"), "reads_per_s = 0: must be above 0"),
    "zero capacity": (GOOD.replace("capacity_per_s = 33", "capacity_per_s = 0"), "capacity_per_s = 0: must be above 0"),
    "fractional tasks": (GOOD.replace("tasks = 4", "tasks = 2.5"), "tasks = 2.5: must be an integer"),
    "both zipf and trace": (GOOD.replace("zipf_alpha = 1.0", 'zipf_alpha = 1.0\ntrace = "x.csv"'), "not both"),
    "neither zipf nor trace": (GOOD.replace("zipf_alpha = 1.0\n", ""), "not neither"),
    "missing trace": (GOOD.replace("keys = 500000\nzipf_alpha = 1.0", 'trace = "absent.csv"').replace(
        "value_kb = 2.0\n", ""), "no such file"),
    "a value size beside a trace": (GOOD.replace("keys = 500000\nzipf_alpha = 1.0", 'trace = "x.csv"'),
                                    "a trace sets its own sizes"),
    "two families with one name": (GOOD + SECOND, "two families are named 'product'"),
    "unknown policy": (GOOD.replace("tasks = 4", 'tasks = 4\neviction = "arc"'), "eviction = 'arc': must be one of"),
    "keys beside a trace": (GOOD.replace("zipf_alpha = 1.0", 'trace = "x.csv"'), "a trace sets its own keys"),
    "utilization above 1": (GOOD.replace("latency_ms = 120", "latency_ms = 120\nmax_utilization = 1.2"),
                            "origin.max_utilization = 1.2: must be at most 1"),
    "no zones": (GOOD.replace("tasks = 4", "tasks = 4\nzones = 0"), "zones = 0: must be at least 1"),
    "unknown team field": (GOOD + "\n[team]\nday_rate = 900\n", "unknown field 'day_rate'"),
    "a zero horizon": (GOOD + "\n[team]\nhorizon_months = 0\n", "team.horizon_months = 0: must be above 0"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_workload_is_one_line_naming_the_field(tmp_path, case):
    text, message = BAD[case]
    with pytest.raises(workload.WorkloadError) as excinfo:
        workload.load(_write(tmp_path, text))
    assert message in str(excinfo.value) and "\n" not in str(excinfo.value)


@pytest.mark.parametrize("content,message", [
    ("time,key,size\n0,a,1\n", "header timestamp,key,size"),
    ("timestamp,key,size\n", "no requests"),
    ("timestamp,key,size\n0,a,1\nx,b,2\n", "row 3"),
    ("timestamp,key,size\n0,a,1\n1,b\n", "row 3"),
    ("timestamp,key,size\n5,a,1\n1,b,2\n", "never going back"),
    ("timestamp,key,size\n0,a,nan\n", "positive finite"),
    ("timestamp,key,size\n0," + "k" * 200_000 + ",1\n", "cannot be read as CSV"),
])
def test_an_unparsable_trace_is_one_line(tmp_path, content, message):
    (tmp_path / "t.csv").write_text(content)
    text = GOOD.replace("keys = 500000\nzipf_alpha = 1.0", 'trace = "t.csv"').replace("value_kb = 2.0\n", "")
    with pytest.raises(workload.WorkloadError, match=message):
        workload.load(_write(tmp_path, text))


def test_a_truncated_binary_trace_is_one_line(tmp_path):
    (tmp_path / "t.bin").write_bytes(b"\0" * 30)
    with pytest.raises(workload.WorkloadError, match="not an oracleGeneral trace"):
        text = GOOD.replace("keys = 500000\nzipf_alpha = 1.0", 'trace = "t.bin"').replace("value_kb = 2.0\n", "")
        workload.load(_write(tmp_path, text))


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(workload.WorkloadError, match="no such workload file"):
        workload.load(tmp_path / "nope.toml")
