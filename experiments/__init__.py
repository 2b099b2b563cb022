"""The Response Cache Decision Book's experiments: real servers, workloads, models and charts.

The package has one folder per layer; a module imports only its own layer and those its layer may
see (``tests/test_layout.py`` checks it), and ``models`` sees only the core, so every model runs
without a server:

* core (flat): `paths`, `errors`, `params`, `seed` (the note's figures), `rules` (verdict rules), `ledger`,
  `measure`, `findings` (timing findings and their margins), `results` (the tables probes declare), `charts`;
* `lab` — child processes that never outlive their owner (`lab.spawner`, `lab.processes`), a network lab of
  namespaces with silent partitions and capped links (`lab.netlab`), the
  servers of either Redis-protocol engine and memcached (`lab.servers`, `lab.topologies`), endpoints
  and the chapter's `Lab` session, worker pools and load generators;
* `caches` — adapters, the cache-aside and read-through patterns, the key design, the near cache,
  the durable invalidation log replayed after a failover, the stand-in origins, the degraded modes;
* `models` — pure maths and simulators (`models.peer` hands streams to libCacheSim, the peer simulator);
* `probes` — experiments on real servers; each declares the tables and records it returns (`results.Table`);
* `decide` — the reader's front door (``python -m experiments.decide``, ``make decide``): a workload file
  checked, the options ranked with the book's models, a JSON and an offline page; the summary calls it;
* `chapters` — one module per notebook, with its name: results (a container naming each probe table it
  holds), headline numbers, findings, ledger rows and summary-table row; no chapter imports another but the
  summary;
* `bookkit` — the runner (``python -m experiments.bookkit``), the myst-nb plugin, the environment page.

Each chapter and the modules it uses:

* ``economics.ipynb`` — `chapters.economics`; `probes.hitvalue`, `models.hitcost`, `caches.adapters`,
  `caches.keydesign`.
* ``redis.ipynb`` — `chapters.redis`; `probes.structures`, `probes.invalidation`, `probes.failover`,
  `probes.scaleout`, `probes.evictions`, `lab.topologies`, `caches.adapters`, `caches.invalidationlog`.
* ``valkey.ipynb`` — `chapters.valkey`; `probes.parity` (the Redis chapter's experiments on both engines),
  `probes.itembytes`, `probes.clientcache`, `models.pricing` (the dated price table), `lab.loadgen`,
  `caches.nearcache`.
* ``memcached.ipynb`` — `chapters.memcached`; `lab.loadgen`, `probes.invalidation`, `models.pollmodel`,
  `probes.coldnode`, `probes.hashing`, `probes.listupdates`, `probes.evictions`, `caches.adapters`.
* ``dax.ipynb`` — `chapters.dax`; `models.daxmodel`, `models.daxsim`, `models.daxstale`,
  `models.cachemodel`, `models.lrusim`, `probes.tlscost`.
* ``in-process-lru.ipynb`` — `chapters.in_process_lru`; `models.taskcache`, `models.taskstale`,
  `models.deployment`, `models.cachemodel`, `models.lrusim`, `probes.gcpause`, `caches.nearcache`.
* ``traffic.ipynb`` — `chapters.traffic`; `models.traffic` (the key families' stream), `models.policies`
  (libCacheSim's policies, pools, the in-process libraries), `models.peer`, `models.lrusim`,
  `probes.evictionpolicy` (Redis's allkeys-lru and allkeys-lfu).
* ``no-cache.ipynb`` — `chapters.no_cache`; `models.flashsale`, `probes.collapse`, `models.fanout`,
  `models.costmodel`, `models.safetocache`.
* ``read-through.ipynb`` — `chapters.read_through`; `caches.readthrough`, `probes.stampede`,
  `models.herd`, `probes.staleset`.
* ``network.ipynb`` — `chapters.network`; `lab.netlab` (the network lab), `lab.topologies` (groups placed in
  it), `probes.partition` (clients across a partition, a flapping memcached node, a capped link),
  `probes.splitbrain` (Sentinel and Cluster with a primary cut off), `probes.degraded` with
  `caches.degraded` (the degraded modes) and `models.degraded` (the fleet's catalog calls),
  `models.extrapolate` (short detection settings carried to the defaults), `caches.origin`.
* ``summary.ipynb`` — `chapters.summary`; `models.whatif`, `decide` (the front door, on the example
  workloads: `decide.workload`, `decide.engine` with `models.decision`'s ranking and `models.pricing`), and
  every chapter module's ``summary_row``.

Import `experiments.charts` before drawing: it enables the book's theme and renderer.
"""
