/*
 * bench_remove.cpp -- true removal, compaction and range search on
 * Fashion-MNIST (`make bench-remove`; part of `make bench`).
 *
 * Scenarios (each reported in the JSON and on stdout):
 *
 *   random   build 60,000; remove a random half (hnswc_remove_batch) and,
 *            on a second copy, one at a time (hnswc_remove); compare recall@k
 *            at ef with a fresh build of the remaining half; time the removal
 *            against adding the same half; hnswc repaired vs hnswlib
 *            tombstoned (markDelete of the same half): recall and
 *            single-thread QPS over an ef sweep.
 *   class    remove one whole class (the train label file; a clustered 10%)
 *            and compare with a fresh build of the rest.
 *   churn    start from a random half; 10 rounds of removing 10% of the live
 *            elements and adding as many new ones (from the other half); per
 *            round recall, memory, slots, unreachable nodes; at the end a
 *            fresh build of the final set.
 *   range    hnswc_search_range at a radius holding ~10-100 neighbours:
 *            recall of the exact set (from an exact scan) for several ef.
 *
 * Timings on a shared machine are noisy: the removal-vs-add comparison is
 * reported both in wall time and in this process's CPU time (getrusage),
 * which other processes do not inflate; QPS comparisons interleave the two
 * systems per ef and keep the fastest of --repeat passes.
 *
 * The ground truth is exact: squared L2 on the uint8 pixels, in integers,
 * over exactly the rows the index holds.
 *
 * Usage: bench_remove [--data DIR] [--nq 2000] [--threads 0] [--k 10] [--ef 64]
 *          [--M 16] [--ef-construction 200] [--repeat 3]
 *          [--scenarios random,class,churn,range] [--class 0] [--rounds 10]
 *          [--out build/bench/bench_remove.json]
 * --threads 0 means all cores.
 */
#include <hnswc.h>
#include <hnswlib/hnswlib.h>
#include <zlib.h>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

/* ------------------------------------------------------------------------
 * Utilities
 * ------------------------------------------------------------------------ */

[[noreturn]] void die(const std::string &msg)
{
    std::fprintf(stderr, "bench_remove: %s\n", msg.c_str());
    std::exit(1);
}

void check(hnswc_status st, const char *what)
{
    if (st != HNSWC_OK)
        die(std::string(what) + ": " + hnswc_errmsg(nullptr));
}

double now_s()
{
    using clock = std::chrono::steady_clock;
    return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

/* CPU seconds used by this process (all threads). */
double cpu_s()
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct Timer {
    double wall0 = now_s(), cpu0 = cpu_s();
    double wall() const { return now_s() - wall0; }
    double cpu() const { return cpu_s() - cpu0; }
};

void parallel_for(size_t n, unsigned threads, const std::function<void(size_t)> &fn)
{
    std::atomic<size_t> next{0};
    auto worker = [&]() {
        for (size_t i; (i = next.fetch_add(1)) < n;)
            fn(i);
    };
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; t++)
        pool.emplace_back(worker);
    worker();
    for (auto &th : pool)
        th.join();
}

/* ------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------ */

struct Options {
    std::string data = "/usr/share/datasets/fashion-mnist";
    size_t nq = 2000;
    unsigned threads = 0;
    size_t k = 10;
    size_t ef = 64;
    std::vector<size_t> sweep = {10, 16, 24, 32, 48, 64, 96, 128};
    size_t M = 16;
    size_t efc = 200;
    unsigned repeat = 3;
    std::vector<std::string> scenarios = {"random", "class", "churn", "range"};
    unsigned cls = 0;
    unsigned rounds = 10;
    size_t n = 0; /* base vectors, 0 = all */
    bool quick = false; /* random: no one-by-one copy, no tombstone comparison */
    std::string out = "build/bench/bench_remove.json";
};

size_t parse_size(const std::string &what, const std::string &s)
{
    char *end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno != 0 || s[0] == '-')
        die(what + ": not a non-negative integer: '" + s + "'");
    return size_t(v);
}

std::vector<std::string> split(const std::string &s)
{
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');)
        if (!item.empty())
            out.push_back(item);
    return out;
}

Options parse_options(int argc, char **argv)
{
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            std::puts("usage: bench_remove [--data DIR] [--nq N] [--threads T] [--k 10] [--ef 64]\n"
                      "         [--sweep 10,16,...] [--M 16] [--ef-construction 200] [--repeat 3]\n"
                      "         [--scenarios random,class,churn,range] [--class 0] [--rounds 10]\n"
                      "         [--n N] [--quick 0|1] [--out FILE.json]");
            std::exit(0);
        }
        if (i + 1 >= argc)
            die("option " + a + " needs a value");
        std::string v = argv[++i];
        if (a == "--data") o.data = v;
        else if (a == "--nq") o.nq = parse_size(a, v);
        else if (a == "--threads") o.threads = unsigned(parse_size(a, v));
        else if (a == "--k") o.k = parse_size(a, v);
        else if (a == "--ef") o.ef = parse_size(a, v);
        else if (a == "--sweep") {
            o.sweep.clear();
            for (auto &x : split(v))
                o.sweep.push_back(parse_size(a, x));
        }
        else if (a == "--M") o.M = parse_size(a, v);
        else if (a == "--ef-construction") o.efc = parse_size(a, v);
        else if (a == "--repeat") o.repeat = unsigned(parse_size(a, v));
        else if (a == "--scenarios") o.scenarios = split(v);
        else if (a == "--class") o.cls = unsigned(parse_size(a, v));
        else if (a == "--rounds") o.rounds = unsigned(parse_size(a, v));
        else if (a == "--n") o.n = parse_size(a, v);
        else if (a == "--quick") o.quick = parse_size(a, v) != 0;
        else if (a == "--out") o.out = v;
        else die("unknown option " + a);
    }
    if (o.threads == 0)
        o.threads = std::max(1u, std::thread::hardware_concurrency());
    if (o.k == 0 || o.nq == 0 || o.repeat == 0 || o.M < 2)
        die("k, nq, repeat must be positive, M at least 2");
    return o;
}

/* ------------------------------------------------------------------------
 * Data
 * ------------------------------------------------------------------------ */

uint32_t be32(const unsigned char *p)
{
    return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

/* An idx file of uint8 items (gzip or plain): n items of dim bytes. */
std::vector<uint8_t> read_idx(const std::string &path, size_t &n, size_t &dim, size_t limit)
{
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f)
        die(path + ": cannot open (install dataset-fashion-mnist: make deps)");
    unsigned char head[4];
    if (gzread(f, head, 4) != 4 || head[0] || head[1] || head[2] != 0x08 || head[3] == 0)
        die(path + ": not a uint8 idx file");
    std::vector<uint32_t> dims(head[3]);
    for (auto &d : dims) {
        unsigned char b[4];
        if (gzread(f, b, 4) != 4)
            die(path + ": truncated header");
        d = be32(b);
    }
    n = dims[0];
    dim = 1;
    for (size_t i = 1; i < dims.size(); i++)
        dim *= dims[i];
    if (limit && limit < n)
        n = limit;
    std::vector<uint8_t> bytes(n * dim);
    size_t done = 0;
    while (done < bytes.size()) {
        int got = gzread(f, bytes.data() + done, unsigned(std::min<size_t>(bytes.size() - done, 1u << 30)));
        if (got <= 0)
            die(path + ": truncated data");
        done += size_t(got);
    }
    gzclose(f);
    return bytes;
}

struct Data {
    size_t n = 0, nq = 0, dim = 0;
    std::vector<uint8_t> base, queries, classes; /* classes: one per base row */
    std::vector<float> basef, queriesf;
};

Data load(const Options &o)
{
    Data d;
    size_t dq = 0, nl = 0, one = 0;
    d.base = read_idx(o.data + "/train-images-idx3-ubyte.gz", d.n, d.dim, o.n);
    d.queries = read_idx(o.data + "/t10k-images-idx3-ubyte.gz", d.nq, dq, o.nq);
    d.classes = read_idx(o.data + "/train-labels-idx1-ubyte.gz", nl, one, o.n);
    if (dq != d.dim || nl != d.n || one != 1)
        die("data files do not match");
    d.basef.assign(d.base.begin(), d.base.end());
    d.queriesf.assign(d.queries.begin(), d.queries.end());
    return d;
}

int32_t sqdist_u8(const uint8_t *a, const uint8_t *b, size_t dim)
{
    int32_t s = 0;
    for (size_t j = 0; j < dim; j++) {
        int32_t x = int32_t(a[j]) - int32_t(b[j]);
        s += x * x;
    }
    return s;
}

/* ------------------------------------------------------------------------
 * Exact ground truth over a set of rows (labels are row numbers)
 * ------------------------------------------------------------------------ */

struct Truth {
    size_t k;
    std::vector<int32_t> kth; /* per query: exact distance of the k-th neighbour */
};

Truth truth(const Data &d, const std::vector<uint32_t> &rows, size_t k, unsigned threads)
{
    Truth t{k, std::vector<int32_t>(d.nq)};
    parallel_for(d.nq, threads, [&](size_t qi) {
        std::vector<int32_t> top; /* max-heap of the k best */
        const uint8_t *q = &d.queries[qi * d.dim];
        for (uint32_t r : rows) {
            int32_t dist = sqdist_u8(q, &d.base[size_t(r) * d.dim], d.dim);
            if (top.size() < k) {
                top.push_back(dist);
                std::push_heap(top.begin(), top.end());
            } else if (dist < top.front()) {
                std::pop_heap(top.begin(), top.end());
                top.back() = dist;
                std::push_heap(top.begin(), top.end());
            }
        }
        t.kth[qi] = top.front();
    });
    return t;
}

/* recall@k: a returned row counts if it is in the set and its exact distance
 * is within the k-th true one (ties count). */
double recall(const Data &d, const Truth &t, const std::vector<uint64_t> &found,
              const std::vector<uint8_t> &in_set)
{
    size_t hits = 0;
    for (size_t qi = 0; qi < d.nq; qi++)
        for (size_t j = 0; j < t.k; j++) {
            uint64_t r = found[qi * t.k + j];
            if (r >= d.n || !in_set[r])
                continue;
            hits += sqdist_u8(&d.queries[qi * d.dim], &d.base[r * d.dim], d.dim) <= t.kth[qi];
        }
    return double(hits) / double(d.nq * t.k);
}

/* ------------------------------------------------------------------------
 * hnswc helpers
 * ------------------------------------------------------------------------ */

struct Index {
    hnswc_index *ix = nullptr;
    Index() = default;
    explicit Index(hnswc_index *p) : ix(p) {}
    Index(const Index &) = delete;
    Index &operator=(const Index &) = delete;
    Index(Index &&o) noexcept : ix(o.ix) { o.ix = nullptr; }
    ~Index() { hnswc_free(ix); }
};

Index create(const Data &d, const Options &o)
{
    hnswc_options opt{};
    opt.dim = uint32_t(d.dim);
    opt.metric = HNSWC_METRIC_L2;
    opt.M = uint32_t(o.M);
    opt.ef_construction = uint32_t(o.efc);
    opt.capacity = d.n;
    hnswc_index *ix;
    check(hnswc_create(&opt, &ix), "hnswc_create");
    return Index(ix);
}

void add_rows(Index &ix, const Data &d, const std::vector<uint32_t> &rows, unsigned threads)
{
    std::vector<float> v(rows.size() * d.dim);
    std::vector<uint64_t> labels(rows.size());
    for (size_t i = 0; i < rows.size(); i++) {
        std::copy_n(&d.basef[size_t(rows[i]) * d.dim], d.dim, &v[i * d.dim]);
        labels[i] = rows[i];
    }
    check(hnswc_add_batch(ix.ix, v.data(), labels.data(), rows.size(), 0, threads, nullptr),
          "hnswc_add_batch");
}

Index copy_of(const Index &ix)
{
    void *buf;
    size_t size;
    check(hnswc_serialize(ix.ix, &buf, &size), "hnswc_serialize");
    hnswc_index *out;
    check(hnswc_deserialize(buf, size, &out), "hnswc_deserialize");
    hnswc_buffer_free(buf);
    return Index(out);
}

std::vector<uint64_t> search(const Index &ix, const Data &d, size_t k, size_t ef, unsigned threads)
{
    std::vector<uint64_t> labels(d.nq * k);
    std::vector<size_t> found(d.nq);
    check(hnswc_search_batch(ix.ix, d.queriesf.data(), d.nq, k, ef, nullptr, nullptr, threads,
                             labels.data(), nullptr, found.data()),
          "hnswc_search_batch");
    return labels;
}

hnswc_graph_stats stats(const Index &ix)
{
    hnswc_graph_stats s;
    check(hnswc_get_graph_stats(ix.ix, &s), "hnswc_get_graph_stats");
    return s;
}

hnswc_info info(const Index &ix)
{
    hnswc_info i;
    check(hnswc_get_info(ix.ix, &i), "hnswc_get_info");
    return i;
}

size_t file_size(const Index &ix)
{
    void *buf;
    size_t size;
    check(hnswc_serialize(ix.ix, &buf, &size), "hnswc_serialize");
    hnswc_buffer_free(buf);
    return size;
}

std::vector<uint8_t> set_of(const Data &d, const std::vector<uint32_t> &rows)
{
    std::vector<uint8_t> s(d.n, 0);
    for (uint32_t r : rows)
        s[r] = 1;
    return s;
}

/* ------------------------------------------------------------------------
 * JSON output (flat: scenario -> key -> number)
 * ------------------------------------------------------------------------ */

struct Json {
    std::vector<std::pair<std::string, std::string>> items;
    void num(const std::string &k, double v)
    {
        char b[64];
        std::snprintf(b, sizeof b, "%.6g", v);
        items.emplace_back(k, b);
    }
    void str(const std::string &k, const std::string &v) { items.emplace_back(k, "\"" + v + "\""); }
    void raw(const std::string &k, const std::string &v) { items.emplace_back(k, v); }
    std::string dump(int indent = 2) const
    {
        std::string pad(size_t(indent), ' '), s = "{\n";
        for (size_t i = 0; i < items.size(); i++)
            s += pad + "\"" + items[i].first + "\": " + items[i].second +
                 (i + 1 < items.size() ? ",\n" : "\n");
        return s + std::string(size_t(indent - 2), ' ') + "}";
    }
};

/* ------------------------------------------------------------------------
 * Scenario: remove a random half
 * ------------------------------------------------------------------------ */

struct Hnswlib {
    hnswlib::L2Space space;
    std::unique_ptr<hnswlib::HierarchicalNSW<float>> h;
    Hnswlib(const Data &d, const Options &o) : space(d.dim)
    {
        h.reset(new hnswlib::HierarchicalNSW<float>(&space, d.n, o.M, o.efc, 100));
    }
};

/* Runs fn (all queries, one thread) and keeps the fastest time in best. */
void timed_pass(const std::function<void()> &fn, double &best)
{
    Timer t;
    fn();
    best = std::min(best, t.wall());
}

Json scenario_random(const Data &d, const Options &o)
{
    Json j;
    std::mt19937_64 rng(42);
    std::vector<uint32_t> perm(d.n);
    std::iota(perm.begin(), perm.end(), 0u);
    std::shuffle(perm.begin(), perm.end(), rng);
    size_t half = d.n / 2;
    std::vector<uint32_t> keep(perm.begin(), perm.begin() + long(half));
    std::vector<uint32_t> gone(perm.begin() + long(half), perm.end());
    std::vector<uint8_t> keep_set = set_of(d, keep);

    std::printf("== random: build %zu (M %zu, efc %zu, %u threads), remove a random %zu\n", d.n,
                o.M, o.efc, o.threads, gone.size());
    Index full = create(d, o);
    Timer tk;
    add_rows(full, d, keep, o.threads);
    double add_keep = tk.wall();
    Timer tg;
    add_rows(full, d, gone, o.threads);
    double add_gone_wall = tg.wall(), add_gone_cpu = tg.cpu();
    std::printf("   adding the half to be removed: %.2f s wall, %.2f s CPU\n", add_gone_wall,
                add_gone_cpu);
    j.num("add_first_half_s", add_keep);
    j.num("add_removed_half_wall_s", add_gone_wall);
    j.num("add_removed_half_cpu_s", add_gone_cpu);
    j.num("full_memory_bytes", double(info(full).memory_bytes));
    j.num("full_file_bytes", double(file_size(full)));

    /* one at a time, on one thread, on a copy */
    if (!o.quick) {
        Index one = copy_of(full);
        Timer t;
        for (uint32_t r : gone)
            check(hnswc_remove(one.ix, r), "hnswc_remove");
        double w = t.wall(), c = t.cpu();
        std::printf("   hnswc_remove one at a time (1 thread): %.2f s wall, %.2f s CPU\n", w, c);
        j.num("remove_one_by_one_wall_s", w);
        j.num("remove_one_by_one_cpu_s", c);
        Truth tr = truth(d, keep, o.k, o.threads);
        double r1 = recall(d, tr, search(one, d, o.k, o.ef, o.threads), keep_set);
        j.num("recall_one_by_one", r1);
        std::printf("   recall@%zu at ef %zu after one-by-one removal: %.4f\n", o.k, o.ef, r1);
    }

    Index removed = copy_of(full);
    std::vector<uint64_t> gone_labels(gone.begin(), gone.end());
    Timer t;
    check(hnswc_remove_batch(removed.ix, gone_labels.data(), gone_labels.size(), o.threads),
          "hnswc_remove_batch");
    double rw = t.wall(), rc = t.cpu();
    std::printf("   hnswc_remove_batch (%u threads): %.2f s wall, %.2f s CPU (adding them: %.2f s "
                "wall, %.2f s CPU)\n", o.threads, rw, rc, add_gone_wall, add_gone_cpu);
    j.num("remove_batch_wall_s", rw);
    j.num("remove_batch_cpu_s", rc);

    Index fresh = create(d, o);
    Timer tf;
    add_rows(fresh, d, keep, o.threads);
    j.num("fresh_build_s", tf.wall());

    Truth tr = truth(d, keep, o.k, o.threads);
    double r_removed = recall(d, tr, search(removed, d, o.k, o.ef, o.threads), keep_set);
    double r_fresh = recall(d, tr, search(fresh, d, o.k, o.ef, o.threads), keep_set);
    hnswc_graph_stats sr = stats(removed), sf = stats(fresh);
    std::printf("   recall@%zu at ef %zu: removed %.4f, fresh build %.4f (diff %+.4f)\n", o.k, o.ef,
                r_removed, r_fresh, r_removed - r_fresh);
    std::printf("   unreachable: removed %llu, fresh %llu; mean layer-0 degree: removed %.1f, "
                "fresh %.1f\n", (unsigned long long)sr.unreachable,
                (unsigned long long)sf.unreachable, sr.degree0_mean, sf.degree0_mean);
    j.num("recall_removed", r_removed);
    j.num("recall_fresh", r_fresh);
    j.num("unreachable_removed", double(sr.unreachable));
    j.num("unreachable_fresh", double(sf.unreachable));
    j.num("degree0_removed", sr.degree0_mean);
    j.num("degree0_fresh", sf.degree0_mean);
    hnswc_info ir = info(removed);
    j.num("removed_memory_bytes", double(ir.memory_bytes));
    j.num("removed_slots", double(ir.removed_slots));
    j.num("removed_file_bytes", double(file_size(removed)));

    if (o.quick) {
        for (size_t ef : o.sweep) {
            double a = recall(d, tr, search(removed, d, o.k, ef, o.threads), keep_set);
            double b = recall(d, tr, search(fresh, d, o.k, ef, o.threads), keep_set);
            std::printf("   ef %4zu: removed %.4f fresh %.4f\n", ef, a, b);
        }
        return j;
    }
    /* hnswc repaired vs hnswlib tombstoned (and hnswc tombstoned), same half */
    Hnswlib hl(d, o);
    parallel_for(d.n, o.threads, [&](size_t i) { hl.h->addPoint(&d.basef[i * d.dim], i); });
    for (uint32_t r : gone)
        hl.h->markDelete(r);
    Index tomb = copy_of(full);
    for (uint32_t r : gone)
        check(hnswc_mark_deleted(tomb.ix, r), "hnswc_mark_deleted");

    std::string rows = "[";
    std::printf("   ef   hnswc-removed (recall, QPS)   hnswc-tombstoned   hnswlib-tombstoned\n");
    for (size_t ef : o.sweep) {
        std::vector<uint64_t> a(d.nq * o.k), b(d.nq * o.k), c(d.nq * o.k);
        double ba = 1e30, bb = 1e30, bc = 1e30;
        hl.h->setEf(ef);
        for (unsigned rep = 0; rep < o.repeat; rep++) {
            timed_pass([&] {
                size_t f;
                for (size_t qi = 0; qi < d.nq; qi++)
                    hnswc_search(removed.ix, &d.queriesf[qi * d.dim], o.k, ef, nullptr, nullptr,
                                 &a[qi * o.k], nullptr, &f);
            }, ba);
            timed_pass([&] {
                size_t f;
                for (size_t qi = 0; qi < d.nq; qi++)
                    hnswc_search(tomb.ix, &d.queriesf[qi * d.dim], o.k, ef, nullptr, nullptr,
                                 &b[qi * o.k], nullptr, &f);
            }, bb);
            timed_pass([&] {
                for (size_t qi = 0; qi < d.nq; qi++) {
                    auto res = hl.h->searchKnn(&d.queriesf[qi * d.dim], o.k);
                    for (size_t r = o.k; r-- > 0;) {
                        c[qi * o.k + r] = res.empty() ? UINT64_MAX : res.top().second;
                        if (!res.empty())
                            res.pop();
                    }
                }
            }, bc);
        }
        double ra = recall(d, tr, a, keep_set), rb = recall(d, tr, b, keep_set),
               rcl = recall(d, tr, c, keep_set);
        double qa = double(d.nq) / ba, qb = double(d.nq) / bb, qc = double(d.nq) / bc;
        std::printf("  %4zu   %.4f %8.0f          %.4f %8.0f    %.4f %8.0f\n", ef, ra, qa, rb, qb,
                    rcl, qc);
        char buf[256];
        std::snprintf(buf, sizeof buf,
                      "%s{\"ef\": %zu, \"removed\": [%.5f, %.1f], \"tombstoned\": [%.5f, %.1f], "
                      "\"hnswlib_tombstoned\": [%.5f, %.1f]}",
                      rows.size() > 1 ? ", " : "", ef, ra, qa, rb, qb, rcl, qc);
        rows += buf;
    }
    j.raw("sweep", rows + "]");
    return j;
}

/* ------------------------------------------------------------------------
 * Scenario: remove a whole class
 * ------------------------------------------------------------------------ */

Json scenario_class(const Data &d, const Options &o)
{
    Json j;
    std::vector<uint32_t> all(d.n), keep;
    std::iota(all.begin(), all.end(), 0u);
    std::vector<uint64_t> gone;
    for (uint32_t r : all) {
        if (d.classes[r] == o.cls)
            gone.push_back(r);
        else
            keep.push_back(r);
    }
    std::printf("== class: build %zu, remove class %u (%zu elements)\n", d.n, o.cls, gone.size());
    Index ix = create(d, o);
    add_rows(ix, d, all, o.threads);
    Timer t;
    check(hnswc_remove_batch(ix.ix, gone.data(), gone.size(), o.threads), "hnswc_remove_batch");
    j.num("class", o.cls);
    j.num("removed", double(gone.size()));
    j.num("remove_wall_s", t.wall());
    Index fresh = create(d, o);
    add_rows(fresh, d, keep, o.threads);
    Truth tr = truth(d, keep, o.k, o.threads);
    std::vector<uint8_t> keep_set = set_of(d, keep);
    double rr = recall(d, tr, search(ix, d, o.k, o.ef, o.threads), keep_set);
    double rf = recall(d, tr, search(fresh, d, o.k, o.ef, o.threads), keep_set);
    hnswc_graph_stats sr = stats(ix), sf = stats(fresh);
    std::printf("   recall@%zu at ef %zu: removed %.4f, fresh build %.4f (diff %+.4f); "
                "unreachable %llu vs %llu\n", o.k, o.ef, rr, rf, rr - rf,
                (unsigned long long)sr.unreachable, (unsigned long long)sf.unreachable);
    j.num("recall_removed", rr);
    j.num("recall_fresh", rf);
    j.num("unreachable_removed", double(sr.unreachable));
    j.num("unreachable_fresh", double(sf.unreachable));
    return j;
}

/* ------------------------------------------------------------------------
 * Scenario: churn
 * ------------------------------------------------------------------------ */

Json scenario_churn(const Data &d, const Options &o)
{
    Json j;
    std::mt19937_64 rng(7);
    std::vector<uint32_t> perm(d.n);
    std::iota(perm.begin(), perm.end(), 0u);
    std::shuffle(perm.begin(), perm.end(), rng);
    size_t base = d.n / 2, step = base / 10;
    std::vector<uint32_t> live(perm.begin(), perm.begin() + long(base));
    std::vector<uint32_t> pool(perm.begin() + long(base), perm.end());
    std::printf("== churn: %zu live, %u rounds of removing %zu and adding %zu new\n", base,
                o.rounds, step, step);
    Index ix = create(d, o);
    add_rows(ix, d, live, o.threads);
    hnswc_info i0 = info(ix);
    hnswc_graph_stats s0 = stats(ix);
    std::printf("   round  memory MB  slots  unreachable  recall\n");
    std::printf("   %5u  %9.1f  %5llu  %11llu       -\n", 0u, double(i0.memory_bytes) / 1e6,
                (unsigned long long)(i0.count + i0.removed_slots),
                (unsigned long long)s0.unreachable);
    std::string rows = "[";
    size_t next = 0;
    for (unsigned round = 1; round <= o.rounds && next + step <= pool.size(); round++) {
        std::shuffle(live.begin(), live.end(), rng);
        std::vector<uint64_t> gone(live.end() - long(step), live.end());
        live.resize(live.size() - step);
        check(hnswc_remove_batch(ix.ix, gone.data(), gone.size(), o.threads), "hnswc_remove_batch");
        std::vector<uint32_t> fresh_rows(pool.begin() + long(next), pool.begin() + long(next + step));
        next += step;
        add_rows(ix, d, fresh_rows, o.threads);
        live.insert(live.end(), fresh_rows.begin(), fresh_rows.end());
        hnswc_info in = info(ix);
        hnswc_graph_stats sn = stats(ix);
        Truth tr = truth(d, live, o.k, o.threads);
        double r = recall(d, tr, search(ix, d, o.k, o.ef, o.threads), set_of(d, live));
        uint64_t slots = in.count + in.removed_slots;
        std::printf("   %5u  %9.1f  %5llu  %11llu  %.4f\n", round, double(in.memory_bytes) / 1e6,
                    (unsigned long long)slots, (unsigned long long)sn.unreachable, r);
        char buf[200];
        std::snprintf(buf, sizeof buf,
                      "%s{\"round\": %u, \"memory_bytes\": %llu, \"slots\": %llu, "
                      "\"unreachable\": %llu, \"recall\": %.5f}",
                      rows.size() > 1 ? ", " : "", round, (unsigned long long)in.memory_bytes,
                      (unsigned long long)slots, (unsigned long long)sn.unreachable, r);
        rows += buf;
    }
    j.raw("rounds", rows + "]");
    j.num("memory_bytes_start", double(i0.memory_bytes));
    Index fresh = create(d, o);
    add_rows(fresh, d, live, o.threads);
    Truth tr = truth(d, live, o.k, o.threads);
    std::vector<uint8_t> live_set = set_of(d, live);
    double rr = recall(d, tr, search(ix, d, o.k, o.ef, o.threads), live_set);
    double rf = recall(d, tr, search(fresh, d, o.k, o.ef, o.threads), live_set);
    hnswc_graph_stats sr = stats(ix), sf = stats(fresh);
    std::printf("   final recall@%zu at ef %zu: churned %.4f, fresh build %.4f (diff %+.4f); "
                "unreachable %llu vs %llu\n", o.k, o.ef, rr, rf, rr - rf,
                (unsigned long long)sr.unreachable, (unsigned long long)sf.unreachable);
    j.num("recall_churned", rr);
    j.num("recall_fresh", rf);
    j.num("unreachable_churned", double(sr.unreachable));
    j.num("unreachable_fresh", double(sf.unreachable));
    return j;
}

/* ------------------------------------------------------------------------
 * Scenario: range search
 * ------------------------------------------------------------------------ */

Json scenario_range(const Data &d, const Options &o)
{
    Json j;
    std::vector<uint32_t> all(d.n);
    std::iota(all.begin(), all.end(), 0u);
    std::printf("== range: build %zu; per query a radius holding 10, 25, 50 or 100 neighbours\n",
                d.n);
    Index ix = create(d, o);
    add_rows(ix, d, all, o.threads);

    /* per query: the exact distances, a radius between the k-th and the
     * (k+1)-th (moved to a wider gap if those two nearly tie, so float and
     * integer distances agree on every member) and the exact set's size */
    const size_t ks[4] = {10, 25, 50, 100};
    std::vector<float> radius(d.nq);
    std::vector<size_t> want(d.nq);
    std::vector<int32_t> kth(d.nq);
    parallel_for(d.nq, o.threads, [&](size_t qi) {
        std::vector<int32_t> dist(d.n);
        for (size_t r = 0; r < d.n; r++)
            dist[r] = sqdist_u8(&d.queries[qi * d.dim], &d.base[r * d.dim], d.dim);
        std::sort(dist.begin(), dist.end());
        size_t k = ks[qi % 4];
        while (k + 1 < d.n && double(dist[k] - dist[k - 1]) < 1e-3 * double(dist[k]) + 16)
            k++;
        want[qi] = k;
        kth[qi] = dist[k - 1];
        radius[qi] = float((double(dist[k - 1]) + double(dist[k])) / 2);
    });
    std::string rows = "[";
    std::printf("   ef     recall  exact sets  false  QPS (1 thread)\n");
    hnswc_range_result res{};
    std::vector<size_t> efs = {16, 32, 64, 128, 256, 512};
    for (size_t ef : efs) {
        size_t hits = 0, total = 0, exact = 0, wrong = 0;
        double best = 1e30;
        for (unsigned rep = 0; rep < o.repeat; rep++) {
            hits = total = exact = wrong = 0;
            Timer t;
            for (size_t qi = 0; qi < d.nq; qi++) {
                check(hnswc_search_range(ix.ix, &d.queriesf[qi * d.dim], radius[qi], ef, nullptr,
                                         nullptr, &res),
                      "hnswc_search_range");
                size_t h = 0;
                for (size_t i = 0; i < res.count; i++) {
                    int32_t dist = sqdist_u8(&d.queries[qi * d.dim], &d.base[res.labels[i] * d.dim],
                                             d.dim);
                    if (dist <= kth[qi])
                        h++;
                    else
                        wrong++;
                }
                hits += h;
                total += want[qi];
                exact += h == want[qi] && res.count == want[qi];
            }
            best = std::min(best, t.wall());
        }
        double r = double(hits) / double(total);
        std::printf("   %4zu   %.5f  %5zu/%-5zu %5zu  %8.0f\n", ef, r, exact, d.nq, wrong,
                    double(d.nq) / best);
        char buf[200];
        std::snprintf(buf, sizeof buf,
                      "%s{\"ef\": %zu, \"recall\": %.6f, \"exact_sets\": %zu, "
                      "\"false_results\": %zu, \"qps\": %.1f}",
                      rows.size() > 1 ? ", " : "", ef, r, exact, wrong, double(d.nq) / best);
        rows += buf;
    }
    hnswc_range_result_free(&res);
    size_t sum = 0;
    for (size_t w : want)
        sum += w;
    j.num("mean_ball", double(sum) / double(d.nq));
    j.raw("sweep", rows + "]");
    return j;
}

} // namespace

int main(int argc, char **argv)
{
    Options o = parse_options(argc, argv);
    std::setvbuf(stdout, nullptr, _IOLBF, 0); /* progress shows when piped */
    Data d = load(o);
    std::printf("bench_remove: Fashion-MNIST %zu x %zu, %zu queries, k %zu, ef %zu, %u threads, "
                "simd %s\n", d.n, d.dim, d.nq, o.k, o.ef, o.threads, hnswc_simd_name());
    Json all;
    all.num("n", double(d.n));
    all.num("nq", double(d.nq));
    all.num("k", double(o.k));
    all.num("ef", double(o.ef));
    all.num("threads", o.threads);
    all.num("M", double(o.M));
    all.num("ef_construction", double(o.efc));
    for (const std::string &s : o.scenarios) {
        if (s == "random") all.raw("random", scenario_random(d, o).dump(4));
        else if (s == "class") all.raw("class", scenario_class(d, o).dump(4));
        else if (s == "churn") all.raw("churn", scenario_churn(d, o).dump(4));
        else if (s == "range") all.raw("range", scenario_range(d, o).dump(4));
        else die("unknown scenario " + s);
    }
    std::ofstream f(o.out);
    f << all.dump() << "\n";
    if (!f)
        die("cannot write " + o.out);
    std::printf("bench_remove: wrote %s\n", o.out.c_str());
    return 0;
}
