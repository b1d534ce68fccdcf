/*
 * test_fuzz_replay.c — the fuzz targets' regression replay, part of `make test`.
 *
 * Every file under tests/fuzz/corpus/<target>/ (the seed corpus) and
 * tests/fuzz/crashes/<target>/ (minimized inputs that once crashed or broke a
 * property, kept after the fix) is fed to the same entry function libFuzzer
 * calls (tests/fuzz/fuzz_<target>.h, included here without -DFITD_FUZZER), in a
 * normal build: the entry's properties must hold and the sanitizers (make asan)
 * must stay quiet. The server targets share one in-process server, stopped at
 * the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#include "../fuzz/fuzz.h"
#include "../fuzz/fuzz_csv.h"
#include "../fuzz/fuzz_idx.h"
#include "../fuzz/fuzz_multipart.h"
#include "../fuzz/fuzz_router.h"
#include "../fuzz/fuzz_safetensors.h"
#include "../fuzz/fuzz_server.h"
#include "../fuzz/fuzz_spec.h"

typedef int (*entry_fn)(const uint8_t *data, size_t size);

/* Feed every regular file of `dir` (a missing folder counts 0) to `fn`; the
 * number of files fed goes to *count. Fails naming the first file that breaks. */
static void replay_dir(const char *dir, entry_fn fn, int *count)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        char *buf = read_file(path, &len);
        if (!buf) continue; /* a sub-folder */
        int rc = fn((const uint8_t *)buf, len);
        free(buf);
        if (rc != 0) {
            closedir(d);
            fail_msg("%s: the fuzz entry's properties failed (see stderr)", path);
        }
        (*count)++;
    }
    closedir(d);
}

static void replay(const char *target, entry_fn fn, int min_seeds)
{
    char dir[256];
    int n_corpus = 0, n_crashes = 0;
    snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", target);
    replay_dir(dir, fn, &n_corpus);
    snprintf(dir, sizeof dir, "tests/fuzz/crashes/%s", target);
    replay_dir(dir, fn, &n_crashes);
    print_message("%s: %d corpus files, %d crash files\n", target, n_corpus, n_crashes);
    /* A corpus that vanished (or a wrong working folder) must not pass silently. */
    assert_true(n_corpus >= min_seeds);
}

static void test_replay_spec(void **state) { replay("spec", fuzz_spec, 5); }
static void test_replay_csv(void **state) { replay("csv", fuzz_csv, 5); }
static void test_replay_idx(void **state) { replay("idx", fuzz_idx, 5); }
static void test_replay_safetensors(void **state) { replay("safetensors", fuzz_safetensors, 5); }
static void test_replay_multipart(void **state) { replay("multipart", fuzz_multipart, 5); }
static void test_replay_router(void **state) { replay("router", fuzz_router, 5); }

/* The entries' own checks can fail: a CSV whose split parse differs cannot be
 * built from outside, but an entry must reject a broken server reply. */
static void test_entries_detect(void **state)
{
    /* fuzz_http against a request the server refuses to parse still answers 4xx. */
    static const char junk[] = "GARBAGE\r\n\r\n";
    int st = fuzz_http(junk, sizeof junk - 1, NULL);
    assert_true(st == -1 || (st >= 400 && st < 500));
    /* A well-formed request gets its real status. */
    static const char hz[] = "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    char *body = NULL;
    assert_int_equal(fuzz_http(hz, sizeof hz - 1, &body), 200);
    assert_non_null(body);
    assert_non_null(strstr(body, "\"ok\""));
    free(body);
}

static int teardown_server(void **state)
{
    fuzz_server_stop();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_spec),
        cmocka_unit_test(test_replay_csv),
        cmocka_unit_test(test_replay_idx),
        cmocka_unit_test(test_replay_safetensors),
        cmocka_unit_test(test_replay_multipart),
        cmocka_unit_test(test_replay_router),
        cmocka_unit_test(test_entries_detect),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_server);
}
