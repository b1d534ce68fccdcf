/*
 * optim.c — the optimizers (SGD, Adam, AdamW, RMSprop, Adagrad), gradient clipping
 * and learning-rate schedules, with Keras 3 semantics (keras/src/optimizers/).
 *
 * The parameters are one flat float buffer seen as a list of variables (nn_var);
 * the optimizer's slots (moments, accumulators) mirror that buffer in one
 * allocation, slot k of parameter i at slots[k * n_params + i]. A step is, as in
 * Keras' BaseOptimizer.apply: clip the gradients (clipnorm per variable, else
 * global_clipnorm, else clipvalue), apply the decoupled weight decay, update
 * every variable with the learning rate the schedule gives at the current
 * iteration count, then count the iteration.
 *
 * Arithmetic is float32 as in Keras: hyperparameters become float32 where Keras
 * casts them, and expressions like `1 - beta_1` are formed in double first, as
 * Python does before the value meets a float32 tensor. The per-element loops are
 * flat and branch-free so the compiler vectorizes them (they run over every
 * parameter once per batch).
 *
 * An nn_optim is owned by one thread at a time; it keeps no global state.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_int.h"

/* Slot kinds, in their storage order. The set in use is the state's layout. */
enum {
    SLOT_MOMENTUM = 1u << 0, /* SGD velocity, Adam m, RMSprop momentum */
    SLOT_VELOCITY = 1u << 1, /* Adam v, RMSprop mean square */
    SLOT_VHAT = 1u << 2,     /* Adam amsgrad max(v) */
    SLOT_AVG_GRAD = 1u << 3, /* RMSprop centered mean gradient */
    SLOT_ACCUM = 1u << 4,    /* Adagrad sum of squares */
    SLOT_KINDS = 5
};

struct nn_optim {
    nn_optimizer_spec spec;
    nn_var *vars;
    int n_vars;
    size_t n_params;
    int64_t iterations;
    unsigned layout; /* SLOT_* bits */
    int n_slots;
    float *slots; /* n_slots * n_params */
    float *momentum, *velocity, *vhat, *avg_grad, *accum; /* into slots, or NULL */
};

/* The update kernels run over every parameter once per batch: NN_VEC_KERNEL
 * (nn_int.h) vectorizes and clones them. The clones give bit-identical results:
 * the operations are IEEE (sqrt and division included) and contraction into FMA
 * is off (gcc's ISO C default; the pragma below for clang). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#define VEC_KERNEL NN_VEC_KERNEL

#define STATE_MAGIC "NNOP"
#define STATE_VERSION 1u
#define STATE_HEADER_BYTES 40

static const char *optim_kind_name(nn_optimizer_kind k)
{
    switch (k) {
    case NN_OPT_SGD: return "sgd";
    case NN_OPT_ADAM: return "adam";
    case NN_OPT_ADAMW: return "adamw";
    case NN_OPT_RMSPROP: return "rmsprop";
    case NN_OPT_ADAGRAD: return "adagrad";
    case NN_OPT_COUNT: break;
    }
    return "unknown";
}

static unsigned optim_layout(const nn_optimizer_spec *s)
{
    switch (s->kind) {
    case NN_OPT_SGD: return s->momentum != 0 ? SLOT_MOMENTUM : 0u;
    case NN_OPT_ADAM:
    case NN_OPT_ADAMW: return SLOT_MOMENTUM | SLOT_VELOCITY | (s->amsgrad ? SLOT_VHAT : 0u);
    case NN_OPT_RMSPROP:
        return SLOT_VELOCITY | (s->momentum > 0 ? SLOT_MOMENTUM : 0u) |
               (s->centered ? SLOT_AVG_GRAD : 0u);
    case NN_OPT_ADAGRAD: return SLOT_ACCUM;
    case NN_OPT_COUNT: break;
    }
    return 0u;
}

static int count_bits(unsigned x)
{
    int n = 0;
    for (; x; x &= x - 1) n++;
    return n;
}

static int finite_nonneg(double x)
{
    return isfinite(x) && x >= 0;
}

static nn_status optim_check_spec(const nn_optimizer_spec *s, nn_error *err)
{
    if ((int)s->kind < 0 || (int)s->kind >= (int)NN_OPT_COUNT)
        return nn_error_set(err, NN_ERR_INVALID, "unknown optimizer kind %d", (int)s->kind);
    if (!finite_nonneg(s->learning_rate))
        return nn_error_set(err, NN_ERR_INVALID, "learning_rate must be finite and >= 0");
    if (!finite_nonneg(s->clipnorm) || !finite_nonneg(s->clipvalue) ||
        !finite_nonneg(s->global_clipnorm))
        return nn_error_set(err, NN_ERR_INVALID,
                            "clipnorm, clipvalue and global_clipnorm must be finite and >= 0");
    if (!finite_nonneg(s->weight_decay))
        return nn_error_set(err, NN_ERR_INVALID, "weight_decay must be finite and >= 0");
    /* Keras refuses more than one clipping option. */
    if ((s->clipnorm > 0) + (s->clipvalue > 0) + (s->global_clipnorm > 0) > 1)
        return nn_error_set(err, NN_ERR_INVALID,
                            "only one of clipnorm, clipvalue and global_clipnorm can be set");
    switch (s->schedule.kind) {
    case NN_SCHED_CONSTANT: break;
    case NN_SCHED_EXPONENTIAL_DECAY:
        if (s->schedule.decay_steps <= 0)
            return nn_error_set(err, NN_ERR_INVALID, "schedule decay_steps must be > 0");
        if (!finite_nonneg(s->schedule.decay_rate))
            return nn_error_set(err, NN_ERR_INVALID,
                                "schedule decay_rate must be finite and >= 0");
        break;
    case NN_SCHED_COSINE_DECAY:
        if (s->schedule.decay_steps <= 0)
            return nn_error_set(err, NN_ERR_INVALID, "schedule decay_steps must be > 0");
        if (!isfinite(s->schedule.alpha))
            return nn_error_set(err, NN_ERR_INVALID, "schedule alpha must be finite");
        if (s->schedule.warmup &&
            (!finite_nonneg(s->schedule.warmup_target) || s->schedule.warmup_steps < 0))
            return nn_error_set(err, NN_ERR_INVALID,
                                "schedule warmup_target and warmup_steps must be finite and >= 0");
        break;
    default: return nn_error_set(err, NN_ERR_INVALID, "unknown schedule kind %d",
                                 (int)s->schedule.kind);
    }
    switch (s->kind) {
    case NN_OPT_SGD:
        /* Keras SGD: momentum must be a float in [0, 1]. */
        if (!(s->momentum >= 0 && s->momentum <= 1))
            return nn_error_set(err, NN_ERR_INVALID, "sgd momentum must be in [0, 1]");
        break;
    case NN_OPT_ADAM:
    case NN_OPT_ADAMW:
        if (!(s->beta_1 >= 0 && s->beta_1 < 1) || !(s->beta_2 >= 0 && s->beta_2 < 1))
            return nn_error_set(err, NN_ERR_INVALID, "beta_1 and beta_2 must be in [0, 1)");
        if (!finite_nonneg(s->epsilon))
            return nn_error_set(err, NN_ERR_INVALID, "epsilon must be finite and >= 0");
        break;
    case NN_OPT_RMSPROP:
        if (!(s->rho >= 0 && s->rho <= 1))
            return nn_error_set(err, NN_ERR_INVALID, "rmsprop rho must be in [0, 1]");
        if (!finite_nonneg(s->momentum))
            return nn_error_set(err, NN_ERR_INVALID, "rmsprop momentum must be finite and >= 0");
        if (!finite_nonneg(s->epsilon))
            return nn_error_set(err, NN_ERR_INVALID, "epsilon must be finite and >= 0");
        break;
    case NN_OPT_ADAGRAD:
        if (!finite_nonneg(s->initial_accumulator))
            return nn_error_set(err, NN_ERR_INVALID,
                                "adagrad initial_accumulator_value must be finite and >= 0");
        if (!finite_nonneg(s->epsilon))
            return nn_error_set(err, NN_ERR_INVALID, "epsilon must be finite and >= 0");
        break;
    case NN_OPT_COUNT: break;
    }
    return NN_OK;
}

nn_optim *nn_optim_new(const nn_optimizer_spec *spec, const nn_var *vars, int n_vars,
                       size_t n_params, nn_error *err)
{
    nn_optim *o = NULL;
    if (!spec || n_vars < 0 || (n_vars > 0 && !vars)) {
        nn_error_set(err, NN_ERR_INVALID, "nn_optim_new: bad arguments");
        return NULL;
    }
    if (optim_check_spec(spec, err) != NN_OK) return NULL;
    for (int i = 0; i < n_vars; i++) {
        if (vars[i].offset > n_params || vars[i].count > n_params - vars[i].offset) {
            nn_error_set(err, NN_ERR_INVALID, "optimizer variable %d lies outside the parameters",
                         i);
            return NULL;
        }
    }
    unsigned layout = optim_layout(spec);
    int n_slots = count_bits(layout);
    if (n_params > SIZE_MAX / sizeof(float) / SLOT_KINDS) {
        nn_error_set(err, NN_ERR_NOMEM, "optimizer state too large");
        return NULL;
    }

    o = calloc(1, sizeof *o);
    if (!o) goto nomem;
    o->spec = *spec;
    o->n_params = n_params;
    o->n_vars = n_vars;
    o->layout = layout;
    o->n_slots = n_slots;
    if (n_vars > 0) {
        o->vars = malloc((size_t)n_vars * sizeof *o->vars);
        if (!o->vars) goto nomem;
        memcpy(o->vars, vars, (size_t)n_vars * sizeof *o->vars);
    }
    if (n_slots > 0 && n_params > 0) {
        o->slots = calloc((size_t)n_slots * n_params, sizeof(float));
        if (!o->slots) goto nomem;
        float *p = o->slots;
        float **dst[SLOT_KINDS] = {&o->momentum, &o->velocity, &o->vhat, &o->avg_grad, &o->accum};
        for (int k = 0; k < SLOT_KINDS; k++) {
            if (layout & (1u << k)) {
                *dst[k] = p;
                p += n_params;
            }
        }
    }
    if (o->accum) {
        float a0 = (float)spec->initial_accumulator;
        for (size_t i = 0; i < n_params; i++) o->accum[i] = a0;
    }
    return o;

nomem:
    nn_optim_free(o);
    nn_error_set(err, NN_ERR_NOMEM, "out of memory allocating the optimizer");
    return NULL;
}

void nn_optim_free(nn_optim *o)
{
    if (!o) return;
    free(o->slots);
    free(o->vars);
    free(o);
}

int64_t nn_optim_iterations(const nn_optim *o)
{
    return o->iterations;
}

/* CosineDecay's decay from `from` over ds steps, at step (<= ds). */
static float cosine_decayed(float step, float ds, float from, double alpha)
{
    const float pi = 3.14159265358979323846f;
    float cosine = 0.5f * (1.0f + cosf(pi * (step / ds)));
    return from * ((float)(1.0 - alpha) * cosine + (float)alpha);
}

/* The schedule at the current iteration count, in float32 like Keras'
 * learning_rate_schedule.py (ExponentialDecay; CosineDecay with its optional
 * linear warmup from lr0 to warmup_target, the decay then starting from there). */
static float optim_lr_f(const nn_optim *o)
{
    const nn_schedule_spec *s = &o->spec.schedule;
    float lr0 = (float)o->spec.learning_rate;
    float step = (float)o->iterations;
    switch (s->kind) {
    case NN_SCHED_EXPONENTIAL_DECAY: {
        float p = step / (float)s->decay_steps;
        if (s->staircase) p = floorf(p);
        return lr0 * powf((float)s->decay_rate, p);
    }
    case NN_SCHED_COSINE_DECAY: {
        float ds = (float)s->decay_steps;
        if (!s->warmup) return cosine_decayed(fminf(step, ds), ds, lr0, s->alpha);
        float ws = (float)s->warmup_steps, target = (float)s->warmup_target;
        step = fminf(step, ds + ws);
        if (step < ws) return (target - lr0) * (step / ws) + lr0;
        return cosine_decayed(step - ws, ds, target, s->alpha);
    }
    case NN_SCHED_CONSTANT: break;
    }
    return lr0;
}

double nn_optim_lr(const nn_optim *o)
{
    return (double)optim_lr_f(o);
}

/* ---------------------------------------------------------------- clipping */

static double sum_squares(const float *g, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * (double)g[i];
    return s;
}

/* Keras BaseOptimizer._clip_by_norm: g * c / max(||g||, c), always applied. */
VEC_KERNEL
static void clip_by_norm(float *restrict g, size_t n, float c)
{
    float norm = (float)sqrt(sum_squares(g, n));
    float denom = fmaxf(norm, c);
    if (isnan(norm)) denom = norm;
    for (size_t i = 0; i < n; i++) g[i] = g[i] * c / denom;
}

VEC_KERNEL
static void scale_values(float *restrict g, size_t n, float s)
{
    for (size_t i = 0; i < n; i++) g[i] *= s;
}

/* Elementwise clip to [-c, c]; NaN stays NaN (as ops.clip). */
VEC_KERNEL
static void clip_values(float *restrict g, size_t n, float c)
{
    for (size_t i = 0; i < n; i++) {
        float x = g[i];
        x = x < -c ? -c : x;
        g[i] = x > c ? c : x;
    }
}

/* Keras BaseOptimizer._clip_gradients: clipnorm, else global_clipnorm, else clipvalue. */
static void optim_clip(nn_optim *o, float *grads)
{
    const nn_optimizer_spec *s = &o->spec;
    if (s->clipnorm > 0) {
        float c = (float)s->clipnorm;
        for (int v = 0; v < o->n_vars; v++)
            clip_by_norm(grads + o->vars[v].offset, o->vars[v].count, c);
    } else if (s->global_clipnorm > 0) {
        float c = (float)s->global_clipnorm;
        double ss = 0;
        for (int v = 0; v < o->n_vars; v++)
            ss += sum_squares(grads + o->vars[v].offset, o->vars[v].count);
        float norm = (float)sqrt(ss);
        /* clip_by_global_norm: c * min(1/norm, 1/c); a non-finite norm gives NaN. */
        float scale = c * fminf(1.0f / norm, 1.0f / c);
        if (!isfinite(norm)) scale = NAN;
        for (int v = 0; v < o->n_vars; v++)
            scale_values(grads + o->vars[v].offset, o->vars[v].count, scale);
    } else if (s->clipvalue > 0) {
        float c = (float)s->clipvalue;
        for (int v = 0; v < o->n_vars; v++)
            clip_values(grads + o->vars[v].offset, o->vars[v].count, c);
    }
}

/* ---------------------------------------------------------------- update kernels */

/* Keras SGD without momentum: w -= g * lr. */
VEC_KERNEL
static void sgd_plain(float *restrict w, const float *restrict g, size_t n, float lr)
{
    for (size_t i = 0; i < n; i++) w[i] -= g[i] * lr;
}

/* Keras SGD: m = m*mu - g*lr; w += m, or (nesterov) w += m*mu - g*lr. */
VEC_KERNEL
static void sgd_momentum(float *restrict w, const float *restrict g, float *restrict m, size_t n,
                         float lr, float mu, int nesterov)
{
    if (nesterov) {
        for (size_t i = 0; i < n; i++) {
            float mi = m[i] * mu - g[i] * lr;
            m[i] = mi;
            w[i] += mi * mu - g[i] * lr;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float mi = m[i] * mu - g[i] * lr;
            m[i] = mi;
            w[i] += mi;
        }
    }
}

/* Keras Adam: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); w -= m*alpha / (sqrt(v) + eps),
 * with alpha = lr * sqrt(1 - b2^t) / (1 - b1^t): epsilon outside the bias correction. */
VEC_KERNEL
static void adam_update(float *restrict w, const float *restrict g, float *restrict m,
                        float *restrict v, size_t n, float alpha, float c1, float c2, float eps)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = m[i] + (gi - m[i]) * c1;
        float vi = v[i] + (gi * gi - v[i]) * c2;
        m[i] = mi;
        v[i] = vi;
        w[i] -= mi * alpha / (sqrtf(vi) + eps);
    }
}

/* Adam with amsgrad: vhat = max(vhat, v) takes v's place in the denominator. */
VEC_KERNEL
static void adam_amsgrad_update(float *restrict w, const float *restrict g, float *restrict m,
                                float *restrict v, float *restrict vhat, size_t n, float alpha,
                                float c1, float c2, float eps)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = m[i] + (gi - m[i]) * c1;
        float vi = v[i] + (gi * gi - v[i]) * c2;
        float hi = vhat[i] > vi ? vhat[i] : vi;
        m[i] = mi;
        v[i] = vi;
        vhat[i] = hi;
        w[i] -= mi * alpha / (sqrtf(hi) + eps);
    }
}

/* Keras RMSprop: v = rho*v + (1-rho)*g^2; centered: mg = rho*mg + (1-rho)*g and the
 * denominator v - mg^2 + eps, else v + eps; inc = lr*g / sqrt(denominator); with
 * momentum: mom = momentum*mom + inc, w -= mom; else w -= inc. One loop per variant
 * so each stays branch-free. */
VEC_KERNEL
static void rmsprop_plain(float *restrict w, const float *restrict g, float *restrict v, size_t n,
                          float lr, float rho, float one_minus_rho, float eps)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float vi = rho * v[i] + one_minus_rho * (gi * gi);
        v[i] = vi;
        w[i] -= lr * gi / sqrtf(vi + eps);
    }
}

VEC_KERNEL
static void rmsprop_momentum(float *restrict w, const float *restrict g, float *restrict v,
                             float *restrict mom, size_t n, float lr, float rho,
                             float one_minus_rho, float momentum, float eps)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float vi = rho * v[i] + one_minus_rho * (gi * gi);
        v[i] = vi;
        float mi = momentum * mom[i] + lr * gi / sqrtf(vi + eps);
        mom[i] = mi;
        w[i] -= mi;
    }
}

VEC_KERNEL
static void rmsprop_centered(float *restrict w, const float *restrict g, float *restrict v,
                             float *restrict mg, size_t n, float lr, float rho,
                             float one_minus_rho, float eps)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float vi = rho * v[i] + one_minus_rho * (gi * gi);
        float a = rho * mg[i] + one_minus_rho * gi;
        v[i] = vi;
        mg[i] = a;
        w[i] -= lr * gi / sqrtf(vi - a * a + eps);
    }
}

VEC_KERNEL
static void rmsprop_centered_momentum(float *restrict w, const float *restrict g,
                                      float *restrict v, float *restrict mg, float *restrict mom,
                                      size_t n, float lr, float rho, float one_minus_rho,
                                      float momentum, float eps)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float vi = rho * v[i] + one_minus_rho * (gi * gi);
        float a = rho * mg[i] + one_minus_rho * gi;
        v[i] = vi;
        mg[i] = a;
        float mi = momentum * mom[i] + lr * gi / sqrtf(vi - a * a + eps);
        mom[i] = mi;
        w[i] -= mi;
    }
}

/* Keras Adagrad: acc += g^2; w -= lr*g / sqrt(acc + eps). */
VEC_KERNEL
static void adagrad_update(float *restrict w, const float *restrict g, float *restrict acc,
                           size_t n, float lr, float eps)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float ai = acc[i] + gi * gi;
        acc[i] = ai;
        w[i] -= lr * gi / sqrtf(ai + eps);
    }
}

/* Decoupled weight decay, any optimizer's (Keras BaseOptimizer._apply_weight_decay;
 * AdamW is Adam with 0.004 by default): w -= w*wd*lr. */
VEC_KERNEL
static void weight_decay(float *restrict w, size_t n, float wd, float lr)
{
    for (size_t i = 0; i < n; i++) w[i] = w[i] - w[i] * wd * lr;
}

/* One step's coefficients, float32 as Keras forms them. */
typedef struct step_coef {
    float lr, alpha, c1, c2, eps;
    float wd; /* decoupled weight decay, applied just before the update; 0: none */
} step_coef;

/* The update of elements [lo, hi) of the parameter vector: every variable's part
 * in that range, with the variable's own rule. Element-wise, so any split of the
 * vector gives the same result. */
static void step_range(nn_optim *o, float *params, const float *grads, size_t lo, size_t hi,
                       const step_coef *k)
{
    const nn_optimizer_spec *s = &o->spec;
    float lr = k->lr, eps = k->eps;
    for (int v = 0; v < o->n_vars; v++) {
        size_t v0 = o->vars[v].offset, v1 = v0 + o->vars[v].count;
        size_t off = v0 > lo ? v0 : lo, end = v1 < hi ? v1 : hi;
        if (off >= end) continue;
        size_t n = end - off;
        float *w = params + off;
        const float *g = grads + off;
        if (k->wd > 0) weight_decay(w, n, k->wd, lr);
        switch (s->kind) {
        case NN_OPT_SGD:
            if (o->momentum)
                sgd_momentum(w, g, o->momentum + off, n, lr, (float)s->momentum, s->nesterov);
            else
                sgd_plain(w, g, n, lr);
            break;
        case NN_OPT_ADAM:
        case NN_OPT_ADAMW:
            if (o->vhat)
                adam_amsgrad_update(w, g, o->momentum + off, o->velocity + off, o->vhat + off, n,
                                    k->alpha, k->c1, k->c2, eps);
            else
                adam_update(w, g, o->momentum + off, o->velocity + off, n, k->alpha, k->c1, k->c2,
                            eps);
            break;
        case NN_OPT_RMSPROP: {
            float rho = (float)s->rho, omr = (float)(1.0 - s->rho), mu = (float)s->momentum;
            float *vel = o->velocity + off;
            if (o->avg_grad && o->momentum)
                rmsprop_centered_momentum(w, g, vel, o->avg_grad + off, o->momentum + off, n, lr,
                                          rho, omr, mu, eps);
            else if (o->avg_grad)
                rmsprop_centered(w, g, vel, o->avg_grad + off, n, lr, rho, omr, eps);
            else if (o->momentum)
                rmsprop_momentum(w, g, vel, o->momentum + off, n, lr, rho, omr, mu, eps);
            else
                rmsprop_plain(w, g, vel, n, lr, rho, omr, eps);
            break;
        }
        case NN_OPT_ADAGRAD: adagrad_update(w, g, o->accum + off, n, lr, eps); break;
        case NN_OPT_COUNT: break;
        }
    }
}

typedef struct step_job {
    nn_optim *o;
    float *params;
    const float *grads;
    step_coef k;
} step_job;

static void step_task(void *arg, size_t lo, size_t hi)
{
    step_job *j = arg;
    step_range(j->o, j->params, j->grads, lo, hi, &j->k);
}

void nn_optim_step(nn_optim *o, float *params, float *grads, const nn_parallel *par)
{
    const nn_optimizer_spec *s = &o->spec;
    float lr = optim_lr_f(o);
    optim_clip(o, grads);

    step_coef k = {lr, 0, 0, 0, (float)s->epsilon, (float)s->weight_decay};
    if (s->kind == NN_OPT_ADAM || s->kind == NN_OPT_ADAMW) {
        float t = (float)(o->iterations + 1);
        float b1p = powf((float)s->beta_1, t);
        float b2p = powf((float)s->beta_2, t);
        k.alpha = lr * sqrtf(1.0f - b2p) / (1.0f - b1p);
        k.c1 = (float)(1.0 - s->beta_1);
        k.c2 = (float)(1.0 - s->beta_2);
    }
    step_job j = {o, params, grads, k};
    nn_par_for(par, o->n_params, o->n_params, 16, step_task, &j);
    o->iterations++;
}

/* ---------------------------------------------------------------- state */

/* Layout (little-endian): "NNOP", u32 version, u32 kind, u32 slot layout bits,
 * u32 slot count, u32 reserved (0), u64 n_params, i64 iterations, then the slot
 * arrays as float32 in storage order. */

static void put_u32(unsigned char *p, uint32_t x)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(x >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t x)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(x >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t x = 0;
    for (int i = 3; i >= 0; i--) x = (x << 8) | p[i];
    return x;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = (x << 8) | p[i];
    return x;
}

size_t nn_optim_state_bytes(const nn_optim *o)
{
    return STATE_HEADER_BYTES + (size_t)o->n_slots * o->n_params * sizeof(float);
}

/* Floats are stored in host order: every platform fitd targets is little-endian. */
void nn_optim_state_save(const nn_optim *o, void *buf)
{
    unsigned char *p = buf;
    memcpy(p, STATE_MAGIC, 4);
    put_u32(p + 4, STATE_VERSION);
    put_u32(p + 8, (uint32_t)o->spec.kind);
    put_u32(p + 12, o->layout);
    put_u32(p + 16, (uint32_t)o->n_slots);
    put_u32(p + 20, 0);
    put_u64(p + 24, (uint64_t)o->n_params);
    put_u64(p + 32, (uint64_t)o->iterations);
    if (o->slots)
        memcpy(p + STATE_HEADER_BYTES, o->slots, (size_t)o->n_slots * o->n_params * sizeof(float));
}

nn_status nn_optim_state_load(nn_optim *o, const void *buf, size_t len, nn_error *err)
{
    const unsigned char *p = buf;
    if (!buf || len < STATE_HEADER_BYTES)
        return nn_error_set(err, NN_ERR_PARSE, "optimizer state: truncated header (%zu bytes)",
                            len);
    if (memcmp(p, STATE_MAGIC, 4) != 0)
        return nn_error_set(err, NN_ERR_PARSE, "optimizer state: bad magic");
    uint32_t version = get_u32(p + 4);
    if (version != STATE_VERSION)
        return nn_error_set(err, NN_ERR_PARSE, "optimizer state: unsupported version %u",
                            (unsigned)version);
    uint32_t kind = get_u32(p + 8), layout = get_u32(p + 12), n_slots = get_u32(p + 16);
    uint64_t n_params = get_u64(p + 24);
    int64_t iterations = (int64_t)get_u64(p + 32);
    if (kind != (uint32_t)o->spec.kind)
        return nn_error_set(err, NN_ERR_MISMATCH,
                            "optimizer state is for optimizer kind %u, this optimizer is %s",
                            (unsigned)kind, optim_kind_name(o->spec.kind));
    if (layout != o->layout || n_slots != (uint32_t)o->n_slots)
        return nn_error_set(err, NN_ERR_MISMATCH,
                            "optimizer state has %u slot arrays (layout 0x%x), this %s "
                            "optimizer has %d (layout 0x%x)",
                            (unsigned)n_slots, (unsigned)layout, optim_kind_name(o->spec.kind),
                            o->n_slots, o->layout);
    if (n_params != (uint64_t)o->n_params)
        return nn_error_set(err, NN_ERR_MISMATCH,
                            "optimizer state covers %llu parameters, the model has %zu",
                            (unsigned long long)n_params, o->n_params);
    if (iterations < 0)
        return nn_error_set(err, NN_ERR_PARSE, "optimizer state: negative iteration count");
    if (len != nn_optim_state_bytes(o))
        return nn_error_set(err, NN_ERR_PARSE, "optimizer state: %zu bytes, expected %zu", len,
                            nn_optim_state_bytes(o));
    if (o->slots)
        memcpy(o->slots, p + STATE_HEADER_BYTES, (size_t)o->n_slots * o->n_params * sizeof(float));
    o->iterations = iterations;
    return NN_OK;
}
