/*
 * bench_core.c — fitd's side of `make bench` (bench/run.sh drives it; see
 * bench/README.md).
 *
 *   bench_core fashion DIR [--threads T] [--epochs E] [--sgemm-seconds S] [--seed N]
 *       Trains Dense 512 relu -> Dropout 0.2 -> Dense 256 relu -> Dropout 0.2 ->
 *       Dense 10 softmax (L2 1e-4 on the kernels, Adam 1e-3, batch 128, shuffled,
 *       sparse categorical crossentropy) on Fashion-MNIST's gzipped IDX files in
 *       DIR, evaluates on the test set, and measures cblas_sgemm on the same call
 *       sequence a batch makes, at the same thread count (before and after
 *       training; the higher rate counts).
 *   bench_core digits CSV [--threads T] [--epochs E]
 *       The classic Keras example model (Dense 64 relu l2 0.001 -> Dropout 0.2 ->
 *       Dense 10 softmax), SGD 0.01, batch 32, label = last column.
 *   bench_core sgemm [--threads T] [--sgemm-seconds S]
 *       The sgemm measurement alone.
 *
 * Prints one `RESULT key=value ...` line on stdout (the same keys as
 * bench/torch_mlp.py); per-epoch progress goes to stderr. Exit status 0 on success,
 * 1 on any error (reported on stderr).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cblas.h>

#include "nn.h"
#include "par.h"

#define MAX_EPOCHS 1000

/* Fashion-MNIST MLP layer widths: input, hidden 1, hidden 2, output. */
static const int k_widths[4] = {784, 512, 256, 10};
enum { SGEMM_BATCH = 128 };

typedef struct bench_opts {
    int threads;
    int epochs;
    double sgemm_seconds;
    unsigned long seed; /* the model's initial weights and fit's shuffle/dropout stream */
} bench_opts;

typedef struct epoch_log {
    int n;
    double seconds[MAX_EPOCHS];
    double cpu[MAX_EPOCHS]; /* process CPU seconds of each epoch (and its callback) */
    double cpu_mark;        /* process CPU clock at the previous epoch's end */
    const char *label;
} epoch_log;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Process CPU time: on a shared, oversubscribed machine the 1-thread epoch's CPU
 * time barely moves while its wall time can double, so the bench reports both. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return ru.ru_maxrss; /* kilobytes on Linux */
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts a copy; n <= MAX_EPOCHS). */
static double median(const double *v, int n)
{
    double tmp[MAX_EPOCHS];
    if (n <= 0) return 0.0;
    memcpy(tmp, v, (size_t)n * sizeof *tmp);
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_double);
    return n % 2 ? tmp[n / 2] : 0.5 * (tmp[n / 2 - 1] + tmp[n / 2]);
}

/* Median epoch time over epochs 2..n (all of them when only one ran): the first
 * epoch pays for page faults and scratch growth. */
static double median_epoch(const double *v, int n)
{
    return n > 1 ? median(v + 1, n - 1) : median(v, n);
}

static int on_epoch(void *user, nn_trainer *t, const nn_epoch_record *rec)
{
    epoch_log *log = user;
    (void)t;
    double c = cpu_s();
    if (log->n < MAX_EPOCHS) {
        log->cpu[log->n] = c - log->cpu_mark;
        log->seconds[log->n++] = rec->seconds;
    }
    log->cpu_mark = c;
    fprintf(stderr, "fitd %s epoch %d: loss %.4f %.1f ms\n", log->label, rec->epoch, rec->loss,
            rec->seconds * 1000.0);
    return 0;
}

/* ---------------------------------------------------------------- sgemm */

/* GEMM flops of one training step on B rows of the MLP widths w[0..n_w): forward
 * x W for every layer, the weight gradient x^T dz for every layer, and the input
 * gradient dz W^T for every layer but the first (its input is the data). */
static double step_flops(const int *w, int n_w, double B)
{
    double f = 0.0;
    for (int l = 0; l + 1 < n_w; l++) {
        double mn = (double)w[l] * (double)w[l + 1];
        f += 2.0 * B * mn;          /* forward */
        f += 2.0 * B * mn;          /* dW */
        if (l > 0) f += 2.0 * B * mn; /* dX */
    }
    return f;
}

static void fill(float *v, size_t n, unsigned *state)
{
    for (size_t i = 0; i < n; i++) {
        *state = *state * 1664525u + 1013904223u;
        v[i] = (float)(*state >> 8) / 16777216.0f - 0.5f;
    }
}

typedef struct sgemm_bufs {
    float *act[4];  /* act[l]: (B, w[l]) layer inputs/outputs */
    float *grad[4]; /* grad[l]: (B, w[l]) gradients w.r.t. act[l] */
    float *w[3];    /* w[l]: (w[l], w[l+1]) */
    float *dw[3];
} sgemm_bufs;

/* One batch's GEMMs with core/dense.c's transposes and betas: forward
 * z = x W (beta 0); backward dW += x^T dz (beta 1) and dx = dz W^T (beta 0). */
static void sgemm_step(sgemm_bufs *b, int B)
{
    const int *w = k_widths;
    for (int l = 0; l < 3; l++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, w[l + 1], w[l], 1.0f, b->act[l],
                    w[l], b->w[l], w[l + 1], 0.0f, b->act[l + 1], w[l + 1]);
    for (int l = 2; l >= 0; l--) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, w[l], w[l + 1], B, 1.0f, b->act[l],
                    w[l], b->grad[l + 1], w[l + 1], 1.0f, b->dw[l], w[l + 1]);
        if (l > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, w[l], w[l + 1], 1.0f,
                        b->grad[l + 1], w[l + 1], b->w[l], w[l + 1], 0.0f, b->grad[l], w[l]);
    }
}

/* GFLOP/s of the batch-128 step's GEMMs: the median over ~10 slices of `seconds`. */
static int sgemm_gflops(double seconds, double *out)
{
    sgemm_bufs b;
    double rates[MAX_EPOCHS];
    int n_rates = 0, rc = 1;
    unsigned seed = 12345u;
    memset(&b, 0, sizeof b);
    for (int l = 0; l < 4; l++) {
        size_t n = (size_t)SGEMM_BATCH * (size_t)k_widths[l];
        b.act[l] = malloc(n * sizeof(float));
        b.grad[l] = malloc(n * sizeof(float));
        if (!b.act[l] || !b.grad[l]) goto out;
        fill(b.act[l], n, &seed);
        fill(b.grad[l], n, &seed);
    }
    for (int l = 0; l < 3; l++) {
        size_t n = (size_t)k_widths[l] * (size_t)k_widths[l + 1];
        b.w[l] = malloc(n * sizeof(float));
        b.dw[l] = calloc(n, sizeof(float));
        if (!b.w[l] || !b.dw[l]) goto out;
        fill(b.w[l], n, &seed);
    }
    double flops = step_flops(k_widths, 4, SGEMM_BATCH);
    for (int i = 0; i < 5; i++) sgemm_step(&b, SGEMM_BATCH); /* warm up threads and caches */
    double slice = seconds / 10.0, t_end = now_s() + seconds;
    while (n_rates < MAX_EPOCHS && (n_rates < 3 || now_s() < t_end)) {
        double t0 = now_s(), t;
        long steps = 0;
        do {
            sgemm_step(&b, SGEMM_BATCH);
            steps++;
            t = now_s();
        } while (t - t0 < slice);
        rates[n_rates++] = flops * (double)steps / (t - t0) / 1e9;
    }
    *out = median(rates, n_rates);
    rc = 0;
out:
    for (int l = 0; l < 4; l++) {
        free(b.act[l]);
        free(b.grad[l]);
    }
    for (int l = 0; l < 3; l++) {
        free(b.w[l]);
        free(b.dw[l]);
    }
    if (rc) fprintf(stderr, "bench_core: out of memory in the sgemm benchmark\n");
    return rc;
}

/* ---------------------------------------------------------------- training runs */

static nn_layer_spec dense_l2(int units, nn_activation act, double l2)
{
    nn_layer_spec s = nn_layer_dense(units, act);
    s.kernel_reg.l2 = l2;
    return s;
}

static nn_compile_spec compile_spec(nn_optimizer_kind opt, double lr)
{
    nn_compile_spec c;
    memset(&c, 0, sizeof c);
    c.optimizer = nn_optimizer_default(opt);
    c.optimizer.learning_rate = lr;
    c.loss = nn_loss_default(NN_LOSS_SPARSE_CATEGORICAL_CE);
    c.n_metrics = 1;
    c.metrics[0] = NN_METRIC_ACCURACY; /* as Keras' compile(metrics=["accuracy"]) */
    snprintf(c.metric_names[0], sizeof c.metric_names[0], "accuracy");
    return c;
}

/* Train `spec` on `train`, evaluate on `test`; fills *log and *acc. */
static int train_and_eval(const nn_model_spec *spec, nn_compile_spec *compile, int batch,
                          const bench_opts *o, const nn_dataset *train, const nn_dataset *test,
                          epoch_log *log, double *acc)
{
    nn_error err = {0};
    nn_model *m = NULL;
    nn_trainer *t = NULL;
    par_pool *par = NULL;
    nn_fit_spec fit = nn_fit_default();
    nn_eval_result ev;
    int rc = 1;

    nn_metric_kind resolved = nn_metric_resolve(compile->metrics[0], &compile->loss,
                                                spec->layers[spec->n_layers - 1].units);
    compile->metrics[0] = resolved;
    fit.epochs = o->epochs;
    fit.batch_size = batch;
    fit.shuffle = 1;
    fit.seed = o->seed;
    fit.validation_split = 0.0;

    /* As fitd runs a job: its math split over o->threads parts of its own (par.h),
     * each product a single-threaded OpenBLAS call. */
    par = par_start(o->threads);
    nn_parallel runner = par_runner(par);
    nn_blas_set_threads(1);
    m = nn_model_new(spec, o->seed, &err);
    if (!m) goto out;
    nn_model_set_parallel(m, &runner);
    t = nn_trainer_new(m, compile, &fit, train, NULL, &err);
    if (!t) goto out;
    nn_callbacks cb = {.user = log, .on_epoch = on_epoch};
    log->cpu_mark = cpu_s();
    if (nn_trainer_run(t, &cb, &err) != NN_OK) goto out;
    if (nn_model_evaluate(m, compile, test, 1000, &ev, &err) != NN_OK) goto out;
    *acc = ev.n_metrics > 0 ? ev.metrics[0] : -1.0;
    rc = 0;
out:
    if (rc) fprintf(stderr, "bench_core: %s: %s\n", nn_status_name(err.code), err.message);
    nn_trainer_free(t);
    nn_model_free(m);
    par_stop(par);
    nn_blas_set_threads(o->threads); /* back for the sgemm reference */
    return rc;
}

static int load_idx_pair(const char *dir, const char *images, const char *labels, nn_dataset *out)
{
    char xp[4096], yp[4096];
    nn_error err = {0};
    nn_idx_array x = {0}, y = {0};
    nn_limits lim = nn_limits_default();
    int rc = 1;
    snprintf(xp, sizeof xp, "%s/%s", dir, images);
    snprintf(yp, sizeof yp, "%s/%s", dir, labels);
    if (nn_idx_load_file(xp, &lim, &x, &err) != NN_OK) goto out;
    if (nn_idx_load_file(yp, &lim, &y, &err) != NN_OK) goto out;
    if (nn_dataset_from_idx(&x, &y, out, &err) != NN_OK) goto out;
    rc = 0;
out:
    if (rc) fprintf(stderr, "bench_core: %s: %s\n", nn_status_name(err.code), err.message);
    nn_idx_array_free(&x);
    nn_idx_array_free(&y);
    return rc;
}

static int run_fashion(const char *dir, const bench_opts *o)
{
    nn_dataset train = {0}, test = {0};
    epoch_log *log = NULL;
    double acc = 0.0, gflops = 0.0, gflops_before = 0.0, gflops_after = 0.0;
    int rc = 1;

    log = calloc(1, sizeof *log);
    if (!log) goto out;
    log->label = "fashion";
    if (load_idx_pair(dir, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", &train))
        goto out;
    if (load_idx_pair(dir, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", &test))
        goto out;

    nn_layer_spec layers[5] = {
        dense_l2(k_widths[1], NN_ACT_RELU, 1e-4), nn_layer_dropout(0.2),
        dense_l2(k_widths[2], NN_ACT_RELU, 1e-4), nn_layer_dropout(0.2),
        dense_l2(k_widths[3], NN_ACT_SOFTMAX, 1e-4),
    };
    nn_model_spec spec = {.input_dim = k_widths[0], .n_layers = 5, .layers = layers};
    nn_compile_spec compile = compile_spec(NN_OPT_ADAM, 1e-3);
    /* sgemm is measured before and after training and the higher figure is the
     * limit: on a shared machine a busy phase can hit either one. */
    if (sgemm_gflops(o->sgemm_seconds, &gflops_before)) goto out;
    if (train_and_eval(&spec, &compile, 128, o, &train, &test, log, &acc)) goto out;
    long rss = peak_rss_kb();
    if (sgemm_gflops(o->sgemm_seconds, &gflops_after)) goto out;
    gflops = gflops_before > gflops_after ? gflops_before : gflops_after;

    double med = median_epoch(log->seconds, log->n);
    double cpu_med = median_epoch(log->cpu, log->n);
    double epoch_flops = step_flops(k_widths, 4, (double)train.n);
    double train_gflops = epoch_flops / med / 1e9;
    double gemm_ms = gflops > 0 ? epoch_flops / (gflops * 1e9) * 1000.0 : 0.0;
    printf("RESULT impl=fitd task=fashion threads=%d seed=%lu blas_core=%s epochs=%d epoch_ms=%.1f "
           "cpu_epoch_ms=%.1f first_epoch_ms=%.1f samples_per_s=%.0f peak_rss_kb=%ld test_acc=%.4f "
           "epoch_gflop=%.2f train_gflops=%.2f sgemm_gflops=%.2f sgemm_before=%.2f sgemm_after=%.2f "
           "efficiency=%.3f sgemm_epoch_ms=%.1f\n",
           o->threads, o->seed, nn_blas_core()[0] ? nn_blas_core() : "unknown", log->n, med * 1000.0,
           cpu_med * 1000.0, log->n > 0 ? log->seconds[0] * 1000.0 : 0.0, (double)train.n / med, rss, acc,
           epoch_flops / 1e9, train_gflops, gflops, gflops_before, gflops_after, gflops > 0 ? train_gflops / gflops : 0.0,
           gemm_ms);
    rc = 0;
out:
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    free(log);
    return rc;
}

static int run_digits(const char *csv, const bench_opts *o)
{
    nn_dataset ds = {0};
    nn_error err = {0};
    nn_csv_options copt = nn_csv_default();
    epoch_log *log = NULL;
    double acc = 0.0;
    int rc = 1;

    log = calloc(1, sizeof *log);
    if (!log) goto out;
    log->label = "digits";
    if (nn_csv_load_file(csv, &copt, &ds, &err) != NN_OK) {
        fprintf(stderr, "bench_core: %s: %s\n", nn_status_name(err.code), err.message);
        goto out;
    }
    nn_layer_spec layers[3] = {
        dense_l2(64, NN_ACT_RELU, 1e-3),
        nn_layer_dropout(0.2),
        nn_layer_dense(10, NN_ACT_SOFTMAX),
    };
    nn_model_spec spec = {.input_dim = ds.x_width, .n_layers = 3, .layers = layers};
    nn_compile_spec compile = compile_spec(NN_OPT_SGD, 0.01);
    if (train_and_eval(&spec, &compile, 32, o, &ds, &ds, log, &acc)) goto out;
    double med = median_epoch(log->seconds, log->n);
    printf("RESULT impl=fitd task=digits threads=%d epochs=%d epoch_ms=%.2f samples_per_s=%.0f "
           "peak_rss_kb=%ld test_acc=%.4f\n",
           o->threads, log->n, med * 1000.0, (double)ds.n / med, peak_rss_kb(), acc);
    rc = 0;
out:
    nn_dataset_free(&ds);
    free(log);
    return rc;
}

static int run_sgemm(const bench_opts *o)
{
    double gflops = 0.0;
    if (sgemm_gflops(o->sgemm_seconds, &gflops)) return 1;
    printf("RESULT impl=sgemm threads=%d sgemm_gflops=%.2f step_mflop=%.1f\n", o->threads,
           gflops, step_flops(k_widths, 4, SGEMM_BATCH) / 1e6);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_core fashion DIR | digits CSV | sgemm  [--threads T] "
                    "[--epochs E] [--sgemm-seconds S] [--seed N]\n");
    return 2;
}

int main(int argc, char **argv)
{
    bench_opts o = {.threads = 1, .epochs = 10, .sgemm_seconds = 2.0, .seed = 1};
    const char *task = argc > 1 ? argv[1] : "";
    const char *path = NULL;
    int i = 2;
    if (strcmp(task, "fashion") == 0 || strcmp(task, "digits") == 0) {
        if (argc < 3) return usage();
        path = argv[2];
        i = 3;
    } else if (strcmp(task, "sgemm") != 0) {
        return usage();
    }
    for (; i < argc; i += 2) { /* --flag value pairs */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return usage();
        if (strcmp(argv[i], "--threads") == 0) o.threads = atoi(v);
        else if (strcmp(argv[i], "--epochs") == 0) o.epochs = atoi(v);
        else if (strcmp(argv[i], "--sgemm-seconds") == 0) o.sgemm_seconds = atof(v);
        else if (strcmp(argv[i], "--seed") == 0) o.seed = strtoul(v, NULL, 10);
        else return usage();
    }
    if (o.threads < 1 || o.epochs < 1 || o.epochs > MAX_EPOCHS || !(o.sgemm_seconds > 0.0))
        return usage();
    nn_blas_set_threads(o.threads);
    if (strcmp(task, "fashion") == 0) return run_fashion(path, &o);
    if (strcmp(task, "digits") == 0) return run_digits(path, &o);
    return run_sgemm(&o);
}
