"""The decision record's parts (``book/index.md``): the answer as an operator would deploy it, the options against
the decision drivers, what would change the answer, and the alarms that watch each failure the book reproduced.

The summary computes them from the decide engine (`experiments.decide`) on the note's chatbot with the catalog
headroom its plan lacks (`ANSWER`), glues them, and the record pastes them: it types no number of its own.
"""

from __future__ import annotations

import html
import math

import pandas as pd

from experiments.decide import edge, spec
from experiments.decide.staleness import REPLICA_LAG_S
from experiments.decide.workload import Workload
from experiments.params import PLAN_CEILING
from experiments.seed import service_default

ANSWER = "chatbot, catalog with headroom"
"""The example workload the record answers for: the note's chatbot, its catalog 1/0.8 times larger."""

REMOTE = ("valkey-durable", "valkey", "redis", "read-through", "valkey-serverless", "near-cache")
"""Options whose hit is a read from a Redis-protocol node over TLS (`spec.deployment` enables it)."""


def answer(w: Workload, ranked: pd.DataFrame, numbers: dict) -> dict:
    """The chosen option for ``w`` and its deployment (`spec.deployment`) as glue values (``answer_*``)."""
    first, second = ranked.iloc[0], ranked.iloc[1]
    chosen = numbers[first.option]
    dep = spec.deployment(w, first.option, chosen)
    product = w.families[0]
    return {
        "answer_option": str(first.option), "answer_verdict": str(first.verdict), "answer_second": str(second.option),
        "answer_engine": dep["engine"].capitalize(), "answer_version": dep["version"],
        "answer_node_type": dep["node_type"], "answer_shards": int(dep["shards"]), "answer_replicas": int(dep["replicas"]),
        "answer_nodes": int(dep["nodes"]), "answer_durability": dep["durability"], "answer_policy": dep["maxmemory_policy"],
        "answer_connect_timeout_s": float(dep["connect_timeout_s"]), "answer_timeout_s": float(dep["command_timeout_s"]),
        "answer_retries": int(dep["retries"]), "answer_dead_cache_turn_s": float(dep["dead_cache_turn_s"]),
        "answer_budget_s": w.turn_budget_ms / 1000, "answer_ttl_s": float(product.ttl_s),
        "answer_max_stale_s": float(product.max_stale_s), "answer_warm_jitter_pct": 100 * spec.WARM_TTL_JITTER,
        "answer_async_loss_s": service_default("durability_async_loss_s"),
        "answer_service_usd": float(first.usd_per_month), "answer_nodes_usd": float(chosen["cluster"]["nodes_usd_per_month"]),
        "answer_transfer_usd": float(chosen["transfer_usd_per_month"]), "answer_team_usd": float(first.team_usd_per_month),
        "answer_total_usd": float(first.total_usd_per_month),
        "answer_margin_usd": float(second.total_usd_per_month - first.total_usd_per_month),
        "answer_team_margin_usd": float(second.team_usd_per_month - first.team_usd_per_month),
        "answer_node_usd": float(chosen["cluster"]["nodes_usd_per_month"]) / int(dep["nodes"]),
        "answer_catalog_per_s": float(w.origin_capacity_per_s), "answer_zones": int(w.zones),
        "answer_breaks_at_x": float(first.breaks_at), "answer_origin_load_pct": float(first.origin_load_pct),
        "answer_hit_pct": float(first.hit_pct), "answer_resident_gb": float(chosen["resident_gb"]),
        "answer_memory_pct": 100 * float(chosen["cluster"]["utilization"]["memory"]),
        "answer_network_pct": 100 * float(chosen["cluster"]["utilization"]["network"]),
        "answer_cli": dep["cli"],
    }


def _hit_latency(option: str, w: Workload, chapters: dict) -> str:
    """What a hit costs for ``option`` on this machine's loopback (p50), from the chapters' measurements: a
    100 KB document's GET, plus the TLS the deployment enables on Redis-protocol nodes."""
    economics, dax = chapters["economics"], chapters["dax"]
    if option in REMOTE and option != "near-cache":
        return f"{economics['redis_page_p50_us'] + dax['tls_get_extra_us']:.0f} µs"
    if option == "memcached":
        return f"{economics['memcached_page_p50_us']:.0f} µs"
    if option in ("in-process", "near-cache"):
        return f"{economics['local_item_p50_us']:.1f} µs"
    if option == "no-cache":
        return f"{w.origin_latency_ms:.0f} ms (the origin)"
    return "caches nothing here"


def _partition(option: str, mitigations: list[str]) -> str:
    """What a primary cut off by a partition leaves behind, by the mitigation the engine lists for the option."""
    if "durable" in mitigations:
        return "no acknowledged delete lost (synchronous durability)"
    if "replay" in mitigations:
        return "acknowledged deletes lost, replayed when the invalidator reconnects"
    if "flush-on-rejoin" in mitigations:
        return "a node back from it is flushed before it serves"
    if option == "in-process":
        return "each task serves its own copies"
    return "nothing cached"


def _usd(value: float, caches: bool) -> str:
    """A monthly cost cell: an option that caches nothing here costs nothing, and is no cache at all."""
    if not caches:
        return "— (caches nothing)"
    return "not priced" if math.isnan(value) else f"${value:,.0f}/month"


def options_table(w: Workload, ranked: pd.DataFrame, numbers: dict, chapters: dict) -> pd.DataFrame:
    """Every option (a column, best first) against the decision drivers (rows), each cell computed: the engine's
    ranking (`experiments.decide.engine`) and the chapters' measurements."""
    columns = {}
    for row in ranked.itertuples():
        n = numbers[row.option]
        product = n["families"][w.families[0].name]
        caches = product["cached"]
        columns[row.option] = {
            "verdict": row.verdict,
            "hit rate": f"{row.hit_pct:.1f} %",
            "a hit (p50, loopback)": (_hit_latency(row.option, w, chapters) if caches or row.option == "no-cache"
                                      else "caches nothing here"),
            "stale bound when all is well": f"{row.stale_bound_s:.2f} s" if caches else "—",
            "stale bound in the worst failure reproduced": f"{row.stale_worst_s:.2f} s" if caches else "—",
            "origin at the peak": f"{row.origin_load_pct:.0f} % of capacity",
            "breaks at": f"{row.breaks_at:.3f}× the peak",
            "a node lost": ("a replica takes over with the keys" if row.survives_node_loss else
                            "its keys start empty") if caches else "—",
            "a primary partitioned away": _partition(row.option, product["mitigations"]) if caches else "—",
            "a replica cut off from its primary": ("its zone's reads go to the primary (read from the replica only while "
                                                    "it is linked and within the lag allowed)" if product["replica_reads"]
                                                   else "—"),
            "work to build": (f"{row.builds} components, ${row.team_usd_per_month:,.0f}/month" if row.builds
                              else "none" if caches or row.option == "no-cache" else "— (caches nothing)"),
            "service and transfer": _usd(row.usd_per_month, caches or row.option == "no-cache"),
            "in all": _usd(row.total_usd_per_month, caches or row.option == "no-cache"),
        }
    return pd.DataFrame(columns)


def table_html(table: pd.DataFrame, chosen: str) -> str:
    """The options table as HTML, the chosen column marked (its header says so, its cells are shaded)."""
    head = "".join(f'<th{" class=chosen" if c == chosen else ""}>{html.escape(c)}{" ✔ chosen" if c == chosen else ""}'
                   f"</th>" for c in table.columns)
    rows = "".join(
        f"<tr><th>{html.escape(str(driver))}</th>" + "".join(
            f'<td{" style=background:#e3f1e6" if c == chosen else ""}>{html.escape(str(table.loc[driver, c]))}</td>'
            for c in table.columns) + "</tr>"
        for driver in table.index)
    return (f'<div style="overflow-x:auto"><table class="cachebook-options" style="font-size:0.8em">'
            f"<thead><tr><th>driver</th>{head}</tr></thead><tbody>{rows}</tbody></table></div>")


def alarms(w: Workload, answer_: dict, chapters: dict) -> pd.DataFrame:
    """The CloudWatch metrics (and the application's own) that watch each failure the book reproduced, with the
    threshold the book's numbers give: a plan may use `PLAN_CEILING` of any capacity or limit."""
    ceiling = 100 * PLAN_CEILING
    zone_connections = math.ceil(w.tasks / w.zones) * w.connections_per_task
    capacity = w.origin_capacity_per_s
    invalidation_s = PLAN_CEILING * (answer_["answer_max_stale_s"] - REPLICA_LAG_S)
    rows = [
        ("CacheHitRate", "AWS/ElastiCache", f"< {answer_['answer_hit_pct']:.0f} %",
         "the plan's hit rate: below it the catalog passes the load the plan allows", "traffic"),
        ("Evictions", "AWS/ElastiCache", "sum over 5 min > 0",
         f"the cluster holds the resident set ({answer_['answer_memory_pct']:.0f} % of usable memory): an eviction "
         "means it outgrew the cluster, and the misses go to the catalog", "traffic"),
        ("DatabaseMemoryUsagePercentage", "AWS/ElastiCache", f"> {ceiling:.0f} %",
         "the memory a plan may use (the invalidation stream has no TTL: trim it, or it grows)", "traffic"),
        ("NetworkBandwidthOutAllowanceExceeded", "AWS/ElastiCache", "sum over 5 min > 0",
         f"packets past a node's baseline are queued or dropped, and reads time out (the busiest node uses "
         f"{answer_['answer_network_pct']:.0f} % of it); watch NetworkBytesOut against it before it fires", "network"),
        ("EngineCPUUtilization", "AWS/ElastiCache", f"> {ceiling:.0f} %", "the engine thread a plan may use", "valkey"),
        ("ReplicationLag", "AWS/ElastiCache", f"maximum over 1 min > {PLAN_CEILING * REPLICA_LAG_S:g} s",
         f"replicas serve each zone's reads, and the plan counts a replica at most {REPLICA_LAG_S:g} s behind: past "
         "it, or with a replica cut off from its primary, send that zone's reads to the primary", "redis"),
        ("CurrConnections", "AWS/ElastiCache", f"minimum per node drops by {zone_connections} within a minute",
         f"a zone's tasks cut off ({math.ceil(w.tasks / w.zones)} tasks × {w.connections_per_task} connections): a "
         "partition is silent until the clients time out", "network"),
        ("NewConnections", "AWS/ElastiCache", f"> {w.tasks * w.connections_per_task} a minute on a node",
         "every task reconnecting: a failover or a healed partition (or a deployment: mute it then)", "network"),
        ("invalidation lag (age of the oldest change the consumer group has not acknowledged, delivered or not)",
         "the application", f"> {invalidation_s:.1f} s, missing data breaching",
         f"a change not yet deleted is served stale; with a replica's allowed lag this keeps the product's "
         f"{answer_['answer_max_stale_s']:.0f} s", "redis"),
        ("catalog reads per second", "the application", f"> {PLAN_CEILING * capacity:.0f} reads/s",
         f"{ceiling:.0f} % of the catalog's {capacity:.0f} reads/s, where the plan's peak already sits: any growth "
         "fires it, and past its capacity a queue never recovers", "no-cache"),
        ("ThrottledCmds (Serverless only)", "AWS/ElastiCache", "sum over 1 min > 0",
         "requests refused while Serverless scales up: pre-scale before a known peak", "valkey"),
        ("ElastiCacheProcessingUnits (Serverless only)", "AWS/ElastiCache",
         f"> {service_default('serverless_alarm_pct'):.0f} % of the cache's maximum", "AWS's own alarm on the limit",
         "valkey"),
    ]
    return pd.DataFrame(rows, columns=["metric", "namespace", "alarm when", "why", "chapter"])


def alarms_html(table: pd.DataFrame) -> str:
    """The alarms as HTML, each row linked to the chapter that reproduced its failure."""
    rows = "".join(
        f"<tr><td><code>{html.escape(r.metric)}</code></td><td>{html.escape(r.namespace)}</td>"
        f"<td>{html.escape(r._3)}</td><td>{html.escape(r.why)} (<a href=\"{r.chapter}.html\">{r.chapter}</a>)</td></tr>"
        for r in table.itertuples())
    return ('<table class="cachebook-alarms" style="font-size:0.85em"><thead><tr><th>metric</th><th>from</th>'
            f"<th>alarm when</th><th>what it watches</th></tr></thead><tbody>{rows}</tbody></table>")


def cli_html(cli: str) -> str:
    """The deployment's AWS CLI command as a code block (a glued string would paste as its Python repr)."""
    return f'<pre style="white-space:pre-wrap"><code>{html.escape(cli)}</code></pre>'


def flips(w: Workload, item_overhead: float) -> pd.DataFrame:
    """What would change the answer for ``w``: each input scaled up and down until the first place changes
    (`experiments.decide.edge`), those that change it first."""
    table = pd.DataFrame([{**f, "text": edge.describe(f, w)} for f in edge.flips(w, item_overhead=item_overhead)])
    return table.sort_values("factor", key=lambda f: f.isna(), kind="stable").reset_index(drop=True)


def flips_html(table: pd.DataFrame) -> str:
    """The flips as an HTML list (the record pastes it across pages, where myst-nb takes HTML, not Markdown)."""
    return "<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in table.text) + "</ul>"


def findings(answer_: dict, ranked: pd.DataFrame, numbers: dict, flips_: pd.DataFrame) -> dict[str, bool]:
    """What the record states about its answer, as statements the summary asserts."""
    chosen = numbers[answer_["answer_option"]]["cluster"]
    peak = flips_[(flips_.input == "peak_multiple") & (flips_.direction == "up")].factor.iloc[0]
    return {
        "the record's answer is the decision function's first option, recommended":
            answer_["answer_option"] == ranked.option.iloc[0] and ranked.verdict.iloc[0] == "recommended",
        "the answer's cluster keeps every node limit within the plan's ceiling":
            max(chosen["utilization"].values()) <= PLAN_CEILING,
        "a dead cache leaves a turn within the plan's share of its budget":
            answer_["answer_dead_cache_turn_s"] <= PLAN_CEILING * answer_["answer_budget_s"],
        "with the catalog a quarter larger the plan sits at its ceiling: a peak 5 % higher leaves no option viable":
            pd.notna(peak) and peak < 1.05,
    }
