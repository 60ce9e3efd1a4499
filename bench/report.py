#!/usr/bin/env python3
"""report.py -- writes docs/BENCHMARKS.md from the JSON of a real run.

  report.py --compare DIR --cli FILE --bench FILE [--demo-wall S] \\
            --png docs/bench-fashion-mnist.png --out docs/BENCHMARKS.md

DIR holds compare.json and compare.png from bench/compare.py (make demo-compare),
--cli is the JSON of `hnswc bench` from the same demo, --bench the JSON of
bench/bench_vs_hnswlib (make bench). Every figure in the page comes from
those files or from this machine (lscpu, objdump of the peers' binaries), so
the page can never quote a number nobody measured. `make bench-docs` runs
everything and then this script.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys


# ---------------------------------------------------------------------------
# Facts about this machine and the peers' binaries
# ---------------------------------------------------------------------------

def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine_facts():
    lscpu = sh(["lscpu"])

    def field(name):
        m = re.search(rf"^{name}:\s*(.+)$", lscpu, re.M)
        return m.group(1).strip() if m else "?"

    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    os_name = "?"
    if os.path.exists("/etc/os-release"):
        with open("/etc/os-release") as f:
            m = re.search(r'^PRETTY_NAME="?([^"\n]*)', f.read(), re.M)
            os_name = m.group(1) if m else "?"
    return {
        "cpu": f"{field('Model name')} (family {field('CPU family')}, model {field('Model')})",
        "cpus": field("CPU\\(s\\)"),
        "hypervisor": field("Hypervisor vendor"),
        "mem": f"{mem_kb / 2**20:.0f} GiB",
        "os": os_name,
        "kernel": platform.release(),
        "cc": (sh(["cc", "--version"]).splitlines() or ["?"])[0],
        "cxx": (sh(["g++", "--version"]).splitlines() or ["?"])[0],
        "blas": os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3"),
    }


def binary_simd(module):
    """The widest x86 vector registers used anywhere in a Python module's
    extension binary: 'AVX-512', 'AVX/AVX2' or 'SSE only'."""
    code = f"import {module}, os; print(os.path.dirname({module}.__file__) if {module}.__file__.endswith('__init__.py') else {module}.__file__)"
    # The interpreter running this report: make bench-docs runs it in the
    # benchmark's venv, whose hnswlib and faiss are the PyPI ones measured.
    where = sh([sys.executable, "-c", code]).strip()
    if not where:
        return None, "?"
    files = [where] if where.endswith(".so") else [
        os.path.join(where, f) for f in os.listdir(where) if f.endswith(".so")]
    text = "".join(sh(["objdump", "-d", "--no-show-raw-insn", f]) for f in files)
    if not text:
        return files, "?"
    if "%zmm" in text:
        return files, "AVX-512"
    if "%ymm" in text:
        return files, "AVX/AVX2"
    return files, "SSE only (no AVX instruction in the binary)"


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------

def fnum(x, nd=0):
    return "n/a" if x is None else f"{x:,.{nd}f}"


def ratio(x):
    return "n/a" if x is None else f"{x:.2f}x"


def table(head, rows):
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---:" if i else ":---" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def compare_section(c):
    p = c["params"]
    names = [s["name"] for s in c["systems"]]
    sys_rows = [[s["name"], s["info"]["version"], f"{s['build_s']:.1f}",
                 f"{s['memory_bytes'] / 2**20:.1f}"] for s in c["systems"]]
    sweep_head = ["ef"] + [f"{n} recall@{p['k']}" for n in names] + [f"{n} QPS" for n in names]
    sweep_rows = []
    for i, ef in enumerate(p["ef"]):
        sweep_rows.append([ef] + [f"{s['sweep'][i]['recall']:.4f}" for s in c["systems"]]
                          + [fnum(s["sweep"][i]["qps"]) for s in c["systems"]])
    at_rows = [[s["name"]] + [fnum(s["qps_at_recall"][t]) for t in ("0.95", "0.99")]
               for s in c["systems"]]
    ratio_rows = [[f"hnswc / {peer}", ratio(r["0.95"]), ratio(r["0.99"])]
                  for peer, r in c["ratios"].items()]
    return (table(["system", "version", "build s", "index memory MiB"], sys_rows),
            table(sweep_head, sweep_rows),
            table(["system", "QPS at recall 0.95", "QPS at recall 0.99"], at_rows),
            table(["ratio", "at recall 0.95", "at recall 0.99"], ratio_rows))


def bench_section(b):
    hc, hl = b["systems"]
    rows = []
    for a, z in zip(hc["curve"], hl["curve"]):
        rows.append([a["ef"], f"{a['recall']:.4f}", fnum(a["qps"]), f"{z['recall']:.4f}",
                     fnum(z["qps"]), f"{a['qps'] / z['qps']:.2f}"])
    sweep = table(["ef", "hnswc recall@10", "hnswc QPS", "hnswlib recall@10", "hnswlib QPS",
                   "QPS ratio (same ef)"], rows)
    summary = table(
        ["system", "build s", "RSS growth MiB", "QPS at recall 0.95", "QPS at recall 0.99"],
        [[s["name"], f"{s['build_s']:.1f}", f"{s['rss_growth_bytes'] / 2**20:.1f}",
          fnum(s["qps_at_recall"]["0.95"]), fnum(s["qps_at_recall"]["0.99"])]
         for s in (hc, hl)])
    return sweep, summary


def cli_section(j):
    rows = [[r["ef"], f"{r['recall']:.4f}", fnum(r["qps_1thread"]), fnum(r["qps_all_threads"]),
             f"{r['latency_p50_us']:.0f}", f"{r['latency_p99_us']:.0f}"] for r in j["results"]]
    return table(["ef", "recall@10", "QPS 1 thread", f"QPS {j['params']['threads']} threads",
                  "p50 latency us", "p99 latency us"], rows)


# ---------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------

def page(c, j, b, demo_wall, png_rel, m, simd_hl, simd_fa, commit):
    p = c["params"]
    bp = b["params"]
    cmp_sys, cmp_sweep, cmp_at, cmp_ratio = compare_section(c)
    b_sweep, b_summary = bench_section(b)
    cr = c["ratios"]
    br = b["ratio_hnswc_over_hnswlib"]
    by = {s["name"]: s for s in c["systems"]}
    cm, bm = c["machine"], b["machine"]
    demo_line = (f"`make demo` took **{demo_wall:.0f} s** of wall time on this machine, from an "
                 f"empty build folder (building the library, the Python package and the CLI "
                 f"included; the Debian packages and the venv's PyPI packages were already installed)."
                 if demo_wall else "")
    hl_ver = by["hnswlib"]["info"]["version"] if "hnswlib" in by else "?"
    commit_txt = f", source `{commit}`" if commit else ""
    hl_py = by["hnswlib"]["qps_at_recall"]["0.95"] if "hnswlib" in by else None
    hl_cpp = b["systems"][1]["qps_at_recall"]["0.95"]
    fa_ver = by["faiss"]["info"]["version"] if "faiss" in by else "?"

    return f"""# Benchmarks

<!-- Generated by bench/report.py from a real run (make bench-docs); do not
     edit the figures by hand. Regenerate after any change to the search or
     build path. -->

hnswc is measured against its peers **as their users install them** on
Fashion-MNIST (60,000 base vectors of 784 dimensions, L2), with the same
graph parameters and the same call pattern for everyone. Two benchmarks,
each in one run on one machine:

* **Side by side in Python** (`make demo-compare`, `bench/compare.py`, one
  process per system): hnswc (`storage="{p.get('hnswc_storage') or 'f32'}"`), hnswlib {hl_ver} from
  `pip install hnswlib` (a source distribution: pip compiles it here with
  `-O3 -march=native`) and faiss-cpu {fa_ver} from PyPI (`IndexHNSWFlat`; its
  wheel dispatches AVX2/AVX-512 at run time), pinned in
  `bench/requirements.txt` and installed by `make bench-venv`.
  hnswc answers **{ratio(cr.get('hnswlib', {}).get('0.95'))}** as many queries
  per second as hnswlib at recall@10 = 0.95 and
  **{ratio(cr.get('hnswlib', {}).get('0.99'))}** at 0.99; against faiss
  **{ratio(cr.get('faiss', {}).get('0.95'))}** and
  **{ratio(cr.get('faiss', {}).get('0.99'))}**.
* **One C++ process** (`make bench`, `bench/bench_vs_hnswlib.cpp`): hnswc's
  f32 storage (its default) against hnswlib's headers of the release pip
  installs, compiled with `-O3 -march=native` as pip compiles them.
  hnswc/hnswlib: **{ratio(br['0.95'])}** at recall 0.95, **{ratio(br['0.99'])}**
  at 0.99.

SIMD in the peers' binaries as installed (`objdump` of their extension
modules in the benchmark's venv):

* hnswlib's module: {simd_hl};
* faiss's module: {simd_fa};

while hnswc picks its distance kernels at run time (`{by['hnswc']['info'].get('simd', '?') if 'hnswc' in by else '?'}`
here) from one portable build. hnswlib reaches {fnum(hl_py)} QPS at recall 0.95
through its Python module in section 1 and {fnum(hl_cpp)} in the C++
process of section 2 ({bp['nq']:,} queries there, one search call per query).

## Machine

| | |
|:---|:---|
| CPU | {m['cpu']}, {m['cpus']} vCPUs ({m['hypervisor']} guest) |
| Memory | {m['mem']} |
| OS | {m['os']}, Linux {m['kernel']} |
| Compilers | {m['cc']}; {m['cxx']} |
| BLAS (ground truth only) | {m['blas']} |
| Runs | `make demo` {c['date']}, `make bench` {b['date']}{commit_txt} |

The machine is shared with other jobs, which skew timings while they run.
Other processes used {100 * cm['other_load']:.0f}% of the machine's CPU capacity during
the comparison and {100 * bm['other_load']:.0f}% during `make bench` (busy CPU time in
`/proc/stat` minus the benchmark's own; 50% would be one of the two cores
busy with other work throughout). {demo_line}

## 1. Side by side in Python: hnswc, hnswlib, faiss (`make demo-compare`)

Parameters: M = {p['M']} (2M = {2 * p['M']} links on layer 0 for all three;
`IndexHNSWFlat(d, M)` follows the same convention), ef_construction =
{p['ef_construction']}, k = {p['k']}, {p['n']:,} base vectors, all {p['nq']:,}
test images as queries.

Method:

* **Build**: one add call with all vectors on {p['threads']} threads (all cores)
  (`add_items(data, ids, num_threads={p['threads']})`; faiss:
  `omp_set_num_threads({p['threads']})`, `index.add`). The build time covers creating
  the index and adding.
* **Search**: for each ef, **one batch call with all queries on one query
  thread** (`knn_query(q, k, num_threads=1)`; faiss: `omp_set_num_threads(1)`,
  `hnsw.efSearch = ef`, `index.search`), timed around the call; QPS = queries /
  seconds. One untimed warm-up call runs first. The systems' searches are
  interleaved: at each ef, each system makes its call in turn, so a burst of
  load from other jobs hits all of them alike.
* **Recall@{p['k']}**: {c['recall_definition']}. The exact ground truth
  comes from a float32 matrix product (shortlist of 4k) re-ranked with exact
  float64 distances, and is cached in `build/gt-cache` under a hash of the data.
* **Index memory**: {c['memory_method']}.
* Each system runs in its own fresh process (`multiprocessing`, spawn), so
  one library's allocator state or thread pool cannot affect the next.

{cmp_sys}

{cmp_sweep}

QPS at equal recall (log-QPS interpolated linearly in recall between the two
measured points around the target, on each system's own curve):

{cmp_at}

{cmp_ratio}

![recall@10 vs QPS, Fashion-MNIST]({png_rel})

## 2. One C++ process: hnswc vs hnswlib at -march=native (`make bench`)

`bench/bench_vs_hnswlib.cpp` links hnswc's portable static library
(`libhnswc.a`, built without `-march`; kernels chosen at run time:
{b['compile']['hnswc'].split('(SIMD: ')[-1].rstrip(')')}) and includes hnswlib's headers
(release {b['compile']['hnswlib'].split()[1]}, fetched from PyPI by `bench/fetch_hnswlib.py`). The file is compiled with `-O3 -march=native`
**for hnswlib's sake**: hnswlib picks its SIMD at compile time, so this is its
best case, as `pip install hnswlib` builds it on the machine it runs on
(here: {b['compile']['hnswlib'].split('(SIMD: ')[-1].split(')')[0]}).

Same data and parameters (M = {bp['M']}, ef_construction =
{bp['ef_construction']}, k = {bp['k']}), {bp['n']:,} base vectors, the first
{bp['nq']:,} test images as queries. Both build on {bp['build_threads']}
threads (hnswlib: `addPoint` from a pool of threads, the pattern of its own
bindings; hnswc: `hnswc_add_batch`). Search: one query at a time on one
thread (`searchKnn` / `hnswc_search`) with the same k and ef; for each ef the
passes alternate between the systems and the fastest of {bp['repeat']} counts.
The ground truth is exact (integer arithmetic on the original pixels); recall
counts ties as in section 1.

{b_sweep}

{b_summary}

hnswc / hnswlib QPS at equal recall: **{ratio(br['0.95'])}** at 0.95,
**{ratio(br['0.99'])}** at 0.99.

## 3. `hnswc bench` (from `make demo`)

The command-line tool's own benchmark, hnswc alone: {j['dataset']['n']:,} base
vectors, the first {j['dataset']['nq']:,} queries, build {j['build']['seconds']:.1f} s
on {j['params']['threads']} threads, index memory {j['build']['memory_bytes'] / 2**20:.1f}
MiB as the library reports it, kernels `{j['simd']}`.

{cli_section(j)}

## Reproduce

The raw results of this run are in [bench-results/](bench-results/)
(`compare.json`, `hnswc-bench.json`, `bench_vs_hnswlib.json`).

```sh
make demo        # installs what is missing (the pinned PyPI peers too), builds,
                 # runs hnswc bench and bench/ab.py; JSON in build/demo/
make demo-compare  # bench/compare.py (section 1); compare.json and plot
make bench       # the C++ comparison; build/bench/bench_vs_hnswlib.json,
                 # then make bench-mmap (build/bench/bench_mmap.json)
make bench-docs  # both from an empty build folder, then regenerates this page
```

Options: `build/bench-venv/bin/python bench/compare.py --help` (`--n`, `--nq`, `--M`,
`--ef-construction`, `--k`, `--ef`, `--systems`, `--repeat`, `--out`) and
`make bench BENCH_ARGS="--nq 10000 --threads 2 --ef 10,20,40"` (or the
environment variables `HNSWC_BENCH_N`, `HNSWC_BENCH_NQ`, `HNSWC_BENCH_THREADS`,
`HNSWC_BENCH_EF`). `make test-bench` is a quick smoke test of both on 2,000
vectors.

## Limits of these numbers

* Two vCPUs shared with other jobs; every figure is one run, and repeated
  runs differ. The ratios move less than the absolute QPS, since the systems
  are measured in turn at each ef, but builds run one after another and
  catch whatever else the machine was doing at the time.
* Multi-threaded builds are not deterministic (the insertion order varies),
  so two builds of the same system differ slightly: recall at the same ef
  moves by a few thousandths between runs, more with the 1,000 queries of
  section 2 than with the 10,000 of section 1. The ratios at equal recall
  take each system's own curve, so they absorb that.
* One data set (Fashion-MNIST, 784 dimensions, uint8 pixels as float32), one
  metric (L2) and one parameter set (M = 16, ef_construction = 200).
* Index memory in section 1 is RSS growth around the build, which includes
  the allocator's slack; hnswc's own count (`hnswc_info.memory_bytes`) is in
  section 3.
"""


def keep_removal_section(path, text):
    """The removal section (bench/report_remove.py, its own run) survives a
    regeneration of the rest of the page."""
    begin, end = "<!-- bench-remove:begin -->", "<!-- bench-remove:end -->"
    try:
        with open(path) as f:
            old = f.read()
    except OSError:
        return text
    if begin not in old or end not in old:
        return text
    block = begin + old.split(begin, 1)[1].split(end, 1)[0] + end
    return text.rstrip("\n") + "\n\n" + block + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--compare", required=True, help="folder with compare.json and compare.png")
    ap.add_argument("--cli", required=True, help="JSON of hnswc bench")
    ap.add_argument("--bench", required=True, help="JSON of bench_vs_hnswlib")
    ap.add_argument("--demo-wall", type=float, default=0, help="seconds make demo took")
    ap.add_argument("--commit", default="", help="git describe of the tree that ran")
    ap.add_argument("--png", default="docs/bench-fashion-mnist.png")
    ap.add_argument("--out", default="docs/BENCHMARKS.md")
    a = ap.parse_args()

    with open(os.path.join(a.compare, "compare.json")) as f:
        c = json.load(f)
    with open(a.cli) as f:
        j = json.load(f)
    with open(a.bench) as f:
        b = json.load(f)
    _, simd_hl = binary_simd("hnswlib")
    _, simd_fa = binary_simd("faiss")
    shutil.copyfile(os.path.join(a.compare, "compare.png"), a.png)
    # The raw results go next to the page, so every figure can be traced.
    raw = os.path.join(os.path.dirname(a.out) or ".", "bench-results")
    os.makedirs(raw, exist_ok=True)
    for src, name in ((os.path.join(a.compare, "compare.json"), "compare.json"),
                      (a.cli, "hnswc-bench.json"), (a.bench, "bench_vs_hnswlib.json")):
        shutil.copyfile(src, os.path.join(raw, name))
    png_rel = os.path.relpath(a.png, os.path.dirname(os.path.abspath(a.out)) or ".")
    text = page(c, j, b, a.demo_wall, png_rel, machine_facts(), simd_hl, simd_fa, a.commit)
    # The SQ8 measurements of bench/ab.py (issue 7) and the mapped-index
    # measurements of bench/bench_mmap.c (issue 12) are kept, by hand-run
    # tool output with their raw JSON, in bench-results/sq8.md and mmap.md:
    # carried over at the top of the page on every regeneration.
    extra = ""
    for name in ("sq8.md", "mmap.md"):
        path = os.path.join(raw, name)
        if os.path.exists(path):
            with open(path) as f:
                extra += "\n" + f.read()
    if extra:
        cut = text.index("-->\n") + 4 if "-->\n" in text else 0
        text = text[:cut] + extra + "\n" + text[cut:]
    text = keep_removal_section(a.out, text)
    with open(a.out, "w") as f:
        f.write(text)
    print(f"report: wrote {a.out}, {a.png} and {raw}/ ({datetime.date.today()})")


if __name__ == "__main__":
    main()
