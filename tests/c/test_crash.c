/*
 * test_crash.c -- saves that die, disks that fill up, and the temporary
 * files a dead save leaves behind (issue 13, defect 4).
 *
 *  - kill -9 at random points of a save: a child process saves index B over
 *    the file of index A and is killed after a random delay drawn from the
 *    measured duration of a save. Every time, the file loads and is byte
 *    for byte A or B (so it answers exactly as one of them); both outcomes
 *    and kills in the middle of the write (a temporary file left) must
 *    occur, or the test proves nothing. Temporary files never pile up:
 *    after every kill at most the killed save's own is there (each save
 *    removes those of dead saves before it), and the next save removes it.
 *  - The cleanup takes only what is ours and stale: with many threads and a
 *    second process saving to the same path at once, no save fails (a
 *    cleaner never removes a live saver's file); files of other targets,
 *    of other owners, with other name shapes, links, directories, a file a
 *    live process holds locked and a brand-new unlocked one are left alone.
 *  - A full disk (a 256 KiB tmpfs, when the test may mount one: root and a
 *    kernel that allows it; otherwise skipped, saying why -- the injected
 *    write failures of test_faults.c run everywhere): the save fails with
 *    HNSWC_ERR_IO, the previous file is intact and loads, no temporary file
 *    stays, and the space is free again.
 */
#define _GNU_SOURCE /* flock, mount */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { DIM = 32, K = 10, NQ = 20 };

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static hnswc_index *make_index(size_t n, uint64_t seed) {
    tu_rng r = tu_rng_make(seed);
    float *v = tu_random_vectors(&r, n, DIM, -1.f, 1.f);
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 8, 40, seed, 0);
    tu_add_rows(ix, v, n, DIM, 1);
    free(v);
    return ix;
}

/*
 * Temporary files of target `name` in dir ("name.tmp.XXXXXX"): how many,
 * and how many of them are 0600 -- left by a save killed in the instant
 * between creating its file and locking it, which the cleanup leaves alone
 * for a minute (src/persist.c). With age_s, those are made that much older.
 */
static size_t count_temps_aging(const char *dir, const char *name, size_t *young, int age_s) {
    static char names[512][256];
    size_t n = tu_dir_entries(dir, names, 512), t = 0, y = 0;
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (strncmp(names[i], name, len) != 0 || strncmp(names[i] + len, ".tmp.", 5) != 0)
            continue;
        t++;
        char *p = tu_path(dir, names[i]);
        struct stat st;
        if (lstat(p, &st) == 0 && (st.st_mode & 0777) == 0600) {
            y++;
            if (age_s) {
                struct timeval tv[2] = {{st.st_mtime - age_s, 0}, {st.st_mtime - age_s, 0}};
                assert_int_equal(utimes(p, tv), 0);
            }
        }
        free(p);
    }
    if (young)
        *young = y;
    return t;
}

static size_t count_temps(const char *dir, const char *name) {
    return count_temps_aging(dir, name, NULL, 0);
}

/* ------------------------------------------------------------------------
 * kill -9 during saves
 * ------------------------------------------------------------------------ */

/*
 * A child process saves ix to path; kill_after >= 0 kills it (SIGKILL) that
 * many seconds after it signals it is about to save, else it runs to the
 * end. Returns the seconds from the signal to its exit.
 */
static double save_in_child(const hnswc_index *ix, const char *path, double kill_after) {
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        if (write(ready[1], "x", 1) != 1)
            _exit(2);
        _exit(hnswc_save(ix, path) == HNSWC_OK ? 0 : 1);
    }
    close(ready[1]);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    double t0 = now_s();
    if (kill_after >= 0) {
        struct timespec ts = {(time_t)kill_after,
                              (long)((kill_after - (double)(time_t)kill_after) * 1e9)};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (kill_after < 0)
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return now_s() - t0;
}

static void test_kill_during_save(void **s) {
    (void)s;
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "idx.hnswc");
    size_t n = tu_scaled(6000, 2000);
    hnswc_index *a = make_index(n, 1), *b = make_index(n + n / 4, 2);
    size_t sa, sb;
    unsigned char *ba = tu_serialized(a, &sa), *bb = tu_serialized(b, &sb);
    tu_rng r = tu_rng_make(5);
    float *q = tu_random_vectors(&r, NQ, DIM, -1.f, 1.f);
    uint64_t want_a[NQ * K], want_b[NQ * K], got[NQ * K];
    size_t found[NQ];
    tu_ok(hnswc_search_batch(a, q, NQ, K, 50, NULL, NULL, 1, want_a, NULL, found));
    tu_ok(hnswc_search_batch(b, q, NQ, K, 50, NULL, NULL, 1, want_b, NULL, found));

    /* how long a child's save of B takes (fork, copy-on-write and all), from
     * its signal to its exit: the kills are aimed inside that window */
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        tu_write_file(path, ba, sa);
        double t = save_in_child(b, path, -1);
        best = t < best ? t : best;
    }
    /*
     * At least 40 kills, and on until both outcomes and kills in the middle
     * of writing have all been seen (at most 400): the kill points are
     * drawn up to `window` after the save starts, 1.6 times its measured
     * duration at first, and the window widens (or narrows) by half every
     * 10 kills that all land before (or after) the rename -- the machine's
     * load changes how long a save takes, and the test must not depend on it.
     */
    double window = best * 1.6;
    size_t trials = 0, saw_a = 0, saw_b = 0, mid_write = 0, b_at = 0, a_at = 0, young_max = 0;
    for (size_t t = 0; t < 400 && (t < 40 || !saw_a || !saw_b || mid_write < 5); t++, trials++) {
        tu_write_file(path, ba, sa); /* the previous file: A */
        save_in_child(b, path, window * tu_uniform(&r));

        hnswc_index *back = NULL;
        tu_ok(hnswc_load(path, &back));
        size_t sz;
        unsigned char *bytes = tu_serialized(back, &sz);
        bool is_a = sz == sa && memcmp(bytes, ba, sa) == 0;
        bool is_b = sz == sb && memcmp(bytes, bb, sb) == 0;
        if (!is_a && !is_b)
            fail_msg("trial %zu: the file after kill -9 is neither the old nor the new index", t);
        tu_ok(hnswc_search_batch(back, q, NQ, K, 50, NULL, NULL, 1, got, NULL, found));
        assert_memory_equal(got, is_a ? want_a : want_b, sizeof got);
        saw_a += is_a;
        saw_b += is_b;
        free(bytes);
        hnswc_free(back);
        /* leftovers never pile up: each save removes those of the saves
         * before it, so at most the killed save's own remains -- plus those
         * killed before they could lock, for their first minute */
        size_t young, left = count_temps_aging(dir, "idx.hnswc", &young, 0);
        if (left - young > 1)
            fail_msg("trial %zu: %zu temporary files have piled up", t, left);
        mid_write += left > 0;
        young_max = young > young_max ? young : young_max;
        b_at = is_b ? t : b_at;
        a_at = is_a ? t : a_at;
        if (t - b_at >= 10 && t % 10 == 9)
            window *= 1.5;
        else if (t - a_at >= 10 && t % 10 == 9)
            window /= 1.5;
    }
    print_message("kill -9 during %zu saves (a save takes %.1f ms): old file %zu times, new "
                  "%zu times; a temporary file was left after %zu of them, never more than one "
                  "(and at most %zu of saves killed before locking)\n",
                  trials, best * 1e3, saw_a, saw_b, mid_write, young_max);
    assert_true(saw_a > 0);
    assert_true(saw_b > 0);
    assert_true(mid_write >= 5); /* kills did land in the middle of writing */

    /* the next save removes them all (they used to pile up for ever); the
     * unlocked ones once they are over a minute old */
    count_temps_aging(dir, "idx.hnswc", NULL, 120);
    tu_ok(hnswc_save(a, path));
    char names[4][256];
    size_t entries = tu_dir_entries(dir, names, 4);
    if (entries != 1)
        fail_msg("after a save, %zu files remain in the folder (%s, %s, ...)", entries, names[0],
                 names[1]);

    hnswc_free(a);
    hnswc_free(b);
    free(ba);
    free(bb);
    free(q);
    free(path);
    tu_rmdir(dir);
}

/* ------------------------------------------------------------------------
 * The cleanup takes only stale files of ours
 * ------------------------------------------------------------------------ */

typedef struct saver {
    const hnswc_index *ix;
    const char *path;
    int rounds;
    int failures;
} saver;

static void *save_loop(void *arg) {
    saver *sv = arg;
    for (int i = 0; i < sv->rounds; i++)
        sv->failures += hnswc_save(sv->ix, sv->path) != HNSWC_OK;
    return NULL;
}

static void touch(const char *dir, const char *name, mode_t mode, int age_s) {
    char *p = tu_path(dir, name);
    int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(write(fd, "stale", 5), 5);
    close(fd);
    if (age_s) {
        struct timeval tv[2];
        gettimeofday(&tv[0], NULL);
        tv[0].tv_sec -= age_s;
        tv[1] = tv[0];
        assert_int_equal(utimes(p, tv), 0);
    }
    free(p);
}

static bool present(const char *dir, const char *name) {
    char *p = tu_path(dir, name);
    struct stat st;
    bool yes = lstat(p, &st) == 0;
    free(p);
    return yes;
}

static void test_cleanup_is_safe(void **s) {
    (void)s;
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "idx.hnswc");
    hnswc_index *ix = make_index(tu_scaled(3000, 1000), 3);

    /* stale files of ours: left by saves that died after locking (0644),
     * and one that died before (0600, an hour old) */
    touch(dir, "idx.hnswc.tmp.AbC123", 0644, 0);
    touch(dir, "idx.hnswc.tmp.zZ9q0x", 0644, 3600);
    touch(dir, "idx.hnswc.tmp.OlD600", 0600, 3600);
    /* not ours, or not stale */
    touch(dir, "idx.hnswc.tmp.NeW600", 0600, 0);   /* a saver may be about to lock it */
    touch(dir, "idx.hnswc.tmp.AbC1234", 0644, 0);  /* not a mkstemp name */
    touch(dir, "idx.hnswc.tmp.AbC12", 0644, 0);
    touch(dir, "idx.hnswc.tmp.AbC-12", 0644, 0);   /* not mkstemp's alphabet */
    touch(dir, "idx.hnswc.tmp.", 0644, 0);
    touch(dir, "other.hnswc.tmp.AbC123", 0644, 0); /* another target */
    touch(dir, "idx.hnswc.tmpXAbC123", 0644, 0);
    touch(dir, "xidx.hnswc.tmp.AbC123", 0644, 0);
    char *sub = tu_path(dir, "idx.hnswc.tmp.DiR123");
    assert_int_equal(mkdir(sub, 0755), 0);
    char *outside = tu_path(dir, "outside");
    tu_write_file(outside, "keep", 4);
    char *link = tu_path(dir, "idx.hnswc.tmp.LnK123");
    assert_int_equal(symlink(outside, link), 0);
    bool other_owner = geteuid() == 0;
    if (other_owner) {
        touch(dir, "idx.hnswc.tmp.NoB123", 0644, 3600);
        char *p = tu_path(dir, "idx.hnswc.tmp.NoB123");
        assert_int_equal(chown(p, 65534, 65534), 0);
        free(p);
    }
    /* a live process holding its temporary file locked, as a saver does */
    touch(dir, "idx.hnswc.tmp.LiVe12", 0644, 3600);
    int ready[2], release[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(release), 0);
    pid_t holder = fork();
    assert_true(holder >= 0);
    if (holder == 0) {
        /* only this end of each pipe: if the test fails and exits, the read
         * below sees the end of file and the holder goes too */
        close(ready[0]);
        close(release[1]);
        char *p = tu_path(dir, "idx.hnswc.tmp.LiVe12");
        int fd = open(p, O_RDWR);
        if (fd < 0 || flock(fd, LOCK_EX) != 0 || write(ready[1], "x", 1) != 1)
            _exit(2);
        char c;
        _exit(read(release[0], &c, 1) == 1 ? 0 : 3);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);

    /* many savers at once: threads here and a second process */
    enum { THREADS = 4, ROUNDS = 8 };
    pid_t other = fork();
    assert_true(other >= 0);
    if (other == 0) {
        saver sv = {ix, path, ROUNDS, 0};
        save_loop(&sv);
        _exit(sv.failures == 0 ? 0 : 1);
    }
    pthread_t th[THREADS];
    saver sv[THREADS];
    for (int i = 0; i < THREADS; i++) {
        sv[i] = (saver){ix, path, ROUNDS, 0};
        assert_int_equal(pthread_create(&th[i], NULL, save_loop, &sv[i]), 0);
    }
    int failures = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        failures += sv[i].failures;
    }
    int status;
    assert_int_equal(waitpid(other, &status, 0), other);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(failures, 0);

    hnswc_index *back = NULL;
    tu_ok(hnswc_load(path, &back));
    size_t s1, s2;
    unsigned char *b1 = tu_serialized(ix, &s1), *b2 = tu_serialized(back, &s2);
    assert_int_equal(s1, s2);
    assert_memory_equal(b1, b2, s1);
    free(b1);
    free(b2);
    hnswc_free(back);

    /* stale and ours: gone */
    assert_false(present(dir, "idx.hnswc.tmp.AbC123"));
    assert_false(present(dir, "idx.hnswc.tmp.zZ9q0x"));
    assert_false(present(dir, "idx.hnswc.tmp.OlD600"));
    /* the rest: untouched */
    const char *keep[] = {"idx.hnswc.tmp.NeW600", "idx.hnswc.tmp.AbC1234", "idx.hnswc.tmp.AbC12",
                          "idx.hnswc.tmp.AbC-12", "idx.hnswc.tmp.", "other.hnswc.tmp.AbC123", "idx.hnswc.tmpXAbC123",
                          "xidx.hnswc.tmp.AbC123", "idx.hnswc.tmp.DiR123", "idx.hnswc.tmp.LnK123",
                          "outside", "idx.hnswc.tmp.LiVe12"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        if (!present(dir, keep[i]))
            fail_msg("the cleanup removed %s, which is not a stale file of ours", keep[i]);
    if (other_owner)
        assert_true(present(dir, "idx.hnswc.tmp.NoB123"));
    assert_int_equal(count_temps(dir, "idx.hnswc"), 8 + other_owner);

    /* once its holder is gone, the locked file is stale too */
    assert_int_equal(write(release[1], "x", 1), 1);
    assert_int_equal(waitpid(holder, &status, 0), holder);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tu_ok(hnswc_save(ix, path));
    assert_false(present(dir, "idx.hnswc.tmp.LiVe12"));

    close(ready[0]);
    close(ready[1]);
    close(release[0]);
    close(release[1]);
    rmdir(sub);
    unlink(link);
    hnswc_free(ix);
    free(sub);
    free(link);
    free(outside);
    free(path);
    tu_rmdir(dir);
}

/* ------------------------------------------------------------------------
 * A full disk
 * ------------------------------------------------------------------------ */

/* The tmpfs of test_full_disk, unmounted by the teardown even when the
 * test fails half way. */
static char *mounted;

static int unmount_teardown(void **s) {
    (void)s;
    if (mounted) {
        umount2(mounted, MNT_DETACH);
        tu_rmdir(mounted);
        mounted = NULL;
    }
    return 0;
}

static void test_full_disk(void **s) {
    (void)s;
    char *dir = tu_mkdtemp();
    if (geteuid() != 0 || mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=256k") != 0) {
        print_message("skipped: cannot mount a small tmpfs here (%s); the injected write "
                      "failures of test_faults cover the same code\n",
                      geteuid() != 0 ? "not root" : strerror(errno));
        tu_rmdir(dir);
        skip();
    }
    mounted = dir;
    char *path = tu_path(dir, "idx.hnswc");
    hnswc_index *small = make_index(200, 4);   /* 43,740 bytes */
    hnswc_index *large = make_index(1500, 5);  /* 326,000 bytes: does not fit */
    tu_ok(hnswc_save(small, path));
    size_t old_size;
    unsigned char *old = tu_read_file(path, &old_size);
    struct statvfs before, after;
    assert_int_equal(statvfs(dir, &before), 0);

    size_t large_size;
    free(tu_serialized(large, &large_size));
    tu_expect_err(hnswc_save(large, path), HNSWC_ERR_IO);
    print_message("full disk: a %zu-byte index saved over a %zu-byte one in a 256 KiB tmpfs: %s\n",
                  large_size, old_size, hnswc_errmsg(NULL));
    assert_non_null(strstr(hnswc_errmsg(NULL), strerror(ENOSPC)));

    size_t now_size;
    unsigned char *now = tu_read_file(path, &now_size);
    assert_int_equal(now_size, old_size);
    assert_memory_equal(now, old, old_size);
    hnswc_index *back = NULL;
    tu_ok(hnswc_load(path, &back));
    assert_int_equal(tu_count(back), 200);
    hnswc_free(back);
    char names[4][256];
    assert_int_equal(tu_dir_entries(dir, names, 4), 1);
    assert_int_equal(statvfs(dir, &after), 0);
    assert_int_equal(after.f_bfree, before.f_bfree);

    /* once there is room again, saving works */
    tu_ok(hnswc_save(small, path));

    free(old);
    free(now);
    hnswc_free(small);
    hnswc_free(large);
    free(path);
    assert_int_equal(umount2(dir, 0), 0);
    mounted = NULL;
    tu_rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_during_save),
        cmocka_unit_test(test_cleanup_is_safe),
        cmocka_unit_test_teardown(test_full_disk, unmount_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
