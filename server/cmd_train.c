/*
 * cmd_train.c — `fitd train`: train a job spec on local files, in-process, without
 * the service. One JSON object per epoch on stdout (the epoch record), then the
 * test metrics when --test is given; errors on stderr with a non-zero exit.
 * The spec's "data" section is ignored: the data comes from the flags.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "nn.h"
#include "par.h"
#include "record.h"
#include "spec.h"

static const char usage[] =
    "usage: fitd train SPEC.json --train DATA [--validation DATA] [--test DATA]\n"
    "                  [--init W.safetensors] [--save W.safetensors] [--threads N]\n"
    "DATA is file.csv (header row, target = last column) or images.idx[.gz]:labels.idx[.gz]\n";

/* DATA argument -> dataset: "a:b" is an IDX pair, anything else a CSV file. */
static nn_status load_data(const char *arg, nn_dataset *out, nn_error *err)
{
    const char *colon = strchr(arg, ':');
    if (!colon) {
        nn_csv_options opt = nn_csv_default();
        return nn_csv_load_file(arg, &opt, out, err);
    }
    nn_limits lim = nn_limits_default();
    nn_idx_array x = {0}, y = {0};
    char *xpath = strndup(arg, (size_t)(colon - arg));
    nn_status rc = xpath ? NN_OK : nn_error_set(err, NN_ERR_NOMEM, "out of memory");
    if (rc == NN_OK) rc = nn_idx_load_file(xpath, &lim, &x, err);
    if (rc == NN_OK) rc = nn_idx_load_file(colon + 1, &lim, &y, err);
    if (rc == NN_OK) rc = nn_dataset_from_idx(&x, &y, out, err);
    nn_idx_array_free(&x);
    nn_idx_array_free(&y);
    free(xpath);
    return rc;
}

static int print_json_line(json_t *o)
{
    if (!o) return -1;
    int rc = json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (rc == 0) {
        fputc('\n', stdout);
        fflush(stdout);
    }
    return rc;
}

static int on_epoch(void *user, nn_trainer *t, const nn_epoch_record *rec)
{
    (void)user;
    (void)t;
    return print_json_line(record_epoch_json(rec));
}

static int read_whole(const char *path, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *b = NULL;
    size_t n = 0, cap = 0;
    if (!f) return -1;
    for (;;) {
        if (cap - n < 65536) {
            char *nb = realloc(b, cap ? cap * 2 : 65536);
            if (!nb) break;
            b = nb;
            cap = cap ? cap * 2 : 65536;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f) || !b;
    fclose(f);
    if (bad) {
        free(b);
        return -1;
    }
    *buf = b;
    *len = n;
    return 0;
}

static int write_whole(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int bad = fwrite(buf, 1, len, f) != len;
    bad |= fclose(f) != 0;
    return bad ? -1 : 0;
}

int cmd_train(int argc, char **argv)
{
    static const struct option opts[] = {
        {"train", required_argument, 0, 't'},      {"validation", required_argument, 0, 'v'},
        {"test", required_argument, 0, 'T'},       {"init", required_argument, 0, 'i'},
        {"save", required_argument, 0, 's'},       {"threads", required_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0},
    };
    const char *train_arg = NULL, *val_arg = NULL, *test_arg = NULL, *init_path = NULL, *save_path = NULL;
    int threads = 0, rc = 2, c;
    par_pool *par = NULL;
    char *text = NULL, *wbuf = NULL;
    size_t text_len = 0, wlen = 0;
    void *out_buf = NULL;
    size_t out_len = 0;
    spec_job job;
    spec_problems problems;
    nn_dataset train = {0}, val = {0}, test = {0};
    nn_model *model = NULL;
    nn_trainer *trainer = NULL;
    nn_error err = {0};
    char *spec_text = NULL;
    memset(&job, 0, sizeof job);

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't': train_arg = optarg; break;
        case 'v': val_arg = optarg; break;
        case 'T': test_arg = optarg; break;
        case 'i': init_path = optarg; break;
        case 's': save_path = optarg; break;
        case 'j': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 256) {
                fprintf(stderr, "fitd train: --threads must be an integer in [1, 256], not '%s'\n", optarg);
                return 2;
            }
            threads = (int)v;
            break;
        }
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind != argc - 1 || !train_arg) {
        fputs(usage, stderr);
        return 2;
    }
    const char *spec_path = argv[optind];
    if (read_whole(spec_path, &text, &text_len) != 0) {
        fprintf(stderr, "fitd train: cannot read %s\n", spec_path);
        goto out;
    }
    if (spec_job_parse_text(text, text_len, NULL, SPEC_DATA_OPTIONAL, &job, &problems) != SPEC_OK) {
        fprintf(stderr, "fitd train: %s is not a valid job spec:\n", spec_path);
        for (int i = 0; i < problems.n; i++)
            fprintf(stderr, "  %s: %s\n", problems.items[i].pointer[0] ? problems.items[i].pointer : "(document)",
                    problems.items[i].message);
        goto out;
    }
    /* The job's math is split over `threads` parts of our own (par.h), each product
     * a single-threaded OpenBLAS call. */
    if (!threads) threads = par_cores();
    nn_blas_set_threads(1);
    par = par_start(threads);
    nn_parallel runner = par_runner(par);

    rc = 1;
    if (load_data(train_arg, &train, &err) != NN_OK) {
        fprintf(stderr, "fitd train: %s: %s\n", train_arg, err.message);
        goto out;
    }
    if (val_arg && load_data(val_arg, &val, &err) != NN_OK) {
        fprintf(stderr, "fitd train: %s: %s\n", val_arg, err.message);
        goto out;
    }
    if (test_arg && load_data(test_arg, &test, &err) != NN_OK) {
        fprintf(stderr, "fitd train: %s: %s\n", test_arg, err.message);
        goto out;
    }
    model = nn_model_new(&job.model, job.fit.seed, &err);
    if (!model) goto fail;
    nn_model_set_parallel(model, &runner);
    if (init_path) {
        if (read_whole(init_path, &wbuf, &wlen) != 0) {
            fprintf(stderr, "fitd train: cannot read %s\n", init_path);
            goto out;
        }
        if (nn_model_load_safetensors(model, wbuf, wlen, &err) != NN_OK) goto fail;
    }
    trainer = nn_trainer_new(model, &job.compile, &job.fit, &train, val_arg ? &val : NULL, &err);
    if (!trainer) goto fail;
    nn_callbacks cb = {.on_epoch = on_epoch};
    if (nn_trainer_run(trainer, &cb, &err) != NN_OK) goto fail;
    if (test_arg) {
        nn_eval_result ev;
        if (nn_model_evaluate(model, &job.compile, &test, job.fit.batch_size, &ev, &err) != NN_OK) goto fail;
        json_t *o = json_object();
        if (!o || json_object_set_new(o, "test", record_eval_json(&job.compile, &ev)) != 0) {
            json_decref(o);
            fputs("fitd train: out of memory\n", stderr);
            goto out;
        }
        print_json_line(o);
    }
    if (save_path) {
        json_t *spec_json = spec_job_to_json(&job);
        spec_text = spec_json ? json_dumps(spec_json, JSON_COMPACT) : NULL;
        json_decref(spec_json);
        nn_kv meta[] = {{"format", "fitd"}, {"spec", spec_text ? spec_text : "{}"}};
        if (nn_model_save_safetensors(model, meta, 2, &out_buf, &out_len, &err) != NN_OK) goto fail;
        if (write_whole(save_path, out_buf, out_len) != 0) {
            fprintf(stderr, "fitd train: cannot write %s\n", save_path);
            goto out;
        }
    }
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "fitd train: %s\n", err.message);
out:
    nn_trainer_free(trainer);
    nn_model_free(model);
    par_stop(par);
    nn_dataset_free(&train);
    nn_dataset_free(&val);
    nn_dataset_free(&test);
    spec_job_free(&job);
    free(text);
    free(wbuf);
    free(out_buf);
    free(spec_text);
    return rc;
}
