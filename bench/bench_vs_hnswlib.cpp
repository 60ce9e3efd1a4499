/*
 * bench_vs_hnswlib.cpp -- hnswc against hnswlib in one process (`make bench`).
 *
 * Loads Fashion-MNIST, computes the exact 10 nearest neighbours of every
 * query, builds an hnswc index and an hnswlib index with the same M and
 * ef_construction on the same number of threads, then sweeps ef and reports,
 * for each system, recall@k and single-thread queries per second, plus build
 * time and the QPS ratio hnswc/hnswlib at equal recall (0.95 and 0.99,
 * interpolated on each curve).
 *
 * Fairness. hnswlib chooses its SIMD kernels at compile time, so this file is
 * compiled with -O3 -march=native: hnswlib's best case, the way
 * `pip install hnswlib` builds it on the machine it runs on. hnswc is linked
 * from the portable libhnswc.a (no -march; kernels picked at run time), the
 * library as we ship it. Both search one query at a time on one thread, with
 * the same k and ef; hnswlib through searchKnn(), hnswc through hnswc_search().
 * The ef passes are interleaved (hnswc, hnswlib, hnswc, ...) and the fastest
 * of --repeat passes counts, so a burst of load on a shared machine hits both.
 *
 * Recall counts a returned id as a hit if its exact distance is not larger
 * than the exact k-th nearest distance (ties count, as in ann-benchmarks).
 * The ground truth is computed on the original uint8 pixels in integers, so
 * it is exact.
 *
 * Usage: bench_vs_hnswlib [--base F] [--queries F] [--n N] [--nq NQ]
 *          [--threads T] [--ef 10,16,...] [--M 16] [--ef-construction 200]
 *          [--k 10] [--repeat 3] [--out build/bench/bench_vs_hnswlib.json]
 * Environment defaults (overridden by options): HNSWC_BENCH_N, HNSWC_BENCH_NQ,
 * HNSWC_BENCH_THREADS, HNSWC_BENCH_EF.
 */
#include <hnswc.h>
#include <hnswlib/hnswlib.h>

/* The hnswlib release whose headers were compiled in: bench.mk fetches the
 * one pip installs (bench/fetch_hnswlib.py) and passes its version. */
#ifndef HNSWLIB_RELEASE
#define HNSWLIB_RELEASE "unknown (system headers)"
#endif
#include <zlib.h>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

/* ------------------------------------------------------------------------
 * Small utilities
 * ------------------------------------------------------------------------ */

[[noreturn]] void die(const std::string &msg)
{
    std::fprintf(stderr, "bench_vs_hnswlib: %s\n", msg.c_str());
    std::exit(1);
}

double now_s()
{
    using clock = std::chrono::steady_clock;
    return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

/* Resident set size of this process in bytes (/proc/self/statm), 0 if unknown. */
uint64_t rss_bytes()
{
    std::ifstream f("/proc/self/statm");
    uint64_t size = 0, resident = 0;
    if (!(f >> size >> resident))
        return 0;
    return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

/* ------------------------------------------------------------------------
 * How busy OTHER processes kept the machine: they skew every timing. The
 * machine's busy CPU time (/proc/stat) minus this process's own (getrusage)
 * over the run, as a share of the machine's capacity: 0 on a quiet machine,
 * 0.5 when one of two cores was busy with something else throughout.
 * ------------------------------------------------------------------------ */

struct CpuMark {
    double busy = 0, total = 0, own = 0; /* seconds */
};

CpuMark cpu_mark()
{
    CpuMark m;
    std::ifstream f("/proc/stat");
    std::string cpu;
    unsigned long long v[8] = {0};
    f >> cpu;
    for (auto &x : v)
        f >> x;
    double hz = double(sysconf(_SC_CLK_TCK));
    m.busy = double(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / hz; /* user nice system irq softirq steal */
    m.total = m.busy + double(v[3] + v[4]) / hz;                  /* + idle iowait */
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        m.own = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    return m;
}

double other_load(const CpuMark &a, const CpuMark &b)
{
    if (b.total <= a.total)
        return 0;
    return std::max(0.0, ((b.busy - a.busy) - (b.own - a.own)) / (b.total - a.total));
}

std::string cpu_model()
{
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("model name", 0) == 0) {
            size_t colon = line.find(':');
            if (colon != std::string::npos)
                return line.substr(line.find_first_not_of(" \t", colon + 1));
        }
    }
    return "unknown CPU";
}

/* hnswlib's SIMD level, as its headers chose it from this compilation's flags. */
const char *hnswlib_simd()
{
#if defined(USE_AVX512)
    return "avx512";
#elif defined(USE_AVX)
    return "avx";
#elif defined(USE_SSE)
    return "sse";
#else
    return "scalar";
#endif
}

/* Runs fn(i) for i in [0, n) on `threads` threads, handing out indexes one by
 * one from a shared counter (the ParallelFor pattern of hnswlib's bindings). */
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
    std::string base = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
    std::string queries = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    size_t n = 0;   /* 0 = all */
    size_t nq = 1000;
    unsigned threads = 0; /* 0 = all cores */
    std::vector<size_t> ef = {10, 16, 24, 32, 48, 64, 96, 128, 192, 256};
    size_t M = 16;
    size_t ef_construction = 200;
    size_t k = 10;
    unsigned repeat = 3;
    hnswc_storage storage = HNSWC_STORAGE_F32; /* --storage f32|sq8 */
    std::string out = "build/bench/bench_vs_hnswlib.json";
};

size_t parse_size(const std::string &what, const std::string &s)
{
    char *end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno != 0 || s[0] == '-')
        die(what + ": not a non-negative integer: '" + s + "'");
    return static_cast<size_t>(v);
}

std::vector<size_t> parse_list(const std::string &what, const std::string &s)
{
    std::vector<size_t> out;
    size_t start = 0;
    while (start <= s.size()) {
        size_t comma = s.find(',', start);
        if (comma == std::string::npos)
            comma = s.size();
        size_t v = parse_size(what, s.substr(start, comma - start));
        if (v == 0)
            die(what + ": values must be positive");
        out.push_back(v);
        start = comma + 1;
    }
    return out;
}

void usage()
{
    std::puts(
        "usage: bench_vs_hnswlib [--base F] [--queries F] [--n N] [--nq NQ] [--threads T]\n"
        "         [--ef 10,16,...] [--M 16] [--ef-construction 200] [--k 10]\n"
        "         [--repeat 3] [--storage f32|sq8] [--out FILE.json]\n"
        "Environment defaults: HNSWC_BENCH_N, HNSWC_BENCH_NQ, HNSWC_BENCH_THREADS,\n"
        "HNSWC_BENCH_EF. --n 0 means all base vectors; --threads 0 all cores.");
}

Options parse_options(int argc, char **argv)
{
    Options o;
    if (const char *e = std::getenv("HNSWC_BENCH_N"); e && *e)
        o.n = parse_size("HNSWC_BENCH_N", e);
    if (const char *e = std::getenv("HNSWC_BENCH_NQ"); e && *e)
        o.nq = parse_size("HNSWC_BENCH_NQ", e);
    if (const char *e = std::getenv("HNSWC_BENCH_THREADS"); e && *e)
        o.threads = static_cast<unsigned>(parse_size("HNSWC_BENCH_THREADS", e));
    if (const char *e = std::getenv("HNSWC_BENCH_EF"); e && *e)
        o.ef = parse_list("HNSWC_BENCH_EF", e);

    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            usage();
            std::exit(0);
        }
        if (i + 1 >= argc)
            die("option " + a + " needs a value (see --help)");
        std::string v = argv[++i];
        if (a == "--base") o.base = v;
        else if (a == "--queries") o.queries = v;
        else if (a == "--n") o.n = parse_size(a, v);
        else if (a == "--nq") o.nq = parse_size(a, v);
        else if (a == "--threads") o.threads = static_cast<unsigned>(parse_size(a, v));
        else if (a == "--ef") o.ef = parse_list(a, v);
        else if (a == "--M") o.M = parse_size(a, v);
        else if (a == "--ef-construction") o.ef_construction = parse_size(a, v);
        else if (a == "--k") o.k = parse_size(a, v);
        else if (a == "--storage" && (v == "f32" || v == "sq8"))
            o.storage = v == "sq8" ? HNSWC_STORAGE_SQ8 : HNSWC_STORAGE_F32;
        else if (a == "--repeat") o.repeat = static_cast<unsigned>(parse_size(a, v));
        else if (a == "--out") o.out = v;
        else die("unknown option " + a + " (see --help)");
    }
    if (o.threads == 0)
        o.threads = std::max(1u, std::thread::hardware_concurrency());
    if (o.k == 0 || o.M < 2 || o.ef_construction == 0 || o.repeat == 0 || o.nq == 0)
        die("k, nq and repeat must be positive and M at least 2");
    return o;
}

/* ------------------------------------------------------------------------
 * Data: idx3 files (gzip or plain), kept as uint8 for the exact ground truth
 * and as float32 for the indexes.
 * ------------------------------------------------------------------------ */

struct Dataset {
    size_t n = 0, dim = 0;
    std::vector<uint8_t> bytes;  /* n * dim */
    std::vector<float> floats;   /* n * dim */
};

uint32_t be32(const unsigned char *p)
{
    return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

/* Reads an idx file of uint8 items into a Dataset, at most `limit` items (0 = all). */
Dataset read_idx(const std::string &path, size_t limit)
{
    gzFile f = gzopen(path.c_str(), "rb"); /* reads plain files too */
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
    Dataset ds;
    ds.n = dims[0];
    ds.dim = 1;
    for (size_t i = 1; i < dims.size(); i++)
        ds.dim *= dims[i];
    if (limit && limit < ds.n)
        ds.n = limit;
    ds.bytes.resize(ds.n * ds.dim);
    size_t done = 0;
    while (done < ds.bytes.size()) {
        unsigned chunk = static_cast<unsigned>(std::min<size_t>(ds.bytes.size() - done, 1u << 30));
        int got = gzread(f, ds.bytes.data() + done, chunk);
        if (got <= 0)
            die(path + ": truncated data");
        done += static_cast<size_t>(got);
    }
    gzclose(f);
    ds.floats.assign(ds.bytes.begin(), ds.bytes.end());
    return ds;
}

/* ------------------------------------------------------------------------
 * Exact ground truth, in integers
 * ------------------------------------------------------------------------ */

/* Squared L2 distance of two uint8 vectors, exact (784 * 255^2 fits easily). */
int64_t sqdist_u8(const uint8_t *a, const uint8_t *b, size_t dim)
{
    int32_t s = 0; /* dim * 65025 < 2^31 for dim <= 33025, checked by the caller */
    for (size_t j = 0; j < dim; j++) {
        int32_t d = int32_t(a[j]) - int32_t(b[j]);
        s += d * d;
    }
    return s;
}

struct GroundTruth {
    std::vector<uint32_t> ids;  /* nq * k, closest first (ties by id)  */
    std::vector<int64_t> kth;   /* exact distance of the k-th neighbour */
};

GroundTruth ground_truth(const Dataset &base, const Dataset &q, size_t k, unsigned threads)
{
    if (base.dim > 33000)
        die("dimension too large for the int32 ground truth");
    GroundTruth gt;
    gt.ids.resize(q.n * k);
    gt.kth.resize(q.n);
    parallel_for(q.n, threads, [&](size_t qi) {
        /* Sorted top-k by (distance, id); insertion is cheap for small k. */
        std::vector<std::pair<int64_t, uint32_t>> top;
        top.reserve(k + 1);
        const uint8_t *qv = &q.bytes[qi * q.dim];
        for (size_t i = 0; i < base.n; i++) {
            int64_t d = sqdist_u8(qv, &base.bytes[i * base.dim], base.dim);
            if (top.size() == k && d >= top.back().first)
                continue;
            auto item = std::make_pair(d, uint32_t(i));
            top.insert(std::upper_bound(top.begin(), top.end(), item), item);
            if (top.size() > k)
                top.pop_back();
        }
        for (size_t j = 0; j < k; j++)
            gt.ids[qi * k + j] = top[j].second;
        gt.kth[qi] = top[k - 1].first;
    });
    return gt;
}

/* Recall@k of found labels (nq * k; labels >= n are "none"), ties count. */
double recall(const std::vector<uint64_t> &found, const Dataset &base, const Dataset &q,
              const GroundTruth &gt, size_t k)
{
    size_t hits = 0;
    for (size_t qi = 0; qi < q.n; qi++) {
        for (size_t j = 0; j < k; j++) {
            uint64_t id = found[qi * k + j];
            if (id >= base.n)
                continue;
            int64_t d = sqdist_u8(&q.bytes[qi * q.dim], &base.bytes[id * base.dim], base.dim);
            hits += d <= gt.kth[qi];
        }
    }
    return double(hits) / double(q.n * k);
}

/* ------------------------------------------------------------------------
 * The two systems behind one small interface
 * ------------------------------------------------------------------------ */

struct System {
    virtual ~System() = default;
    virtual const char *name() const = 0;
    virtual void build(const Dataset &base, unsigned threads) = 0;
    /* Searches every query one at a time on this thread; labels: nq * k. */
    virtual void search_all(const Dataset &q, size_t k, size_t ef, std::vector<uint64_t> &labels) = 0;
    virtual uint64_t reported_memory() const { return 0; }
};

struct Hnswc final : System {
    hnswc_index *ix = nullptr;
    size_t M, efc;
    hnswc_storage storage;
    Hnswc(size_t M_, size_t efc_, hnswc_storage st) : M(M_), efc(efc_), storage(st) {}
    ~Hnswc() override { hnswc_free(ix); }
    const char *name() const override { return "hnswc"; }

    void build(const Dataset &base, unsigned threads) override
    {
        hnswc_options o{};
        o.dim = static_cast<uint32_t>(base.dim);
        o.metric = HNSWC_METRIC_L2;
        o.M = static_cast<uint32_t>(M);
        o.ef_construction = static_cast<uint32_t>(efc);
        o.capacity = base.n;
        o.storage = storage;
        check(hnswc_create(&o, &ix), "hnswc_create");
        std::vector<uint64_t> labels(base.n);
        for (size_t i = 0; i < base.n; i++)
            labels[i] = i;
        size_t added = 0;
        check(hnswc_add_batch(ix, base.floats.data(), labels.data(), base.n, 0, threads, &added),
              "hnswc_add_batch");
        if (added != base.n)
            die("hnswc_add_batch added " + std::to_string(added) + " of " + std::to_string(base.n));
    }

    void search_all(const Dataset &q, size_t k, size_t ef, std::vector<uint64_t> &labels) override
    {
        for (size_t qi = 0; qi < q.n; qi++) {
            size_t found = 0;
            uint64_t *out = &labels[qi * k];
            check(hnswc_search(ix, &q.floats[qi * q.dim], k, ef, nullptr, nullptr, out, nullptr,
                               &found),
                  "hnswc_search");
            for (size_t j = found; j < k; j++)
                out[j] = UINT64_MAX;
        }
    }

    uint64_t reported_memory() const override
    {
        hnswc_info info{};
        return hnswc_get_info(ix, &info) == HNSWC_OK ? info.memory_bytes : 0;
    }

    static void check(hnswc_status s, const char *what)
    {
        if (s != HNSWC_OK)
            die(std::string(what) + ": " + hnswc_status_string(s) + ": " + hnswc_errmsg(nullptr));
    }
};

struct Hnswlib final : System {
    size_t M, efc;
    hnswlib::L2Space *space = nullptr;
    hnswlib::HierarchicalNSW<float> *alg = nullptr;
    Hnswlib(size_t M_, size_t efc_) : M(M_), efc(efc_) {}
    ~Hnswlib() override
    {
        delete alg;
        delete space;
    }
    const char *name() const override { return "hnswlib"; }

    void build(const Dataset &base, unsigned threads) override
    {
        space = new hnswlib::L2Space(base.dim);
        alg = new hnswlib::HierarchicalNSW<float>(space, base.n, M, efc, 100);
        parallel_for(base.n, threads,
                     [&](size_t i) { alg->addPoint(&base.floats[i * base.dim], i); });
    }

    void search_all(const Dataset &q, size_t k, size_t ef, std::vector<uint64_t> &labels) override
    {
        alg->setEf(ef);
        for (size_t qi = 0; qi < q.n; qi++) {
            auto res = alg->searchKnn(&q.floats[qi * q.dim], k);
            uint64_t *out = &labels[qi * k];
            for (size_t j = res.size(); j < k; j++)
                out[j] = UINT64_MAX;
            /* The queue pops the farthest first: fill from the back. */
            for (size_t j = res.size(); j-- > 0; res.pop())
                out[j] = res.top().second;
        }
    }
};

/* ------------------------------------------------------------------------
 * Curves and ratios
 * ------------------------------------------------------------------------ */

struct Point {
    size_t ef;
    double recall, qps;
};

struct Result {
    std::string name;
    double build_s = 0;
    uint64_t rss_growth = 0, reported_memory = 0;
    std::vector<Point> curve;
};

/* QPS at a target recall: log(QPS) interpolated linearly in recall between
 * the two points around the target on the curve's Pareto frontier. NAN when
 * the curve does not span the target (no extrapolation). When points below
 * the target were measured but all are dominated by the frontier's first
 * point above it (noise), that point's QPS: the fastest setting measured
 * that reaches the target (bench/compare.py's qps_at_recall, same rule). */
double qps_at_recall(std::vector<Point> pts, double target)
{
    std::sort(pts.begin(), pts.end(), [](const Point &a, const Point &b) {
        return a.recall != b.recall ? a.recall > b.recall : a.qps > b.qps;
    });
    std::vector<Point> front; /* by recall descending, QPS strictly rising */
    for (const Point &p : pts)
        if (front.empty() || p.qps > front.back().qps)
            front.push_back(p);
    std::reverse(front.begin(), front.end());
    for (size_t i = 0; i + 1 < front.size(); i++) {
        const Point &a = front[i], &b = front[i + 1];
        if (a.recall <= target && target <= b.recall) {
            if (b.recall == a.recall)
                return std::max(a.qps, b.qps);
            double t = (target - a.recall) / (b.recall - a.recall);
            return std::exp(std::log(a.qps) + t * (std::log(b.qps) - std::log(a.qps)));
        }
    }
    if (!front.empty() && front.back().recall == target)
        return front.back().qps;
    if (!front.empty() && front.front().recall > target)
        for (const Point &p : pts)
            if (p.recall < target)
                return front.front().qps;
    return NAN;
}

/* ------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------ */

std::string json_num(double v)
{
    if (!std::isfinite(v))
        return "null";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

std::string json_str(const std::string &s)
{
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\')
            out += '\\';
        if (static_cast<unsigned char>(c) >= 0x20)
            out += c;
    }
    return out + "\"";
}

void mkdirs_for(const std::string &file)
{
    for (size_t p = file.find('/', 1); p != std::string::npos; p = file.find('/', p + 1))
        mkdir(file.substr(0, p).c_str(), 0777); /* EEXIST is fine; fopen reports the rest */
}

void write_json(const std::string &path, const Options &o, const Dataset &base, const Dataset &q,
                const std::vector<Result> &res, const double targets[2], const std::string &date,
                double gt_s, double other)
{
    mkdirs_for(path);
    FILE *f = std::fopen(path.c_str(), "w");
    if (!f)
        die(path + ": cannot write");
    std::fprintf(f, "{\n  \"tool\": \"bench/bench_vs_hnswlib\",\n  \"date\": %s,\n",
                 json_str(date).c_str());
    std::fprintf(f,
                 "  \"machine\": {\"cpu\": %s, \"cores\": %u, \"other_load\": %s},\n"
                 "  \"compile\": {\"hnswlib\": \"hnswlib " HNSWLIB_RELEASE " -O3 -march=native (SIMD: %s), header-only\", "
                 "\"hnswc\": \"portable libhnswc.a, kernels chosen at run time (SIMD: %s)\"},\n",
                 json_str(cpu_model()).c_str(), std::thread::hardware_concurrency(),
                 json_num(other).c_str(), hnswlib_simd(),
                 hnswc_simd_name());
    std::fprintf(f,
                 "  \"params\": {\"dataset\": \"Fashion-MNIST\", \"n\": %zu, \"nq\": %zu, "
                 "\"dim\": %zu, \"metric\": \"l2\", \"M\": %zu, \"ef_construction\": %zu, "
                 "\"k\": %zu, \"build_threads\": %u, \"search_threads\": 1, \"repeat\": %u},\n",
                 base.n, q.n, base.dim, o.M, o.ef_construction, o.k, o.threads, o.repeat);
    std::fprintf(f, "  \"ground_truth_s\": %s,\n  \"systems\": [\n", json_num(gt_s).c_str());
    for (size_t s = 0; s < res.size(); s++) {
        const Result &r = res[s];
        std::fprintf(f,
                     "    {\"name\": %s, \"build_s\": %s, \"rss_growth_bytes\": %llu, "
                     "\"reported_memory_bytes\": %llu,\n",
                     json_str(r.name).c_str(), json_num(r.build_s).c_str(),
                     static_cast<unsigned long long>(r.rss_growth),
                     static_cast<unsigned long long>(r.reported_memory));
        std::fprintf(f, "     \"qps_at_recall\": {\"0.95\": %s, \"0.99\": %s},\n     \"curve\": [",
                     json_num(qps_at_recall(r.curve, targets[0])).c_str(),
                     json_num(qps_at_recall(r.curve, targets[1])).c_str());
        for (size_t i = 0; i < r.curve.size(); i++)
            std::fprintf(f, "%s{\"ef\": %zu, \"recall\": %s, \"qps\": %s}", i ? ", " : "",
                         r.curve[i].ef, json_num(r.curve[i].recall).c_str(),
                         json_num(r.curve[i].qps).c_str());
        std::fprintf(f, "]}%s\n", s + 1 < res.size() ? "," : "");
    }
    std::fprintf(f, "  ],\n  \"ratio_hnswc_over_hnswlib\": {");
    for (int t = 0; t < 2; t++)
        std::fprintf(f, "%s\"%.2f\": %s", t ? ", " : "", targets[t],
                     json_num(qps_at_recall(res[0].curve, targets[t]) /
                              qps_at_recall(res[1].curve, targets[t]))
                         .c_str());
    std::fprintf(f, "}\n}\n");
    if (std::fclose(f) != 0)
        die(path + ": write failed");
}

} /* namespace */

/* ------------------------------------------------------------------------
 * Main
 * ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    Options o = parse_options(argc, argv);
    CpuMark cpu_start = cpu_mark();
    char date[64];
    std::time_t t = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&t));

    Dataset base = read_idx(o.base, o.n);
    Dataset q = read_idx(o.queries, o.nq);
    if (base.dim != q.dim)
        die("base and queries differ in dimension");
    if (o.k > base.n)
        die("k is larger than the number of base vectors");

    std::printf("hnswc %s vs hnswlib %s (header-only, the release pip installs), one process\n",
                hnswc_version(), HNSWLIB_RELEASE);
    std::printf("machine: %s, %u cores; %s\n", cpu_model().c_str(),
                std::thread::hardware_concurrency(), date);
    std::printf("compile: hnswlib -O3 -march=native (its best case; SIMD %s); hnswc from the "
                "portable libhnswc.a (run-time SIMD %s)\n",
                hnswlib_simd(), hnswc_simd_name());
    std::printf("data: Fashion-MNIST %zu base x %zu dim, %zu queries, L2; M=%zu "
                "ef_construction=%zu k=%zu; build on %u threads, search 1 thread, "
                "fastest of %u passes\n",
                base.n, base.dim, q.n, o.M, o.ef_construction, o.k, o.threads, o.repeat);
    std::fflush(stdout);

    double t0 = now_s();
    GroundTruth gt = ground_truth(base, q, o.k, o.threads);
    double gt_s = now_s() - t0;
    std::printf("ground truth (exact, integer): %.1f s\n", gt_s);

    Hnswc hc(o.M, o.ef_construction, o.storage);
    Hnswlib hl(o.M, o.ef_construction);
    System *systems[2] = {&hc, &hl};
    std::vector<Result> res(2);
    for (int s = 0; s < 2; s++) {
        res[s].name = systems[s]->name();
        uint64_t rss0 = rss_bytes();
        t0 = now_s();
        systems[s]->build(base, o.threads);
        res[s].build_s = now_s() - t0;
        uint64_t rss1 = rss_bytes();
        res[s].rss_growth = rss1 > rss0 ? rss1 - rss0 : 0;
        res[s].reported_memory = systems[s]->reported_memory();
        std::printf("build %-8s %6.1f s, RSS +%.1f MiB\n", res[s].name.c_str(), res[s].build_s,
                    double(res[s].rss_growth) / (1 << 20));
        std::fflush(stdout);
    }

    /* Warm-up, untimed: one pass of each at the smallest ef. */
    std::vector<uint64_t> labels(q.n * o.k);
    for (System *s : systems)
        s->search_all(q, o.k, o.ef.front(), labels);

    std::printf("\n%5s  %14s %10s  %14s %10s  %8s\n", "ef", "hnswc recall", "hnswc QPS",
                "hnswlib recall", "hnswlib QPS", "QPS ratio");
    for (size_t ef : o.ef) {
        double best[2] = {INFINITY, INFINITY}, rec[2] = {0, 0};
        for (unsigned rep = 0; rep < o.repeat; rep++) {
            for (int s = 0; s < 2; s++) {
                t0 = now_s();
                systems[s]->search_all(q, o.k, ef, labels);
                best[s] = std::min(best[s], now_s() - t0);
                if (rep == 0)
                    rec[s] = recall(labels, base, q, gt, o.k);
            }
        }
        for (int s = 0; s < 2; s++)
            res[s].curve.push_back({ef, rec[s], double(q.n) / best[s]});
        std::printf("%5zu  %14.4f %10.0f  %14.4f %10.0f  %8.2f\n", ef, rec[0],
                    res[0].curve.back().qps, rec[1], res[1].curve.back().qps,
                    res[0].curve.back().qps / res[1].curve.back().qps);
        std::fflush(stdout);
    }

    const double targets[2] = {0.95, 0.99};
    std::printf("\n%-8s %8s %12s %12s %14s %14s\n", "system", "build s", "RSS MiB",
                "reported MiB", "QPS @0.95", "QPS @0.99");
    for (const Result &r : res) {
        char reported[32] = "-";
        if (r.reported_memory)
            std::snprintf(reported, sizeof reported, "%.1f", double(r.reported_memory) / (1 << 20));
        std::printf("%-8s %8.1f %12.1f %12s %14.0f %14.0f\n", r.name.c_str(), r.build_s,
                    double(r.rss_growth) / (1 << 20), reported,
                    qps_at_recall(r.curve, targets[0]), qps_at_recall(r.curve, targets[1]));
    }
    for (double target : targets)
        std::printf("hnswc/hnswlib QPS at recall %.2f: %.2fx\n", target,
                    qps_at_recall(res[0].curve, target) / qps_at_recall(res[1].curve, target));
    std::printf("(nan: a curve does not reach that recall within the ef sweep)\n");

    double other = other_load(cpu_start, cpu_mark());
    std::printf("other processes used %.0f%% of the machine's CPU capacity during the run\n",
                100 * other);
    write_json(o.out, o, base, q, res, targets, date, gt_s, other);
    std::printf("wrote %s\n", o.out.c_str());
    return 0;
}
