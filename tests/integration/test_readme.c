/*
 * test_readme.c — the README's quickstart, run as written: the shell block after
 * the "quickstart" marker is extracted, its FITD= line pointed at a real fitd on
 * an ephemeral port, and run with bash from the repository root. The docs cannot
 * drift from the service without this test failing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "support.h"

/* The quickstart block, with its FITD= line replaced (malloc'ed). */
static char *quickstart_script(unsigned port)
{
    char *readme = read_file("README.md", NULL);
    assert_non_null(readme);
    char *mark = strstr(readme, "<!-- quickstart");
    assert_non_null(mark);
    char *begin = strstr(mark, "```sh\n");
    assert_non_null(begin);
    begin += 6;
    char *end = strstr(begin, "\n```");
    assert_non_null(end);
    *end = 0;
    char *fitd = strstr(begin, "FITD=");
    assert_non_null(fitd);
    char *eol = strchr(fitd, '\n');
    assert_non_null(eol);
    size_t cap = strlen(begin) + 128;
    char *out = malloc(cap);
    assert_non_null(out);
    snprintf(out, cap, "set -eu\n%.*sFITD=http://127.0.0.1:%u%s\n", (int)(fitd - begin), begin, port, eol);
    free(readme);
    return out;
}

static void test_quickstart_runs_as_written(void **state)
{
    (void)state;
    it_server s = {0};
    assert_int_equal(it_start(&s, NULL), 0);
    char *script = quickstart_script(s.port);
    char path[700], outpath[700], cmd[4096];
    snprintf(path, sizeof path, "%s/quickstart.sh", s.dir);
    snprintf(outpath, sizeof outpath, "%s/quickstart.out", s.dir);
    assert_int_equal(it_write_file(path, script, strlen(script), 0), 0);
    /* Run in the temp folder (weights.safetensors lands there), with the
     * repository's tests/ linked in so that @tests/fixtures/digits.csv resolves. */
    char repo[512];
    assert_non_null(getcwd(repo, sizeof repo));
    snprintf(cmd, sizeof cmd, "cd %s && ln -s %s/tests tests && timeout 300 bash %s > %s 2>&1", s.dir, repo, path,
             outpath);
    int st = system(cmd);
    char *out = read_file(outpath, NULL);
    assert_non_null(out);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        it_dump_log(&s);
        fail_msg("the quickstart failed (status %d):\n%s", st, out);
    }
    /* What a reader is told to expect. */
    const char *expect[] = {"\"n_samples\":1797", "\"status\":\"succeeded\"", "\"val_accuracy\"",
                            "epoch,loss,accuracy,val_loss,val_accuracy,regularization_loss", "\"dense/kernel\"",
                            "\"classes\":[0]"};
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++)
        if (!strstr(out, expect[i])) fail_msg("quickstart output lacks %s:\n%s", expect[i], out);
    char wpath[700];
    snprintf(wpath, sizeof wpath, "%s/weights.safetensors", s.dir);
    size_t wlen = 0;
    char *w = read_file(wpath, &wlen);
    assert_non_null(w);
    assert_true(wlen > 64 * 64 * 4);
    free(w);
    free(out);
    free(script);
    assert_int_equal(it_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quickstart_runs_as_written),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
