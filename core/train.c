/*
 * train.c — Keras' fit loop as a resumable object: epochs of shuffled mini-batches,
 * validation, EarlyStopping, per-epoch records, cancellation between batches, and
 * checkpoints of the whole training state. Also evaluate and the data checks.
 *
 * Determinism: one RNG stream (seeded from fit.seed) drives shuffling and dropout,
 * in a fixed order, so the same spec, data, seed and BLAS thread count give
 * bit-identical weights — and a checkpoint captures that stream's state.
 */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn_int.h"

struct nn_trainer {
    nn_model *m;
    nn_compile_spec compile; /* metrics resolved */
    nn_fit_spec fit;
    nn_dataset train, val; /* views */
    int has_val;
    int n_out;
    nn_optim *opt;
    float *grads;
    nn_rng rng;
    uint32_t *perm;
    float *xb, *yb, *pred; /* gathered batch and its outputs */
    int batches;
    /* progress */
    int epoch; /* completed */
    int stopped, finished;
    /* The epoch in progress, so that a run stopped at a batch boundary (cancel,
     * shutdown) checkpoints and resumes mid-epoch exactly: batches done, the RNG as
     * the epoch began (to redraw the same shuffle), the running sums, the time. */
    int batch;
    nn_rng epoch_rng;
    double loss_sum, reg_sum, sums[NN_MAX_METRICS], elapsed;
    /* EarlyStopping (Keras 3 semantics) */
    int es_max, es_has_best, es_wait, es_monitor; /* monitor: index into record values */
    double es_best;
    int best_epoch; /* 1-based */
    int has_best_params;
    float *best_params;
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

nn_status nn_check_data(const nn_model *m, const nn_compile_spec *compile, const nn_dataset *ds,
                        const char *what, nn_error *err)
{
    int out = nn_model_output_dim(m);
    if (ds->n == 0) return nn_error_set(err, NN_ERR_MISMATCH, "%s data has no samples", what);
    if (ds->x_width != nn_model_input_dim(m))
        return nn_error_set(err, NN_ERR_MISMATCH, "%s data has %d features, the model's input_shape is [%d]",
                            what, ds->x_width, nn_model_input_dim(m));
    /* After the data's width and before the loss's checks: with the sparse loss,
     * "accuracy" is this metric, and the loss's own message says it better. */
    if (compile->loss.kind != NN_LOSS_SPARSE_CATEGORICAL_CE && ds->y_width != 1)
        for (int k = 0; k < compile->n_metrics; k++)
            if (nn_metric_resolve(compile->metrics[k], &compile->loss, out) ==
                NN_METRIC_SPARSE_CATEGORICAL_ACCURACY)
                return nn_error_set(err, NN_ERR_MISMATCH,
                                    "sparse_categorical_accuracy needs one label per %s sample; the "
                                    "targets have width %d",
                                    what, ds->y_width);
    if (compile->loss.kind == NN_LOSS_SPARSE_CATEGORICAL_CE) {
        if (ds->y_width != 1 || !ds->y_integer)
            return nn_error_set(err, NN_ERR_MISMATCH,
                                "sparse_categorical_crossentropy needs one integer label per %s sample", what);
        if (ds->n_classes > out)
            return nn_error_set(err, NN_ERR_MISMATCH,
                                "%s labels go up to %d but the output layer has %d units", what,
                                ds->n_classes - 1, out);
        return NN_OK;
    }
    if (ds->y_width != out)
        return nn_error_set(err, NN_ERR_MISMATCH, "%s targets have width %d, the output layer has %d units%s",
                            what, ds->y_width, out,
                            ds->y_width == 1 && ds->y_integer && compile->loss.kind == NN_LOSS_CATEGORICAL_CE
                                ? " (integer labels need sparse_categorical_crossentropy)"
                                : "");
    if (compile->loss.kind == NN_LOSS_BINARY_CE)
        for (size_t i = 0; i < ds->n * (size_t)ds->y_width; i++)
            if (!(ds->y[i] >= 0 && ds->y[i] <= 1))
                return nn_error_set(err, NN_ERR_MISMATCH,
                                    "binary_crossentropy needs targets in [0, 1]; %s sample %zu has %g", what,
                                    i / (size_t)ds->y_width, (double)ds->y[i]);
    return NN_OK;
}

/* Metrics of one batch's outputs, summed over samples into sums[]. */
static void add_metrics(const nn_compile_spec *c, const float *pred, const float *y, int B, int C,
                        int yw, double *sums)
{
    for (int k = 0; k < c->n_metrics; k++)
        sums[k] += nn_metric_sum(c->metrics[k], pred, y, B, C, yw, c->loss.from_logits);
}

/* Loss (with penalties) and metrics over a dataset in batches, dropout off. */
static nn_status evaluate(nn_model *m, const nn_compile_spec *c, const nn_dataset *ds, int batch,
                          float *pred, nn_eval_result *out, nn_error *err)
{
    int C = nn_model_output_dim(m);
    double loss = 0, reg = 0, sums[NN_MAX_METRICS] = {0};
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < ds->n; i += (size_t)batch) {
        int B = (int)(ds->n - i < (size_t)batch ? ds->n - i : (size_t)batch);
        const float *y = ds->y + i * (size_t)ds->y_width;
        double r = 0;
        nn_status st;
        double l = nn_model_eval_batch(m, &c->loss, ds->x + i * (size_t)ds->x_width, y, B, pred, &r, &st);
        if (st != NN_OK) return nn_error_set(err, st, "out of memory in evaluation");
        loss += l * B;
        reg += r * B;
        add_metrics(c, pred, y, B, C, ds->y_width, sums);
    }
    out->loss = loss / (double)ds->n;
    out->regularization_loss = reg / (double)ds->n;
    out->n_metrics = c->n_metrics;
    for (int k = 0; k < c->n_metrics; k++) out->metrics[k] = sums[k] / (double)ds->n;
    return NN_OK;
}

static void resolve_metrics(nn_compile_spec *c, int out_dim)
{
    for (int k = 0; k < c->n_metrics; k++) {
        if (!c->metric_names[k][0])
            strncpy(c->metric_names[k], nn_metric_name(c->metrics[k]), sizeof c->metric_names[k] - 1);
        c->metrics[k] = nn_metric_resolve(c->metrics[k], &c->loss, out_dim);
    }
}

nn_status nn_model_evaluate(nn_model *m, const nn_compile_spec *compile, const nn_dataset *ds,
                            int batch_size, nn_eval_result *out, nn_error *err)
{
    nn_compile_spec c = *compile;
    resolve_metrics(&c, nn_model_output_dim(m));
    if (nn_check_data(m, &c, ds, "evaluation", err) != NN_OK) return err ? err->code : NN_ERR_MISMATCH;
    if (batch_size < 1) batch_size = 32;
    float *pred = malloc((size_t)batch_size * (size_t)nn_model_output_dim(m) * sizeof(float));
    if (!pred) return nn_error_set(err, NN_ERR_NOMEM, "out of memory in evaluation");
    nn_status rc = evaluate(m, &c, ds, batch_size, pred, out, err);
    free(pred);
    return rc;
}

/* Index of the monitored value: 0 loss, 1 val_loss, 2+k metric k, 2+n+k val metric k. */
static int find_monitor(const nn_compile_spec *c, const char *name)
{
    if (strcmp(name, "loss") == 0) return 0;
    if (strcmp(name, "val_loss") == 0) return 1;
    int val = strncmp(name, "val_", 4) == 0;
    for (int k = 0; k < c->n_metrics; k++) {
        if (strcmp(name, c->metric_names[k]) == 0) return 2 + k;
        if (val && strcmp(name + 4, c->metric_names[k]) == 0) return 2 + c->n_metrics + k;
    }
    return -1;
}

static double monitor_value(const nn_epoch_record *r, int idx)
{
    if (idx == 0) return r->loss;
    if (idx == 1) return r->val_loss;
    if (idx < 2 + r->n_metrics) return r->metrics[idx - 2];
    return r->val_metrics[idx - 2 - r->n_metrics];
}

void nn_trainer_free(nn_trainer *t)
{
    if (!t) return;
    nn_optim_free(t->opt);
    free(t->grads);
    free(t->perm);
    free(t->xb);
    free(t->yb);
    free(t->pred);
    free(t->best_params);
    free(t);
}

size_t nn_validation_split_at(size_t n, double split)
{
    return (size_t)floor((double)n * (1.0 - split));
}

nn_trainer *nn_trainer_new(nn_model *model, const nn_compile_spec *compile, const nn_fit_spec *fit,
                           const nn_dataset *train, const nn_dataset *val, nn_error *err)
{
    nn_trainer *t = calloc(1, sizeof *t);
    nn_var *vars = NULL;
    if (!t) goto nomem;
    t->m = model;
    t->compile = *compile;
    t->fit = *fit;
    t->n_out = nn_model_output_dim(model);
    resolve_metrics(&t->compile, t->n_out);
    if (fit->epochs < 1 || fit->batch_size < 1) {
        nn_error_set(err, NN_ERR_INVALID, "epochs and batch_size must be >= 1");
        goto fail;
    }
    if (val) {
        t->train = nn_dataset_view(train, 0, train->n);
        t->val = nn_dataset_view(val, 0, val->n);
        t->has_val = 1;
    } else if (fit->validation_split > 0) {
        /* Keras: the last fraction of the samples, taken before shuffling. */
        if (!(fit->validation_split < 1)) {
            nn_error_set(err, NN_ERR_INVALID, "validation_split must be in [0, 1)");
            goto fail;
        }
        size_t split_at = nn_validation_split_at(train->n, fit->validation_split);
        if (split_at == 0 || split_at == train->n) {
            nn_error_set(err, NN_ERR_INVALID,
                         "validation_split %g leaves an empty %s set for %zu samples", fit->validation_split,
                         split_at == 0 ? "training" : "validation", train->n);
            goto fail;
        }
        t->train = nn_dataset_view(train, 0, split_at);
        t->val = nn_dataset_view(train, split_at, train->n - split_at);
        t->has_val = 1;
    } else {
        t->train = nn_dataset_view(train, 0, train->n);
    }
    if (nn_check_data(model, &t->compile, &t->train, "training", err) != NN_OK) goto fail;
    if (t->has_val && nn_check_data(model, &t->compile, &t->val, "validation", err) != NN_OK) goto fail;

    const nn_early_stopping *es = &fit->early_stopping;
    if (es->enabled) {
        t->es_monitor = find_monitor(&t->compile, es->monitor);
        if (t->es_monitor < 0) {
            nn_error_set(err, NN_ERR_INVALID, "early_stopping monitors '%s', which is not reported", es->monitor);
            goto fail;
        }
        int is_val = t->es_monitor == 1 || t->es_monitor >= 2 + t->compile.n_metrics;
        if (is_val && !t->has_val) {
            nn_error_set(err, NN_ERR_INVALID, "early_stopping monitors '%s' but there is no validation data",
                         es->monitor);
            goto fail;
        }
        t->es_max = es->mode == NN_ES_MAX ||
                    (es->mode == NN_ES_AUTO && (strstr(es->monitor, "acc") != NULL));
    }

    size_t np = nn_model_param_count(model);
    int nt = nn_model_tensor_count(model);
    vars = calloc((size_t)nt + 1, sizeof *vars);
    if (!vars) goto nomem;
    for (int i = 0; i < nt; i++) {
        vars[i].offset = nn_model_tensor(model, i)->offset;
        vars[i].count = nn_model_tensor(model, i)->count;
    }
    t->opt = nn_optim_new(&compile->optimizer, vars, nt, np, err);
    if (!t->opt) goto fail;
    free(vars);
    vars = NULL;

    size_t B = (size_t)fit->batch_size;
    if (B > t->train.n) B = t->train.n;
    t->batches = (int)((t->train.n + B - 1) / B);
    t->grads = malloc((np ? np : 1) * sizeof(float));
    t->perm = malloc(t->train.n * sizeof(uint32_t));
    t->xb = malloc(B * (size_t)t->train.x_width * sizeof(float));
    t->yb = malloc(B * (size_t)t->train.y_width * sizeof(float));
    size_t pred_rows = (size_t)fit->batch_size > B ? (size_t)fit->batch_size : B;
    t->pred = malloc(pred_rows * (size_t)t->n_out * sizeof(float));
    if (!t->grads || !t->perm || !t->xb || !t->yb || !t->pred) goto nomem;
    nn_rng_seed(&t->rng, nn_seed_mix(fit->seed, 0x5eed));
    return t;

nomem:
    nn_error_set(err, NN_ERR_NOMEM, "out of memory creating the trainer");
fail:
    free(vars);
    nn_trainer_free(t);
    return NULL;
}

int nn_trainer_epoch(const nn_trainer *t) { return t->epoch; }
int nn_trainer_best_epoch(const nn_trainer *t) { return t->best_epoch; }
int nn_trainer_stopped_early(const nn_trainer *t) { return t->stopped; }
int nn_trainer_finished(const nn_trainer *t) { return t->finished; }
int nn_trainer_batches_per_epoch(const nn_trainer *t) { return t->batches; }
int nn_trainer_batch(const nn_trainer *t) { return t->batch; }
size_t nn_trainer_train_samples(const nn_trainer *t) { return t->train.n; }

/* Keras 3 EarlyStopping.on_epoch_end; `epoch` is 0-based like Keras'. */
static void early_stopping_update(nn_trainer *t, const nn_epoch_record *rec, int epoch)
{
    const nn_early_stopping *es = &t->fit.early_stopping;
    if (!es->enabled || epoch < es->start_from_epoch) return;
    double cur = monitor_value(rec, t->es_monitor);
    double d = fabs(es->min_delta);
    size_t np = nn_model_param_count(t->m);
    if (es->restore_best_weights && !t->has_best_params) {
        memcpy(t->best_params, nn_model_params(t->m), np * sizeof(float));
        t->has_best_params = 1;
        t->best_epoch = epoch + 1;
    }
    t->es_wait++;
    int improved = !t->es_has_best || (t->es_max ? cur - d > t->es_best : cur + d < t->es_best);
    if (improved) {
        t->es_best = cur;
        t->es_has_best = 1;
        t->best_epoch = epoch + 1;
        if (es->restore_best_weights) memcpy(t->best_params, nn_model_params(t->m), np * sizeof(float));
        int beats_baseline = !es->has_baseline || (t->es_max ? cur - d > es->baseline : cur + d < es->baseline);
        if (beats_baseline) t->es_wait = 0;
        return;
    }
    if (t->es_wait >= es->patience && epoch > 0) t->stopped = 1;
}

/* The shuffled gather reads rows at random from a dataset far larger than the
 * cache, so each row copy would wait on DRAM; prefetching the row GATHER_AHEAD
 * places ahead keeps several rows in flight (the gather was 2% of a Fashion-MNIST
 * epoch). */
#define GATHER_AHEAD 4

static void prefetch_row(const float *row, int width)
{
    const char *p = (const char *)row;
    size_t bytes = (size_t)width * sizeof(float);
    for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o);
}

/* Rows [r0, r1) of the batch that starts at shuffled position `from`. */
typedef struct gather_job {
    nn_trainer *t;
    size_t from;
} gather_job;

static void gather_rows(void *arg, size_t r0, size_t r1)
{
    const gather_job *g = arg;
    nn_trainer *t = g->t;
    size_t xw = (size_t)t->train.x_width, yw = (size_t)t->train.y_width;
    const uint32_t *perm = t->perm + g->from;
    for (size_t r = r0; r < r1; r++) {
        if (r + GATHER_AHEAD < r1) prefetch_row(t->train.x + (size_t)perm[r + GATHER_AHEAD] * xw, (int)xw);
        memcpy(t->xb + r * xw, t->train.x + (size_t)perm[r] * xw, xw * sizeof(float));
        memcpy(t->yb + r * yw, t->train.y + (size_t)perm[r] * yw, yw * sizeof(float));
    }
}

static int params_finite(const float *p, size_t n)
{
    float acc = 0;
    for (size_t i = 0; i < n; i++) acc += p[i] * 0.0f; /* NaN or Inf poisons the sum */
    return acc == 0;
}

nn_status nn_trainer_run(nn_trainer *t, const nn_callbacks *cb, nn_error *err)
{
    static const nn_callbacks none = {0};
    if (!cb) cb = &none;
    nn_model *m = t->m;
    const nn_compile_spec *c = &t->compile;
    size_t np = nn_model_param_count(m), N = t->train.n;
    int xw = t->train.x_width, yw = t->train.y_width;
    if (t->fit.early_stopping.enabled && t->fit.early_stopping.restore_best_weights && !t->best_params) {
        t->best_params = malloc((np ? np : 1) * sizeof(float));
        if (!t->best_params) return nn_error_set(err, NN_ERR_NOMEM, "out of memory for the best weights");
    }

    while (!t->finished && t->epoch < t->fit.epochs && !t->stopped) {
        double t0 = now_seconds();
        int e = t->epoch + 1;
        if (t->batch == 0) {
            t->epoch_rng = t->rng;
            t->loss_sum = t->reg_sum = t->elapsed = 0;
            memset(t->sums, 0, sizeof t->sums);
        }
        /* The epoch's shuffle, drawn from the RNG as the epoch began; mid-epoch
         * (after a cancel or a restore) it is redrawn, and the live RNG, already
         * past it, stays where it is. */
        nn_rng shuffle_rng = t->epoch_rng;
        for (size_t i = 0; i < N; i++) t->perm[i] = (uint32_t)i;
        if (t->fit.shuffle) nn_rng_shuffle(t->batch ? &shuffle_rng : &t->rng, t->perm, N);
        for (int b = t->batch; b < t->batches; b++) {
            if (cb->should_cancel && cb->should_cancel(cb->user)) {
                /* Before the epoch's first batch the live RNG is past its shuffle;
                 * back to the epoch's start, so a rerun or a checkpoint (batch 0
                 * means "epoch not begun") draws the same shuffle again. */
                if (b == 0) t->rng = t->epoch_rng;
                t->elapsed += now_seconds() - t0;
                return nn_error_set(err, NN_ERR_CANCELLED, "cancelled at epoch %d, batch %d", e, b + 1);
            }
            size_t from = (size_t)b * (size_t)t->fit.batch_size;
            int B = (int)(N - from < (size_t)t->fit.batch_size ? N - from : (size_t)t->fit.batch_size);
            const float *x, *y;
            if (t->fit.shuffle) {
                gather_job g = {t, from};
                nn_par_for(nn_model_parallel(m), (size_t)B, (size_t)B * (size_t)xw, 1, gather_rows, &g);
                x = t->xb;
                y = t->yb;
            } else {
                x = t->train.x + from * xw;
                y = t->train.y + from * yw;
            }
            double reg = 0;
            nn_status st;
            nn_model_set_step(m, (uint64_t)nn_optim_iterations(t->opt));
            double loss = nn_model_grad(m, &c->loss, x, y, B, t->grads, &t->rng, &reg, t->pred, &st);
            if (st != NN_OK) return nn_error_set(err, st, "out of memory at epoch %d, batch %d", e, b + 1);
            if (!isfinite(loss))
                return nn_error_set(err, NN_ERR_NUMERIC, "the loss became %s at epoch %d, batch %d",
                                    isnan(loss) ? "NaN" : "infinite", e, b + 1);
            t->loss_sum += loss * B;
            t->reg_sum += reg * B;
            add_metrics(c, t->pred, y, B, t->n_out, (int)yw, t->sums);
            nn_optim_step(t->opt, nn_model_params(m), t->grads, nn_model_parallel(m));
            t->batch = b + 1;
            if (cb->on_batch) cb->on_batch(cb->user, e, b + 1, t->batches);
        }
        if (!params_finite(nn_model_params(m), np))
            return nn_error_set(err, NN_ERR_NUMERIC, "the weights became NaN or infinite at epoch %d, batch %d",
                                e, t->batches);

        nn_epoch_record rec;
        memset(&rec, 0, sizeof rec);
        rec.epoch = e;
        rec.loss = t->loss_sum / (double)N;
        rec.regularization_loss = t->reg_sum / (double)N;
        rec.n_metrics = c->n_metrics;
        for (int k = 0; k < c->n_metrics; k++) {
            rec.metric_names[k] = c->metric_names[k];
            rec.metrics[k] = t->sums[k] / (double)N;
        }
        if (t->has_val) {
            nn_eval_result ev;
            nn_status st = evaluate(m, c, &t->val, t->fit.batch_size, t->pred, &ev, err);
            if (st != NN_OK) return st;
            if (!isfinite(ev.loss))
                return nn_error_set(err, NN_ERR_NUMERIC, "the validation loss became NaN or infinite at epoch %d", e);
            rec.has_val = 1;
            rec.val_loss = ev.loss;
            for (int k = 0; k < c->n_metrics; k++) rec.val_metrics[k] = ev.metrics[k];
        }
        rec.learning_rate = nn_optim_lr(t->opt);
        early_stopping_update(t, &rec, e - 1);
        t->epoch = e;
        t->batch = 0;
        if (t->epoch >= t->fit.epochs || t->stopped) {
            /* Keras 3 restores the best weights at the end of training, stopped early or not. */
            t->finished = 1;
            if (t->has_best_params) memcpy(nn_model_params(m), t->best_params, np * sizeof(float));
        }
        rec.seconds = t->elapsed + (now_seconds() - t0);
        if (cb->on_epoch && cb->on_epoch(cb->user, t, &rec))
            return nn_error_set(err, NN_ERR_CALLBACK, "stopped by the epoch callback after epoch %d", e);
    }
    t->finished = 1;
    return NN_OK;
}

/* ---------------------------------------------------------------- checkpoints */

/* Layout (native little-endian): header, params, best params (if any), optimizer
 * state, then an FNV-1a checksum of everything before it. The header carries a
 * fingerprint of the model and data so a checkpoint is never restored into a
 * different training run. */
#define CKPT_MAGIC "FITDCKP1"
#define CKPT_VERSION 2 /* 2: the epoch in progress (batch boundary checkpoints) */

typedef struct ckpt_header {
    char magic[8];
    uint32_t version, epoch, stopped, finished;
    uint32_t es_has_best, es_wait, best_epoch, has_best_params;
    double es_best;
    uint64_t rng[4];
    uint64_t n_params, n_train, batches, optim_bytes;
    uint64_t batch, epoch_rng[4];
    double loss_sum, reg_sum, sums[NN_MAX_METRICS], elapsed;
} ckpt_header;

#define FNV1A_INIT 1469598103934665603ULL

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* A checkpoint in memory, as an nn_read_at_fn source. */
typedef struct mem_src {
    const unsigned char *p;
    size_t len;
} mem_src;

static int mem_read_at(void *src, size_t off, void *dst, size_t n)
{
    const mem_src *m = src;
    if (off > m->len || n > m->len - off) return -1;
    memcpy(dst, m->p + off, n);
    return 0;
}

nn_status nn_trainer_checkpoint(const nn_trainer *t, void **buf, size_t *len, nn_error *err)
{
    size_t np = nn_model_param_count(t->m);
    size_t ob = nn_optim_state_bytes(t->opt);
    size_t pb = np * sizeof(float);
    size_t total = sizeof(ckpt_header) + pb + (t->has_best_params ? pb : 0) + ob + sizeof(uint64_t);
    unsigned char *p = malloc(total);
    if (!p) return nn_error_set(err, NN_ERR_NOMEM, "out of memory writing a checkpoint");
    ckpt_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CKPT_MAGIC, 8);
    h.version = CKPT_VERSION;
    h.epoch = (uint32_t)t->epoch;
    h.stopped = (uint32_t)t->stopped;
    h.finished = (uint32_t)t->finished;
    h.es_has_best = (uint32_t)t->es_has_best;
    h.es_wait = (uint32_t)t->es_wait;
    h.best_epoch = (uint32_t)t->best_epoch;
    h.has_best_params = (uint32_t)t->has_best_params;
    h.es_best = t->es_best;
    memcpy(h.rng, t->rng.s, sizeof h.rng);
    h.n_params = np;
    h.n_train = t->train.n;
    h.batches = (uint64_t)t->batches;
    h.optim_bytes = ob;
    h.batch = (uint64_t)t->batch;
    memcpy(h.epoch_rng, t->epoch_rng.s, sizeof h.epoch_rng);
    h.loss_sum = t->loss_sum;
    h.reg_sum = t->reg_sum;
    memcpy(h.sums, t->sums, sizeof h.sums);
    h.elapsed = t->elapsed;
    size_t off = 0;
    memcpy(p, &h, sizeof h);
    off += sizeof h;
    memcpy(p + off, nn_model_params_const(t->m), pb);
    off += pb;
    if (t->has_best_params) {
        memcpy(p + off, t->best_params, pb);
        off += pb;
    }
    nn_optim_state_save(t->opt, p + off);
    off += ob;
    uint64_t sum = fnv1a(FNV1A_INIT, p, off);
    memcpy(p + off, &sum, sizeof sum);
    *buf = p;
    *len = total;
    return NN_OK;
}

/* The header of a checkpoint (len bytes, read through `read`) into *h and its
 * length into *hlen, after checking the magic, version, checksum (over the whole,
 * read in chunks), parameter count (np) and total length. The optimizer state's
 * length is only checked to fit, not against an optimizer: nn_optim_state_load
 * checks it against its own when one is restored. */
static nn_status ckpt_read(nn_read_at_fn read, void *src, size_t len, size_t np, ckpt_header *h,
                           size_t *hlen, nn_error *err)
{
    size_t pb = np * sizeof(float);
    /* Version 1 (epoch-boundary checkpoints, as a database from an older fitd
     * holds them) is version 2's header without the epoch-in-progress fields:
     * read it with those at zero, i.e. at the start of the next epoch. */
    const size_t v1_len = offsetof(ckpt_header, batch);
    if (len < v1_len + sizeof(uint64_t)) return nn_error_set(err, NN_ERR_PARSE, "checkpoint is truncated");
    memset(h, 0, sizeof *h);
    if (read(src, 0, h, v1_len)) return nn_error_set(err, NN_ERR_IO, "checkpoint cannot be read");
    if (memcmp(h->magic, CKPT_MAGIC, 8) != 0 || (h->version != 1 && h->version != CKPT_VERSION))
        return nn_error_set(err, NN_ERR_PARSE, "not a fitd checkpoint (bad magic or version)");
    *hlen = h->version == 1 ? v1_len : sizeof *h;
    if (len < *hlen + sizeof(uint64_t)) return nn_error_set(err, NN_ERR_PARSE, "checkpoint is truncated");
    uint64_t sum;
    unsigned char chunk[16384];
    if (read(src, v1_len, (unsigned char *)h + v1_len, *hlen - v1_len) ||
        read(src, len - sizeof sum, &sum, sizeof sum))
        return nn_error_set(err, NN_ERR_IO, "checkpoint cannot be read");
    /* The header is in hand; the checksum goes on from its end. */
    uint64_t got = fnv1a(FNV1A_INIT, (const unsigned char *)h, *hlen);
    for (size_t off = *hlen, end = len - sizeof sum; off < end;) {
        size_t n = end - off < sizeof chunk ? end - off : sizeof chunk;
        if (read(src, off, chunk, n)) return nn_error_set(err, NN_ERR_IO, "checkpoint cannot be read");
        got = fnv1a(got, chunk, n);
        off += n;
    }
    if (sum != got) return nn_error_set(err, NN_ERR_PARSE, "checkpoint checksum mismatch");
    if (h->n_params != np)
        return nn_error_set(err, NN_ERR_MISMATCH, "checkpoint has %llu parameters, this model %zu",
                            (unsigned long long)h->n_params, np);
    if (h->batch >= h->batches || h->batches > INT_MAX || h->epoch > INT_MAX)
        return nn_error_set(err, NN_ERR_PARSE, "checkpoint's epoch or batch is out of range");
    /* Checked before it enters a sum: a crafted value could wrap it to len. */
    if (h->optim_bytes > len)
        return nn_error_set(err, NN_ERR_PARSE, "checkpoint's optimizer state is longer than it");
    size_t expect = *hlen + pb + (h->has_best_params ? pb : 0) + h->optim_bytes + sizeof(uint64_t);
    if (len != expect) return nn_error_set(err, NN_ERR_PARSE, "checkpoint has %zu bytes, expected %zu", len, expect);
    return NN_OK;
}

nn_status nn_model_restore_checkpoint_at(nn_model *m, nn_read_at_fn read, void *src, size_t len,
                                         int *epoch, int *batch, nn_error *err)
{
    ckpt_header h;
    size_t hlen = 0, np = nn_model_param_count(m);
    nn_status rc = ckpt_read(read, src, len, np, &h, &hlen, err);
    if (rc != NN_OK) return rc;
    if (read(src, hlen, nn_model_params(m), np * sizeof(float)))
        return nn_error_set(err, NN_ERR_IO, "checkpoint cannot be read");
    if (epoch) *epoch = (int)h.epoch;
    if (batch) *batch = (int)h.batch;
    return NN_OK;
}

nn_status nn_model_restore_checkpoint(nn_model *m, const void *buf, size_t len, int *epoch,
                                      int *batch, nn_error *err)
{
    mem_src src = {buf, len};
    return nn_model_restore_checkpoint_at(m, mem_read_at, &src, len, epoch, batch, err);
}

nn_status nn_trainer_restore(nn_trainer *t, const void *buf, size_t len, nn_error *err)
{
    const unsigned char *p = buf;
    mem_src src = {p, len};
    ckpt_header h;
    size_t hlen = 0, np = nn_model_param_count(t->m), pb = np * sizeof(float);
    nn_status rc = ckpt_read(mem_read_at, &src, len, np, &h, &hlen, err);
    if (rc != NN_OK) return rc;
    if (h.n_train != t->train.n || h.batches != (uint64_t)t->batches)
        return nn_error_set(err, NN_ERR_MISMATCH,
                            "checkpoint is for another run (%llu parameters, %llu samples; this run has %zu, %zu)",
                            (unsigned long long)h.n_params, (unsigned long long)h.n_train, np, t->train.n);
    if (h.has_best_params && !t->best_params) {
        t->best_params = malloc(pb ? pb : 1);
        if (!t->best_params) return nn_error_set(err, NN_ERR_NOMEM, "out of memory restoring a checkpoint");
    }
    size_t off = hlen + pb + (h.has_best_params ? pb : 0);
    rc = nn_optim_state_load(t->opt, p + off, (size_t)h.optim_bytes, err);
    if (rc != NN_OK) return rc;
    memcpy(nn_model_params(t->m), p + hlen, pb);
    if (h.has_best_params) memcpy(t->best_params, p + hlen + pb, pb);
    t->epoch = (int)h.epoch;
    t->stopped = (int)h.stopped;
    /* A finished run restored into a trainer with more epochs (and not stopped
     * early) goes on: a resume for more epochs continues it as if never stopped. */
    t->finished = (int)h.finished && !(h.epoch < (uint32_t)t->fit.epochs && !h.stopped);
    t->es_has_best = (int)h.es_has_best;
    t->es_wait = (int)h.es_wait;
    t->best_epoch = (int)h.best_epoch;
    t->has_best_params = (int)h.has_best_params;
    t->es_best = h.es_best;
    memcpy(t->rng.s, h.rng, sizeof h.rng);
    t->batch = (int)h.batch;
    memcpy(t->epoch_rng.s, h.epoch_rng, sizeof h.epoch_rng);
    t->loss_sum = h.loss_sum;
    t->reg_sum = h.reg_sum;
    memcpy(t->sums, h.sums, sizeof t->sums);
    t->elapsed = h.elapsed;
    return NN_OK;
}
