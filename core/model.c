/*
 * model.c — the Sequential model: layout of the flat parameter buffer, forward and
 * backward passes over a batch, predict, and weights in and out as safetensors.
 *
 * All parameters live in one allocation (llm.c, KANN): each dense layer keeps the
 * offsets of its kernel (in, units) and bias (units). Activations and their
 * gradients live in scratch buffers owned by the model and sized for the largest
 * batch seen, so the training loop allocates nothing after its first batch.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_int.h"

typedef struct layer {
    nn_layer_spec spec; /* resolved: final name */
    int in, out;        /* widths */
    size_t w_off, b_off; /* dense: offsets into params; b_off == SIZE_MAX without bias */
    int keep_z;         /* dense: the activation's backward needs the pre-activation */
    int need_dx;        /* some earlier layer has parameters: propagate gradients */
    float *z, *a;       /* (B, out): pre-activation (== a unless keep_z) and output */
    float *mask;        /* dropout: (B, out) */
} layer;

struct nn_model {
    int input_dim, n_layers;
    layer *layers;
    size_t n_params;
    float *params;
    int n_tensors;
    nn_tensor_info *tensors;
    int cap_b;          /* rows the scratch buffers hold */
    int max_width;
    float *scratch;     /* one block for every layer's z, a, mask */
    float *d_a, *d_b;   /* (B, max_width) ping-pong gradient buffers */
    float *wt;          /* W^T of the widest narrow layer (nn_dense_backward_ws), or NULL */
    nn_parallel par;    /* nn_model_set_parallel; par.n == 0: none */
    uint64_t step;      /* nn_model_set_step */
};

static int act_backward_needs_z(nn_activation a)
{
    switch (a) {
    case NN_ACT_LINEAR:
    case NN_ACT_RELU:
    case NN_ACT_SIGMOID:
    case NN_ACT_TANH:
    case NN_ACT_SOFTMAX: return 0;
    default: return 1;
    }
}

/* Keras names unnamed layers per class: dense, dense_1, dense_2, ... */
static void default_name(char *dst, const char *base, int count)
{
    if (count == 0)
        snprintf(dst, NN_NAME_MAX, "%s", base);
    else
        snprintf(dst, NN_NAME_MAX, "%s_%d", base, count);
}

void nn_model_free(nn_model *m)
{
    if (!m) return;
    free(m->layers);
    free(m->params);
    free(m->tensors);
    free(m->scratch);
    free(m->d_a);
    free(m->d_b);
    free(m->wt);
    free(m);
}

static nn_status check_spec(const nn_model_spec *spec, nn_error *err)
{
    if (!spec || spec->input_dim < 1)
        return nn_error_set(err, NN_ERR_INVALID, "input_dim must be >= 1");
    if (spec->n_layers < 1 || !spec->layers)
        return nn_error_set(err, NN_ERR_INVALID, "a model needs at least one layer");
    int last_dense = -1;
    for (int i = 0; i < spec->n_layers; i++) {
        const nn_layer_spec *l = &spec->layers[i];
        if (l->kind == NN_LAYER_DENSE) {
            if (l->units < 1)
                return nn_error_set(err, NN_ERR_INVALID, "layer %d: units must be >= 1", i);
            if ((unsigned)l->activation >= NN_ACT_COUNT)
                return nn_error_set(err, NN_ERR_INVALID, "layer %d: unknown activation", i);
            last_dense = i;
        } else if (l->kind == NN_LAYER_DROPOUT) {
            /* The mask is drawn in float32, where a rate within 3e-8 of 1 is 1. */
            if (!(l->rate >= 0 && (float)l->rate < 1.0f))
                return nn_error_set(err, NN_ERR_INVALID, "layer %d: dropout rate must be in [0, 1)", i);
        } else {
            return nn_error_set(err, NN_ERR_INVALID, "layer %d: unknown layer kind", i);
        }
    }
    if (last_dense < 0)
        return nn_error_set(err, NN_ERR_INVALID, "a model needs at least one dense layer");
    return NN_OK;
}

nn_model *nn_model_new(const nn_model_spec *spec, uint64_t seed, nn_error *err)
{
    nn_model *m = NULL;
    if (check_spec(spec, err) != NN_OK) return NULL;
    m = calloc(1, sizeof *m);
    if (!m) goto nomem;
    m->input_dim = spec->input_dim;
    m->n_layers = spec->n_layers;
    m->layers = calloc((size_t)spec->n_layers, sizeof *m->layers);
    m->tensors = calloc((size_t)spec->n_layers * 2, sizeof *m->tensors);
    if (!m->layers || !m->tensors) goto nomem;

    /* Shapes, names and offsets. */
    int width = spec->input_dim, n_dense = 0, n_dropout = 0, has_params_before = 0;
    size_t off = 0;
    m->max_width = width;
    for (int i = 0; i < spec->n_layers; i++) {
        layer *L = &m->layers[i];
        L->spec = spec->layers[i];
        L->spec.name[NN_NAME_MAX - 1] = 0;
        L->in = width;
        L->need_dx = has_params_before;
        if (L->spec.kind == NN_LAYER_DENSE) {
            if (!L->spec.name[0]) default_name(L->spec.name, "dense", n_dense);
            n_dense++;
            L->out = L->spec.units;
            L->keep_z = act_backward_needs_z(L->spec.activation);
            size_t room = (SIZE_MAX / sizeof(float)) / 4 - off; /* off stays below the cap */
            if ((size_t)L->in * (size_t)L->out + (size_t)L->out > room) {
                nn_error_set(err, NN_ERR_LIMIT, "layer %s is too large", L->spec.name);
                goto fail;
            }
            L->w_off = off;
            off += (size_t)L->in * (size_t)L->out;
            L->b_off = SIZE_MAX;
            if (L->spec.use_bias) {
                L->b_off = off;
                off += (size_t)L->out;
            }
            has_params_before = 1;
        } else {
            if (!L->spec.name[0]) default_name(L->spec.name, "dropout", n_dropout);
            n_dropout++;
            L->out = L->in;
        }
        width = L->out;
        if (width > m->max_width) m->max_width = width;
    }
    for (int i = 0; i < m->n_layers; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(m->layers[i].spec.name, m->layers[j].spec.name) == 0) {
                nn_error_set(err, NN_ERR_INVALID, "two layers are named '%s'", m->layers[i].spec.name);
                goto fail;
            }
    m->n_params = off;
    m->params = malloc((off ? off : 1) * sizeof(float));
    if (!m->params) goto nomem;
    size_t wt_count = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const layer *L = &m->layers[i];
        size_t n = (size_t)L->in * (size_t)L->out;
        if (L->spec.kind == NN_LAYER_DENSE && L->need_dx && L->out <= NN_DENSE_NARROW && n > wt_count)
            wt_count = n;
    }
    if (wt_count) {
        m->wt = malloc(wt_count * sizeof(float));
        if (!m->wt) goto nomem;
    }

    /* Tensors and initial values: each tensor draws from its own stream, so adding
     * a layer does not change the others' initial weights. */
    for (int i = 0; i < m->n_layers; i++) {
        layer *L = &m->layers[i];
        if (L->spec.kind != NN_LAYER_DENSE) continue;
        for (int part = 0; part < 2; part++) {
            if (part == 1 && L->b_off == SIZE_MAX) continue;
            nn_tensor_info *t = &m->tensors[m->n_tensors++];
            const nn_init_spec *init = part ? &L->spec.bias_init : &L->spec.kernel_init;
            nn_rng rng;
            snprintf(t->name, sizeof t->name, "%s/%s", L->spec.name, part ? "bias" : "kernel");
            t->ndim = part ? 1 : 2;
            t->shape[0] = part ? L->out : L->in;
            t->shape[1] = part ? 0 : L->out;
            t->offset = part ? L->b_off : L->w_off;
            t->count = part ? (size_t)L->out : (size_t)L->in * (size_t)L->out;
            nn_rng_seed(&rng, init->has_seed ? init->seed : nn_seed_mix(seed, (uint64_t)(2 * i + part)));
            /* Keras' compute_fans: a 1-D shape (units,) has fan_in = fan_out = units. */
            nn_init_fill(m->params + t->offset, t->count, part ? L->out : L->in, L->out, init, &rng);
        }
    }
    return m;

nomem:
    nn_error_set(err, NN_ERR_NOMEM, "out of memory building the model");
fail:
    nn_model_free(m);
    return NULL;
}

void nn_model_set_parallel(nn_model *m, const nn_parallel *par)
{
    if (par) m->par = *par;
    else memset(&m->par, 0, sizeof m->par);
}

void nn_model_set_step(nn_model *m, uint64_t step)
{
    m->step = step;
}

const nn_parallel *nn_model_parallel(const nn_model *m)
{
    return nn_par_n(&m->par) > 1 ? &m->par : NULL;
}

int nn_model_input_dim(const nn_model *m) { return m->input_dim; }
int nn_model_output_dim(const nn_model *m) { return m->layers[m->n_layers - 1].out; }
size_t nn_model_param_count(const nn_model *m) { return m->n_params; }
int nn_model_layer_count(const nn_model *m) { return m->n_layers; }
const nn_layer_spec *nn_model_layer(const nn_model *m, int i) { return &m->layers[i].spec; }
int nn_model_tensor_count(const nn_model *m) { return m->n_tensors; }
const nn_tensor_info *nn_model_tensor(const nn_model *m, int i) { return &m->tensors[i]; }
float *nn_model_params(nn_model *m) { return m->params; }
const float *nn_model_params_const(const nn_model *m) { return m->params; }

nn_activation nn_model_output_activation(const nn_model *m)
{
    for (int i = m->n_layers - 1; i >= 0; i--)
        if (m->layers[i].spec.kind == NN_LAYER_DENSE) return m->layers[i].spec.activation;
    return NN_ACT_LINEAR;
}

/* Grow the scratch buffers to hold B rows. The only allocation on the training
 * path, and it happens on the first (largest) batch only. */
static nn_status ensure_scratch(nn_model *m, int B)
{
    if (B <= m->cap_b) return NN_OK;
    size_t total = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const layer *L = &m->layers[i];
        size_t n = (size_t)B * (size_t)L->out;
        total += n;                                                  /* a */
        if (L->spec.kind == NN_LAYER_DENSE && L->keep_z) total += n; /* z */
        if (L->spec.kind == NN_LAYER_DROPOUT) total += n;            /* mask */
    }
    float *s = malloc(total * sizeof(float));
    float *da = malloc((size_t)B * (size_t)m->max_width * sizeof(float));
    float *db = malloc((size_t)B * (size_t)m->max_width * sizeof(float));
    if (!s || !da || !db) {
        free(s);
        free(da);
        free(db);
        return NN_ERR_NOMEM;
    }
    free(m->scratch);
    free(m->d_a);
    free(m->d_b);
    m->scratch = s;
    m->d_a = da;
    m->d_b = db;
    for (int i = 0; i < m->n_layers; i++) {
        layer *L = &m->layers[i];
        size_t n = (size_t)B * (size_t)L->out;
        L->a = s;
        s += n;
        L->z = L->a;
        L->mask = NULL;
        if (L->spec.kind == NN_LAYER_DENSE && L->keep_z) {
            L->z = s;
            s += n;
        }
        if (L->spec.kind == NN_LAYER_DROPOUT) {
            L->mask = s;
            s += n;
        }
    }
    m->cap_b = B;
    return NN_OK;
}

/* Forward over B rows; returns the output buffer (B, out_dim). Dropout is active
 * only when rng is non-NULL (training). Adds the activity penalties to *act_pen. */
static const float *forward(nn_model *m, const float *x, int B, nn_rng *rng, double *act_pen)
{
    const float *in = x;
    for (int i = 0; i < m->n_layers; i++) {
        layer *L = &m->layers[i];
        if (L->spec.kind == NN_LAYER_DENSE) {
            const float *b = L->b_off == SIZE_MAX ? NULL : m->params + L->b_off;
            nn_dense_forward_par(L->a, L->z, in, m->params + L->w_off, b, B, L->in, L->out,
                                 L->spec.activation, nn_model_parallel(m));
            if (act_pen && nn_reg_active(L->spec.activity_reg))
                *act_pen += nn_reg_penalty(L->a, (size_t)B * (size_t)L->out, L->spec.activity_reg) / B;
        } else if (rng && L->spec.rate > 0) {
            nn_rng own, *r = rng;
            if (L->spec.has_seed) { /* its own stream: the model's does not move */
                nn_rng_seed(&own, nn_seed_mix(L->spec.seed, m->step));
                r = &own;
            }
            nn_dropout_forward(L->a, L->mask, in, (size_t)B * (size_t)L->out, (float)L->spec.rate, r,
                               nn_model_parallel(m));
        } else {
            memcpy(L->a, in, (size_t)B * (size_t)L->out * sizeof(float));
        }
        in = L->a;
    }
    return in;
}

/* nn_reg_fill over parts of w: the partial penalties are added in part order, so
 * the sum is the same for a given part count. */
typedef struct fill_job {
    float *dw;
    const float *w;
    size_t n;
    nn_regularizer r;
    int parts;
    double pen[NN_MAX_PARALLEL];
} fill_job;

static void fill_task(void *arg, int i)
{
    fill_job *j = arg;
    size_t lo, hi;
    nn_par_range(j->n, j->parts, i, 16, &lo, &hi);
    j->pen[i] = hi > lo ? nn_reg_fill(j->dw + lo, j->w + lo, hi - lo, j->r) : 0.0;
}

static double reg_fill_par(float *dw, const float *w, size_t n, nn_regularizer r,
                           const nn_parallel *par)
{
    int parts = nn_par_parts(par, n);
    if (parts == 1 || parts > NN_MAX_PARALLEL) return nn_reg_fill(dw, w, n, r);
    fill_job j = {dw, w, n, r, parts, {0}};
    nn_par_run(par, parts, fill_task, &j);
    double pen = 0;
    for (int i = 0; i < parts; i++) pen += j.pen[i];
    return pen;
}

/* Kernel and bias penalties of the current weights. */
static double weight_penalty(const nn_model *m)
{
    double pen = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const layer *L = &m->layers[i];
        if (L->spec.kind != NN_LAYER_DENSE) continue;
        if (nn_reg_active(L->spec.kernel_reg))
            pen += nn_reg_penalty(m->params + L->w_off, (size_t)L->in * (size_t)L->out, L->spec.kernel_reg);
        if (L->b_off != SIZE_MAX && nn_reg_active(L->spec.bias_reg))
            pen += nn_reg_penalty(m->params + L->b_off, (size_t)L->out, L->spec.bias_reg);
    }
    return pen;
}

double nn_model_grad(nn_model *m, const nn_loss_spec *loss, const float *x, const float *y, int B,
                     float *grads, nn_rng *rng, double *reg_loss, float *pred, nn_status *status)
{
    if (status) *status = NN_OK;
    if (ensure_scratch(m, B) != NN_OK) {
        if (status) *status = NN_ERR_NOMEM;
        return NAN;
    }
    double pen = 0;
    const float *out = forward(m, x, B, rng, &pen);
    int C = nn_model_output_dim(m);
    if (pred) memcpy(pred, out, (size_t)B * (size_t)C * sizeof(float));

    float *d_out = m->d_a, *d_in = m->d_b; /* gradient w.r.t. this layer's output / input */
    double data_loss = nn_loss_forward(d_out, out, y, B, C, loss);

    for (int i = m->n_layers - 1; i >= 0; i--) {
        layer *L = &m->layers[i];
        const float *in = i ? m->layers[i - 1].a : x;
        size_t n_out = (size_t)B * (size_t)L->out;
        if (L->spec.kind == NN_LAYER_DENSE) {
            /* The activity penalty was summed in the forward pass; only its gradient here. */
            if (nn_reg_active(L->spec.activity_reg))
                nn_reg_grad(d_out, L->a, n_out, L->spec.activity_reg, 1.0f / (float)B);
            nn_act_backward_par(d_out, d_out, L->z, L->a, B, L->out, L->spec.activation,
                                nn_model_parallel(m)); /* now dL/dz */
            float *w = m->params + L->w_off;
            float *dw = grads + L->w_off;
            float *db = L->b_off == SIZE_MAX ? NULL : grads + L->b_off;
            /* The kernel's penalty gradient first, then the GEMM adds x^T dz to it. A
             * layer with a kernel regularizer but none on its bias fills db with zeros
             * so that both accumulate. */
            int acc = nn_reg_active(L->spec.kernel_reg);
            if (acc) {
                pen += reg_fill_par(dw, w, (size_t)L->in * (size_t)L->out, L->spec.kernel_reg,
                                    nn_model_parallel(m));
                if (db) pen += nn_reg_fill(db, m->params + L->b_off, (size_t)L->out, L->spec.bias_reg);
            }
            nn_dense_backward_par(L->need_dx ? d_in : NULL, dw, db, d_out, in, w, B, L->in, L->out,
                                  acc, m->wt, nn_model_parallel(m));
            if (!acc && db && nn_reg_active(L->spec.bias_reg)) {
                nn_reg_grad(db, m->params + L->b_off, (size_t)L->out, L->spec.bias_reg, 1.0f);
                pen += nn_reg_penalty(m->params + L->b_off, (size_t)L->out, L->spec.bias_reg);
            }
        } else {
            if (!L->need_dx) break;
            if (rng && L->spec.rate > 0)
                nn_dropout_backward(d_in, d_out, L->mask, n_out, nn_model_parallel(m));
            else
                memcpy(d_in, d_out, n_out * sizeof(float));
        }
        if (!L->need_dx) break;
        float *t = d_out;
        d_out = d_in;
        d_in = t;
    }
    if (reg_loss) *reg_loss = pen;
    return data_loss + pen;
}

double nn_model_eval_batch(nn_model *m, const nn_loss_spec *loss, const float *x, const float *y,
                           int B, float *pred, double *reg_loss, nn_status *status)
{
    if (status) *status = NN_OK;
    if (ensure_scratch(m, B) != NN_OK) {
        if (status) *status = NN_ERR_NOMEM;
        return NAN;
    }
    double pen = 0;
    const float *out = forward(m, x, B, NULL, &pen);
    int C = nn_model_output_dim(m);
    if (pred) memcpy(pred, out, (size_t)B * (size_t)C * sizeof(float));
    pen += weight_penalty(m);
    if (reg_loss) *reg_loss = pen;
    return y ? nn_loss_forward(NULL, out, y, B, C, loss) + pen : pen;
}

#define PREDICT_CHUNK 256

nn_status nn_model_predict(nn_model *m, const float *x, size_t n, float *out, nn_error *err)
{
    int C = nn_model_output_dim(m);
    for (size_t i = 0; i < n; i += PREDICT_CHUNK) {
        int B = (int)(n - i < PREDICT_CHUNK ? n - i : PREDICT_CHUNK);
        if (ensure_scratch(m, B) != NN_OK)
            return nn_error_set(err, NN_ERR_NOMEM, "out of memory in predict");
        const float *o = forward(m, x + i * (size_t)m->input_dim, B, NULL, NULL);
        memcpy(out + i * (size_t)C, o, (size_t)B * (size_t)C * sizeof(float));
    }
    return NN_OK;
}

nn_status nn_model_save_safetensors(const nn_model *m, const nn_kv *meta, int n_meta, void **buf,
                                    size_t *len, nn_error *err)
{
    nn_st_tensor *t = calloc((size_t)m->n_tensors + 1, sizeof *t);
    if (!t) return nn_error_set(err, NN_ERR_NOMEM, "out of memory saving weights");
    for (int i = 0; i < m->n_tensors; i++) {
        const nn_tensor_info *ti = &m->tensors[i];
        t[i].name = ti->name;
        t[i].ndim = ti->ndim;
        t[i].shape[0] = ti->shape[0];
        t[i].shape[1] = ti->shape[1];
        t[i].data = m->params + ti->offset;
    }
    nn_status rc = nn_st_encode(t, m->n_tensors, meta, n_meta, buf, len, err);
    free(t);
    return rc;
}

nn_status nn_model_load_safetensors(nn_model *m, const void *buf, size_t len, nn_error *err)
{
    nn_st_tensor *t = NULL;
    int n = 0;
    nn_status rc = nn_st_decode(buf, len, 0, &t, &n, err); /* stored uploads predate NN_ST_EXACT */
    if (rc != NN_OK) return rc;
    /* Check everything before changing anything: a mismatch leaves the model as it was. */
    int *match = calloc((size_t)m->n_tensors + 1, sizeof *match);
    if (!match) {
        rc = nn_error_set(err, NN_ERR_NOMEM, "out of memory loading weights");
        goto out;
    }
    for (int j = 0; j < n; j++) {
        int found = -1;
        for (int i = 0; i < m->n_tensors; i++)
            if (strcmp(t[j].name, m->tensors[i].name) == 0) found = i;
        if (found < 0) {
            rc = nn_error_set(err, NN_ERR_MISMATCH, "the weights have a tensor '%s' that the model does not",
                              t[j].name);
            goto out;
        }
        const nn_tensor_info *ti = &m->tensors[found];
        int same = t[j].ndim == ti->ndim && t[j].shape[0] == ti->shape[0] &&
                   (ti->ndim == 1 || t[j].shape[1] == ti->shape[1]);
        if (!same) {
            char want[48], got[96];
            if (ti->ndim == 1)
                snprintf(want, sizeof want, "[%lld]", (long long)ti->shape[0]);
            else
                snprintf(want, sizeof want, "[%lld, %lld]", (long long)ti->shape[0], (long long)ti->shape[1]);
            int k = snprintf(got, sizeof got, "[");
            for (int d = 0; d < t[j].ndim && d < 4 && k < (int)sizeof got - 24; d++)
                k += snprintf(got + k, sizeof got - (size_t)k, "%s%lld", d ? ", " : "", (long long)t[j].shape[d]);
            snprintf(got + k, sizeof got - (size_t)k, "]");
            rc = nn_error_set(err, NN_ERR_MISMATCH, "tensor '%s' has shape %s, the model needs %s", t[j].name,
                              got, want);
            goto out;
        }
        match[found] = j + 1;
    }
    for (int i = 0; i < m->n_tensors; i++)
        if (!match[i]) {
            rc = nn_error_set(err, NN_ERR_MISMATCH, "the weights lack tensor '%s'", m->tensors[i].name);
            goto out;
        }
    for (int i = 0; i < m->n_tensors; i++)
        memcpy(m->params + m->tensors[i].offset, t[match[i] - 1].data, m->tensors[i].count * sizeof(float));
out:
    free(match);
    nn_st_free_list(t, n);
    return rc;
}
