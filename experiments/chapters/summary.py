"""The summary chapter: the seed's table rebuilt from the chapters' results, the whole claims ledger,
the seed's claims enumerated against it, and the ledger rows only the whole book can judge.

Everything here reads what the chapters wrote under the results folder (`experiments.ledger`): their
ledger rows and their headline numbers. A chapter's summary-table row is rebuilt by the chapter's own
``summary_row`` from those numbers, so the two can never disagree.
"""

from __future__ import annotations

import dataclasses
import html
import json

import pandas as pd

from experiments import rules
from experiments.chapters import dax, in_process_lru, memcached, network, no_cache, read_through, redis, valkey
from experiments.decide import edge, engine
from experiments.decide.workload import Workload, load, with_headroom
from experiments.errors import BookError
from experiments.ledger import VERDICTS, load_all
from experiments.models import decision, whatif
from experiments.paths import DATA, results_dir
from experiments.seed import figure

CHAPTERS = ["economics", "redis", "valkey", "memcached", "dax", "in-process-lru", "traffic", "no-cache", "read-through",
            "network"]
"""The chapters whose results the summary needs, in reading order."""

OPTIONS = {"ElastiCache Redis": ("redis", redis), "ElastiCache Valkey": ("valkey", valkey),
           "Memcached": ("memcached", memcached), "DAX": ("dax", dax),
           "In-process LRU": ("in-process-lru", in_process_lru), "No cache": ("no-cache", no_cache),
           "Read-through": ("read-through", read_through)}
"""The seed's summary-table rows, and Valkey's (not in the note: its cells judge the note's Redis row on
Valkey): option → (chapter, claims module)."""

TABLE_CLAIMS = {
    "ElastiCache Redis": ["economics.table.redis-latency", "redis.table.invalidation", "redis.table.consistency",
                          "redis.table.failure-risk"],
    "ElastiCache Valkey": ["valkey.table.latency", "valkey.table.invalidation", "valkey.table.consistency",
                           "valkey.table.failure-risk"],
    "Memcached": ["economics.table.memcached-latency", "memcached.table.invalidation", "network.table.memcached-consistency",
                  "memcached.table.failure-risk"],
    "DAX": ["dax.table.latency", "dax.table.invalidation", "dax.table.consistency", "dax.table.failure-risk"],
    "In-process LRU": ["in-process-lru.table.latency", "in-process-lru.table.invalidation", "in-process-lru.table.consistency",
                       "in-process-lru.table.failure-risk"],
    "No cache": ["no-cache.table.latency", "no-cache.always-fresh", "no-cache.table.consistency",
                 "no-cache.table.failure-risk"],
    "Read-through": ["read-through.table.latency", "read-through.table.invalidation",
                     "read-through.table.consistency", "read-through.table.failure-risk"],
}
"""The ledger row that judges each cell of the seed's table (columns: latency, invalidation,
consistency, key failure risk), before the network chapter's cells replace those a partition judges
(`experiments.chapters.network.table_cells`)."""

COLOURS = dict(zip(VERDICTS, ("#e3f1e6", "#fdf1d6", "#f8dcdc", "#dde8f6", "#ececec"), strict=True))
"""Row colours by verdict, in the order of `VERDICTS`."""


def load_results() -> tuple[pd.DataFrame, dict[str, dict]]:
    """Every chapter's ledger rows and headline numbers (never the summary's own, which a previous run left);
    a one-line error names what is missing."""
    folder = results_dir() / "numbers"
    numbers = ({path.stem: json.loads(path.read_text()) for path in folder.glob("*.json") if path.stem != "summary"}
               if folder.exists() else {})
    ledger = load_all() if (results_dir() / "ledger").exists() else pd.DataFrame(columns=["chapter"])
    missing = [c for c in CHAPTERS if c not in numbers or c not in set(ledger.chapter)]
    if missing:
        raise BookError(f"no results yet for {', '.join(missing)}: run `python -m experiments.bookkit execute "
                        f"{' '.join(missing)}` (or `make book`) first")
    return ledger, numbers


def link(proof: str, text: str) -> str:
    """An HTML link from a ledger proof (``chapter.ipynb#label``) to that section of the built book."""
    page, _, anchor = proof.partition("#")
    target = page.replace(".ipynb", ".html") + (f"#{anchor}" if anchor else "")
    return f'<a href="{html.escape(target)}">{html.escape(text)}</a>'


def summary_table(ledger: pd.DataFrame, numbers: dict[str, dict]) -> pd.DataFrame:
    """The seed's summary table beside ours: one row per option and column, with the judging ledger row — the
    network chapter's where a partition decides the cell (a kill on loopback cannot show a split brain)."""
    rows = ledger.set_index("claim_id")
    frames = []
    for option, (chapter, module) in OPTIONS.items():
        part = module.summary_row(numbers[chapter]).assign(option=option, claim_id=TABLE_CLAIMS[option])
        frames.append(part)
    table = pd.concat(frames, ignore_index=True)
    for (option, column), (measured, claim_id) in network.table_cells(numbers["network"]).items():
        cell = (table.option == option) & (table.column == column)
        table.loc[cell, ["measured", "claim_id"]] = measured, claim_id
    table["verdict"] = [rows.loc[c, "verdict"] for c in table.claim_id]
    table["proof"] = [rows.loc[c, "proof"] for c in table.claim_id]
    return table[["option", "column", "seed", "measured", "verdict", "claim_id", "proof"]]


def _coloured_table(head: list[str], rows: list[tuple[str, list[str]]]) -> str:
    """An HTML table whose rows are (verdict, cells); cells are HTML already, the verdict is appended."""
    header = "".join(f"<th>{h}</th>" for h in [*head, "verdict"])
    body = "".join(f'<tr style="background:{COLOURS[verdict]}">' + "".join(f"<td>{c}</td>" for c in [*cells, verdict])
                   + "</tr>" for verdict, cells in rows)
    return f'<table class="cachebook-table"><tr>{header}</tr>{body}</table>'


def summary_html(table: pd.DataFrame) -> str:
    """The side-by-side table as HTML: the seed's cell, ours (linked to its proof), coloured by verdict."""
    return _coloured_table(["option", "column", "the note", "measured here"], [
        (r.verdict, [html.escape(r.option), html.escape(r.column), html.escape(r.seed), link(r.proof, r.measured)])
        for r in table.itertuples()])


def ledger_html(ledger: pd.DataFrame) -> str:
    """Every ledger row as HTML, coloured by verdict, each claim linked to the section that checks it, with
    the scenario of the note its figures come from and the rule that turns the numbers into the verdict."""
    return _coloured_table(["chapter", "claim (our words)", "the note's scenario", "the note", "measured here", "rule"], [
        (r.verdict, [html.escape(r.chapter), link(r.proof, r.claim), html.escape(r.scenario or "(stated in the claim)"),
                     html.escape(r.seed_value), html.escape(r.measured), html.escape(r.rule)])
        for r in ledger.itertuples()])


def verdict_counts(ledger: pd.DataFrame) -> pd.DataFrame:
    """Rows per chapter and verdict, with totals."""
    counts = pd.crosstab(ledger.chapter, ledger.verdict).reindex(columns=list(VERDICTS), fill_value=0)
    counts = counts.reindex([c for c in [*CHAPTERS, "summary"] if c in counts.index])
    counts["rows"] = counts.sum(axis=1)
    counts.loc["all chapters"] = counts.sum()
    return counts


def inventory() -> pd.DataFrame:
    """The seed's claims, enumerated section by section (``data/seed_claims.csv``)."""
    frame = pd.read_csv(DATA / "seed_claims.csv", dtype={"ledger_ids": str}).fillna({"ledger_ids": ""})
    frame["ledger_ids"] = frame.ledger_ids.map(lambda ids: [i for i in ids.split(";") if i])
    return frame


def coverage(claims: pd.DataFrame, ledger: pd.DataFrame) -> pd.DataFrame:
    """Per kind of seed statement: how many there are and how many have ledger rows; claims and
    judgements without one (which must be none) are listed. Inputs are taken as given."""
    known = set(ledger.claim_id)
    found = claims.ledger_ids.map(lambda ids: bool(ids) and all(i in known for i in ids))
    table = claims.assign(in_ledger=found).groupby("kind").agg(statements=("no", "size"), in_ledger=("in_ledger", "sum"))
    table["without_a_row"] = ["(inputs, kept in data/)" if kind == "input" else
                              ", ".join(str(n) for n in claims[(claims.kind == kind) & ~found].no)
                              for kind in table.index]
    return table


def split_verdicts(claims: pd.DataFrame, ledger: pd.DataFrame) -> pd.DataFrame:
    """The note's claims that two ledger rows judge differently (which must be none: one claim, one verdict across
    the book); a claim's rows are the ones ``data/seed_claims.csv`` lists for it, whichever chapters record them."""
    verdict = ledger.set_index("claim_id").verdict
    rows = [(claim.no, claim.topic, ", ".join(f"{i}: {verdict[i]}" for i in claim.ledger_ids if i in verdict.index))
            for claim in claims.itertuples()
            if len({verdict[i] for i in claim.ledger_ids if i in verdict.index}) > 1]
    return pd.DataFrame(rows, columns=["no", "topic", "verdicts"])


def record_claims(ledger, numbers: dict[str, dict]) -> pd.DataFrame:
    """Seed claims that no single chapter judges: they need numbers from several chapters. Each verdict
    is its rule applied to the chapters' saved numbers."""
    nocache, mc, inproc = numbers["no-cache"], numbers["memcached"], numbers["in-process-lru"]
    rec = ledger.record
    rec("summary.context-p99", claim="A cache lowers the chatbot's P99 as well as its load", seed_value="reduces P99",
        measured=(f"a turn's P99 goes from {nocache['fan_p99_ms']:.0f} ms to {nocache['fan_cached_p99_ms']:.0f} ms at a "
                  f"95 % hit rate (P50: {nocache['fan_p50_ms']:.0f} to {nocache['fan_cached_p50_ms']:.0f} ms): the tail "
                  "is set by the turns with a miss"),
        rule=rules.at_most(0.9 * nocache["fan_p99_ms"], nocache["fan_cached_p99_ms"], unit="ms at P99 (10 % below the "
                           "uncached P99)", partly=1 / 0.9),
        inputs=("fanout_p50_ms", "planned_hit_rate"), reconciled="the fan-out's 350 ms is the no-cache Q2's; the hit "
        "rate is the planned 95 % of the Memcached scenario, the only planned hit rate the note states",
        threshold="ours: a P99 at least 10 % below the turn's without a cache", proof="no-cache.ipynb#q2-fan-out-latency")
    miss_here = figure("catalog_concurrency") / figure("launch_users")
    rec("summary.context-miss-baseline", claim="The catalog is sized on a 10 % miss baseline",
        seed_value=f"{figure('catalog_concurrency'):,.0f} of {figure('launch_users'):,.0f} concurrent",
        measured=(f"{100 * miss_here:.0f} % within the no-cache scenario; the note's Memcached scenario sizes the same "
                  f"catalog for a {100 * (1 - figure('planned_hit_rate')):.0f} % miss share"),
        rule=rules.parts({"5,000 of 50,000 is a 10 % miss share": abs(miss_here - 0.10) < 0.005,
                          "the note's other sizing of the catalog assumes the same miss share":
                          abs((1 - figure("planned_hit_rate")) - miss_here) < 0.005}),
        inputs=("catalog_concurrency", "launch_users", "planned_hit_rate"),
        reconciled="the row compares the two scenarios' sizings of one catalog",
        proof="no-cache.ipynb#failure-the-flash-sale-collapse")
    rec("summary.redis-aws-integration", claim="ElastiCache is deeply integrated in the AWS ecosystem",
        seed_value="deeply integrated", measured="—",
        rule=rules.unmeasurable("not testable here: no AWS account or network; the book runs open-source Redis, "
                                "which ElastiCache hosts"),
        proof="redis.ipynb")
    rec("summary.memcached-large-values", claim="For blobs over 128 KB Memcached's lower overhead wins",
        seed_value=">128KB", measured=(f"{mc['big_kb']:.0f} KB values on this 2-core machine: Memcached with 4 threads "
                                       f"{mc['mc_t4_big_rps']:,.0f} ops/s, Redis {mc['redis_big_rps']:,.0f} GET/s"),
        rule=rules.unmeasurable(memcached.THROUGHPUT_UNDECIDABLE), inputs=("large_value_bytes",),
        proof="memcached.ipynb#best-case-throughput-and-large-values")
    rec("summary.memcached-no-replication", claim="Memcached has no replication and no cluster bus to operate",
        seed_value="no replication complexity",
        measured=(f"true, and its cost: a replaced node starts empty (hot-key hit rate down to "
                  f"{mc['cold_lowest_hit_pct']:.0f} %): {mc['remap_replace_named_pct']:.0f} % of keys cold for clients "
                  f"hashing on the endpoint name ElastiCache keeps, {mc['remap_replace_pct']:.0f} % for clients "
                  "hashing on addresses"),
        rule=rules.parts({"a replaced node starts empty: nothing replicates to it": mc["cold_lowest_hit_pct"] < 100}),
        proof="memcached.ipynb#failure-2-a-cold-replacement-node")
    rec("summary.in-process-lru-no-service", claim="An in-process cache has no service to operate",
        seed_value="no operational overhead",
        measured="no cache service, but the per-task state needs its own status command to be observable",
        # both by construction: the cache lives in the task, and what the chapter used to see inside the 60
        # caches is a status command of its own (`caches.nearcache`), not something a library offers
        rule=rules.parts({"no cache service runs beside the tasks": True,
                          "the 60 caches can be observed without a tool of the team's own": False}),
        proof="in-process-lru.ipynb#q3-seeing-inside-sixty-caches")
    budget = figure("product_cache_mb")
    rec("summary.in-process-lru-ram-only", claim="An in-process cache costs nothing beyond the task's RAM",
        seed_value="zero cost beyond RAM",
        measured=(f"5,000 entries of 100 KB take {inproc['bytes_rss_mb']:.0f} MB as bytes, {inproc['parsed_rss_mb']:.0f} MB "
                  f"parsed; a rollout that warms from the origin hits it at {inproc['roll_origin_peak_ratio']:.0f}x baseline"),
        rule=rules.parts({"as bytes, the cache fits the note's 500 MB (within 10 %)": inproc["bytes_rss_mb"] <= 1.1 * budget,
                          "parsed, it fits too": inproc["parsed_rss_mb"] <= 1.1 * budget,
                          "a rollout costs the origins nothing": inproc["roll_origin_peak_ratio"] <= 1}),
        inputs=("product_cache_mb", "product_cache_entries", "product_entry_kb"),
        proof="in-process-lru.ipynb#failure-2-memory-and-garbage-collection")
    rec("summary.no-cache-simpler", claim="Without a cache there is no cluster to manage, monitor or pay for",
        seed_value="simplified architecture",
        measured=f"true; the origins must then absorb the launch ({nocache['answered_no_cache_pct']:.2f} % answered in time)",
        rule=rules.parts({"no cache cluster runs": True}),  # by construction; the cost is judged in no-cache.*
        proof="no-cache.ipynb#failure-the-flash-sale-collapse")
    return ledger.table()


EXPECTED_FIRST = {"taxonomy": "in-process", "dynamodb-hot-set": "valkey-dynamodb", "prices": "no-cache",
                  "network-bound": "near-cache", "large-rare-catalog": "valkey-serverless",
                  "durable-wins": "valkey-durable", "chatbot, catalog with headroom": "valkey-durable"}
"""What each example workload's file says should come first (the chatbot at its plan and the launch: no option is
viable; see their files)."""

NONE_VIABLE = ("chatbot", "launch")
"""The examples with no viable option: the note's chatbot (no headroom) and its launch (live reads)."""


def every_read_cacheable(w: Workload) -> Workload:
    """The same workload with its live families made cacheable like its first cacheable one (same TTL and
    staleness): what the live reads decide."""
    model = next(f for f in w.families if f.cacheable)
    families = tuple(f if f.cacheable else dataclasses.replace(
        f, cacheable=True, ttl_s=model.ttl_s, max_stale_s=model.max_stale_s, value_kb=model.value_kb)
        for f in w.families)
    return dataclasses.replace(w, name=f"{w.name}, every read cacheable", families=families)


def example_workloads() -> dict[str, Workload]:
    """Every example workload (``data/workloads/``) by file name, the launch with its live reads made cacheable,
    and the chatbot with a catalog that has headroom."""
    workloads = {path.stem: load(path) for path in sorted((DATA / "workloads").glob("*.toml"))}
    workloads["launch, every read cacheable"] = every_read_cacheable(workloads["launch"])
    workloads["chatbot, catalog with headroom"] = with_headroom(workloads["chatbot"])
    return workloads


def decisions(item_overhead: float) -> tuple[dict[str, pd.DataFrame], dict[str, dict]]:
    """`python -m experiments.decide`'s engine on every example workload (`example_workloads`): the ranked
    table, and each option's numbers (cluster, resident set, transfer, breaking multiple) by workload;
    ``item_overhead`` is the memory per 100 KB document over its own bytes that the Valkey chapter measured."""
    ranked, numbers = {}, {}
    for name, w in example_workloads().items():
        ordered, numbers[name] = engine.rank(w, item_overhead=item_overhead)
        frame = decision.table(ordered)
        ranked[name] = frame.assign(breaks_at=[numbers[name][o]["breaks_at_peak_multiple"] for o in frame.option])
    return ranked, numbers


def chatbot_flips(item_overhead: float) -> pd.DataFrame:
    """What would change the answer for the note's chatbot: each input scaled up and down until the first place
    changes (`experiments.decide.edge`)."""
    w = load(DATA / "workloads" / "chatbot.toml")
    return pd.DataFrame([{**f, "text": edge.describe(f, w)} for f in edge.flips(w, item_overhead=item_overhead)])


def headline(table: pd.DataFrame, ledger: pd.DataFrame, claims: pd.DataFrame, ranked: dict[str, pd.DataFrame],
             numbers: dict[str, dict], flips: pd.DataFrame, answers: pd.DataFrame) -> dict:
    """Numbers quoted by this page and the decision record."""
    cells, rows = table.verdict.value_counts(), ledger.verdict.value_counts()
    kinds = claims.kind.value_counts()
    by = {name: frame.set_index("option") for name, frame in ranked.items()}
    needed = {f"launch_hit_{x}x_pct": whatif.hit_rate_to_answer(answers, overload=float(x), reads=whatif.CACHEABLE)
              for x in (3, 10)}
    live_ok = answers[(answers.reads == whatif.LIVE) & (answers.answered_pct >= 99)].overload
    roomy = ranked["chatbot, catalog with headroom"]
    first, second = roomy.iloc[0], roomy.iloc[1]
    chosen = numbers["chatbot, catalog with headroom"][first.option]
    valkey = numbers["chatbot, catalog with headroom"]["valkey"]
    capacity_flip = flips[(flips.input == "origin_capacity_per_s") & (flips.direction == "up")].factor.iloc[0]
    cacheable = ranked["launch, every read cacheable"].iloc[0]
    cacheable_cluster = numbers["launch, every read cacheable"][cacheable.option]["cluster"]
    return {"table_cells": len(table), **{f"table_{v}": int(cells.get(v, 0)) for v in VERDICTS},
            "summary_rows": int((ledger.chapter == "summary").sum()),
            "ledger_rows": len(ledger), **{f"ledger_{v}": int(rows.get(v, 0)) for v in VERDICTS},
            **{f"inventory_{k}s": int(kinds.get(k, 0)) for k in ("claim", "judgement", "input")},
            "chatbot_redis_hit_pct": float(by["chatbot"].loc["redis", "hit_pct"]),
            "chatbot_redis_load_pct": float(by["chatbot"].loc["redis", "origin_load_pct"]),
            "chatbot_no_cache_load_x": float(by["chatbot"].loc["no-cache", "origin_load_pct"]) / 100,
            "chatbot_max_utilization_pct": 100 * load(DATA / "workloads" / "chatbot.toml").origin_max_utilization,
            "chatbot_capacity_flip_x": float(capacity_flip) if pd.notna(capacity_flip) else float("nan"),
            "chatbot_roomy_first": str(first.option), "chatbot_roomy_second": str(second.option),
            "chatbot_roomy_total_usd": float(first.total_usd_per_month),
            "chatbot_roomy_margin_usd": float(second.total_usd_per_month - first.total_usd_per_month),
            "chatbot_roomy_nodes": int(chosen["cluster"]["nodes"]),
            "chatbot_roomy_node_type": str(chosen["cluster"]["node_type"]),
            "chatbot_roomy_transfer_usd": float(chosen["transfer_usd_per_month"]),
            "chatbot_valkey_transfer_usd": float(valkey["transfer_usd_per_month"]),
            "chatbot_resident_gb": float(chosen["resident_gb"]), "chatbot_catalog_gb": float(chosen["catalog_gb"]),
            "chatbot_roomy_breaks_x": float(roomy.set_index("option").loc[first.option, "breaks_at"]),
            "launch_redis_load_pct": float(by["launch"].loc["redis", "origin_load_pct"]),
            "launch_cacheable_redis_load_pct": float(by["launch, every read cacheable"].loc["redis", "origin_load_pct"]),
            "launch_cacheable_first": str(cacheable.option),
            "launch_cacheable_nodes": int(cacheable_cluster["nodes"]) if cacheable_cluster else 0,
            "launch_cacheable_binding": str(cacheable_cluster["binding"]) if cacheable_cluster else "",
            "launch_cacheable_hot_copies": int(cacheable_cluster["hot_key_copies"]) if cacheable_cluster else 0,
            "launch_cacheable_total_usd": float(cacheable.total_usd_per_month),
            "launch_live_share_pct": 100 * figure("launch_live_share"),
            **{k: float("nan") if v is None else v for k, v in needed.items()},
            "launch_live_max_overload": float(live_ok.max()) if len(live_ok) else 0.0}


def findings(table: pd.DataFrame, ledger: pd.DataFrame, claims: pd.DataFrame, ranked: dict[str, pd.DataFrame],
             numbers: dict[str, dict], grids: list[pd.DataFrame]) -> dict[str, bool]:
    """This page's conclusions as statements that must hold (asserted; compared by nbval)."""
    covered = coverage(claims, ledger)
    strong = table[(table.column == "Consistency") & table.option.isin(["ElastiCache Redis", "ElastiCache Valkey", "DAX",
                                                                         "Read-through"])]
    roomy = ranked["chatbot, catalog with headroom"]
    chatbot = numbers["chatbot, catalog with headroom"]
    return {
        "every claim and judgement of the note has its rows in the ledger":
            (covered.loc[["claim", "judgement"], "without_a_row"] == "").all(),
        "one claim of the note has one verdict: every ledger row that judges it agrees":
            split_verdicts(claims, ledger).empty,
        "every unverifiable ledger row gives its reason":
            bool((ledger[ledger.verdict == "unverifiable"].rule.str.len() > 20).all()),
        "the rebuilt table has a judged cell for each of the note's 24, and Valkey's 4":
            len(table) == 28 and table.verdict.notna().all(),
        "the note's 'strong' consistency fails for Redis, Valkey, DAX and read-through":
            bool((strong.verdict == "fails").all()),
        "the note's chatbot has no headroom: every cache leaves its catalog above the utilization a plan may use":
            bool((ranked["chatbot"].verdict == "rejected").all())
            and ranked["chatbot"].set_index("option").loc["valkey", "origin_load_pct"] > 95,
        "with the catalog 25 % larger, Valkey with synchronous durability comes first and per-task caches are rejected":
            roomy.option.iloc[0] == "valkey-durable" and roomy.verdict.iloc[0] == "recommended"
            and roomy.set_index("option").loc["in-process", "verdict"] == "rejected",
        "a shared cache for the chatbot holds its resident set, under a twentieth of its catalog":
            chatbot["valkey"]["resident_gb"] < chatbot["valkey"]["catalog_gb"] / 20,
        "each example workload ranks first the option its file says it should":
            {name: t.option.iloc[0] for name, t in ranked.items() if name in EXPECTED_FIRST} == EXPECTED_FIRST
            and all(t.verdict.iloc[0] == "recommended" for name, t in ranked.items() if name in EXPECTED_FIRST),
        "with its price and stock read live, the note's launch overloads the catalog whatever the cache":
            bool((ranked["launch"].verdict == "rejected").all()),
        "with every read cacheable, a cache would carry the same launch, sized by its network, not its memory":
            ranked["launch, every read cacheable"].verdict.iloc[0] == "recommended"
            and numbers["launch, every read cacheable"][ranked["launch, every read cacheable"].option.iloc[0]][
                "cluster"]["binding"] == "network",
        "every what-if chart has points for every slider position": all(len(g) and g.notna().all().all() for g in grids),
    }
