/*
 * sweep.c — see sweep.h: the sweep document, trial expansion, ranking and the
 * successive-halving rule.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "record.h"
#include "spec.h"
#include "store.h"
#include "sweep.h"

/* ---------------------------------------------------------------- JSON Pointers */

/* `at` + "/" + key escaped, into out; just `at` when the key does not fit. */
static void member_pointer(const char *at, const char *key, char *out, size_t len)
{
    size_t n = (size_t)snprintf(out, len, "%s", at);
    if (n >= len) n = strlen(out);
    spec_path_push(out, len, &n, key);
}

void sweep_param_pointer(const char *key, char *out, size_t len)
{
    member_pointer("/parameters", key, out, len);
}

/* The next reference token of `*p` (which points at a '/'), unescaped into tok.
 * Advances *p. Returns 0, or -1 for a bad escape or an over-long token. */
static int next_token(const char **p, char *tok, size_t len)
{
    size_t n = 0;
    const char *s = *p + 1;
    for (; *s && *s != '/'; s++) {
        char c = *s;
        if (c == '~') {
            if (s[1] != '0' && s[1] != '1') return -1;
            c = s[1] == '0' ? '~' : '/';
            s++;
        }
        if (n + 1 >= len) return -1;
        tok[n++] = c;
    }
    tok[n] = 0;
    *p = s;
    return 0;
}

/* An array index token: digits without a leading zero ("0" itself is fine). */
static int array_index(const char *tok, size_t size, size_t *out)
{
    if (!tok[0] || (tok[0] == '0' && tok[1]) || strlen(tok) > 9) return -1;
    for (const char *c = tok; *c; c++)
        if (*c < '0' || *c > '9') return -1;
    *out = (size_t)strtoul(tok, NULL, 10);
    return *out < size ? 0 : -1;
}

int sweep_pointer_set(json_t *doc, const char *pointer, json_t *value, char *err, size_t errlen)
{
    char tok[256];
    const char *p = pointer;
    json_t *cur = doc;
    if (!pointer || pointer[0] != '/') {
        snprintf(err, errlen, "must be a JSON Pointer starting with \"/\"");
        return -1;
    }
    for (;;) {
        size_t at = (size_t)(p - pointer);
        if (next_token(&p, tok, sizeof tok)) {
            snprintf(err, errlen, "is not a valid JSON Pointer (\"~\" must be followed by 0 or 1)");
            return -1;
        }
        int last = *p == 0;
        if (json_is_object(cur)) {
            if (last) {
                json_t *copy = json_deep_copy(value);
                if (!copy || json_object_set_new(cur, tok, copy)) {
                    snprintf(err, errlen, "out of memory");
                    return -1;
                }
                return 0;
            }
            json_t *next = json_object_get(cur, tok);
            if (!next) {
                snprintf(err, errlen, "does not resolve in the base spec: %.*s has no member \"%s\"",
                         (int)at, pointer, tok);
                return -1;
            }
            cur = next;
        } else if (json_is_array(cur)) {
            size_t i;
            if (array_index(tok, json_array_size(cur), &i)) {
                snprintf(err, errlen,
                         "does not resolve in the base spec: %.*s is an array of %zu items and "
                         "\"%s\" is not one of its indices",
                         (int)at, pointer, json_array_size(cur), tok);
                return -1;
            }
            if (last) {
                json_t *copy = json_deep_copy(value);
                if (!copy || json_array_set_new(cur, i, copy)) {
                    snprintf(err, errlen, "out of memory");
                    return -1;
                }
                return 0;
            }
            cur = json_array_get(cur, i);
        } else {
            snprintf(err, errlen, "does not resolve in the base spec: %.*s is not an object or array",
                     (int)at, at ? pointer : "(the root)");
            return -1;
        }
    }
}

/* ---------------------------------------------------------------- parsing */

/* An integral number (64 and 64.0 alike) within [lo, hi]. */
static int get_int(const json_t *v, long long lo, long long hi, long long *out)
{
    double d;
    if (json_is_integer(v)) {
        d = (double)json_integer_value(v);
    } else if (json_is_real(v)) {
        d = json_real_value(v);
        if (d != floor(d)) return -1;
    } else {
        return -1;
    }
    if (!(d >= (double)lo && d <= (double)hi)) return -1;
    *out = (long long)d;
    return 0;
}

static int metric_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= 64) return 0;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_'))
            return 0;
    return 1;
}

static void unknown_keys(const json_t *o, const char *at, const char *const *known, json_t *errors)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v) {
        int ok = 0;
        for (int i = 0; known[i]; i++) ok |= strcmp(key, known[i]) == 0;
        if (!ok) {
            char ptr[1024];
            member_pointer(at, key, ptr, sizeof ptr);
            http_problem_add(errors, ptr, "unknown field");
        }
    }
}

/* A range {"min", "max", "scale"} for a random sweep. */
static void parse_range(const json_t *v, const char *ptr, sweep_param *sp, json_t *errors)
{
    static const char *const known[] = {"min", "max", "scale", NULL};
    char at[620]; /* the parameter's pointer (sweep_parse_params: up to 600) + "/scale" */
    const json_t *mn = json_object_get(v, "min"), *mx = json_object_get(v, "max"),
                 *scale = json_object_get(v, "scale");
    unknown_keys(v, ptr, known, errors);
    snprintf(at, sizeof at, "%s/min", ptr);
    if (!json_is_number(mn) || !isfinite(json_number_value(mn))) {
        http_problem_add(errors, at, "min must be a finite number");
        return;
    }
    snprintf(at, sizeof at, "%s/max", ptr);
    if (!json_is_number(mx) || !isfinite(json_number_value(mx))) {
        http_problem_add(errors, at, "max must be a finite number");
        return;
    }
    sp->min = json_number_value(mn);
    sp->max = json_number_value(mx);
    sp->integer = json_is_integer(mn) && json_is_integer(mx);
    if (sp->max < sp->min) http_problem_add(errors, at, "max must be >= min");
    else if (!isfinite(sp->max - sp->min)) /* draws scale the width: it must be finite too */
        http_problem_add(errors, at, "max - min must be a finite number");
    snprintf(at, sizeof at, "%s/scale", ptr);
    if (scale && !json_is_null(scale)) {
        const char *s = json_string_value(scale);
        if (!s || (strcmp(s, "linear") != 0 && strcmp(s, "log") != 0))
            http_problem_add(errors, at, "scale must be \"linear\" or \"log\"");
        else
            sp->log_scale = strcmp(s, "log") == 0;
    }
    if (sp->log_scale && !(sp->min > 0)) {
        snprintf(at, sizeof at, "%s/min", ptr);
        http_problem_add(errors, at, "a log-scale range needs min > 0");
    }
}

static void parse_params(const json_t *params, sweep_def *d, json_t *errors)
{
    const char *key;
    json_t *v;
    char ptr[600], why[400]; /* 2 x 255 escaped + the prefix */
    if (!json_is_object(params) || json_object_size(params) == 0) {
        http_problem_add(errors, "/parameters",
                         "must be an object of one or more {\"<JSON Pointer>\": values}");
        return;
    }
    if (json_object_size(params) > SWEEP_MAX_PARAMS) {
        http_problem_add(errors, "/parameters", "at most %d swept paths", SWEEP_MAX_PARAMS);
        return;
    }
    double product = 1;
    json_object_foreach((json_t *)params, key, v) {
        sweep_param *sp = &d->params[d->n_params];
        sweep_param_pointer(key, ptr, sizeof ptr);
        if (strlen(key) >= sizeof sp->pointer) {
            http_problem_add(errors, ptr, "the pointer is longer than %zu characters",
                             sizeof sp->pointer - 1);
            continue;
        }
        snprintf(sp->pointer, sizeof sp->pointer, "%s", key);
        if (json_is_array(v)) {
            if (json_array_size(v) == 0 || json_array_size(v) > SWEEP_MAX_TRIALS) {
                http_problem_add(errors, ptr, "must list 1 to %d values", SWEEP_MAX_TRIALS);
                continue;
            }
            sp->values = json_incref(v);
            product *= (double)json_array_size(v);
        } else if (json_is_object(v) && d->method == SWEEP_RANDOM) {
            parse_range(v, ptr, sp, errors);
        } else {
            http_problem_add(errors, ptr,
                             d->method == SWEEP_GRID
                                 ? "a grid sweep takes a list of values"
                                 : "must be a list of values or {\"min\", \"max\", \"scale\"}");
            continue;
        }
        d->n_params++;
        /* Does the pointer resolve? Try it on a copy with a sample value. */
        if (json_is_object(d->base)) {
            json_t *copy = json_deep_copy(d->base);
            json_t *sample = sp->values ? json_array_get(sp->values, 0) : json_real(sp->min);
            if (copy && sweep_pointer_set(copy, key, sample, why, sizeof why))
                http_problem_add(errors, ptr, "%s%s%s", key, key[0] ? " " : "", why);
            if (!sp->values) json_decref(sample);
            json_decref(copy);
        }
    }
    /* A path inside another swept path would be written into the other's value,
     * where it may not resolve (each was checked against the base alone). */
    for (int a = 0; a < d->n_params; a++) {
        size_t n = strlen(d->params[a].pointer);
        for (int b = 0; n > 0 && b < d->n_params; b++) {
            const char *inner = d->params[b].pointer;
            if (b == a || strncmp(inner, d->params[a].pointer, n) != 0 || inner[n] != '/') continue;
            sweep_param_pointer(inner, ptr, sizeof ptr);
            http_problem_add(errors, ptr, "%s lies inside %s, which is swept too", inner,
                             d->params[a].pointer);
        }
    }
    if (d->method == SWEEP_GRID) {
        if (product > SWEEP_MAX_TRIALS)
            http_problem_add(errors, "/parameters",
                             "the grid has %.0f combinations; at most %d trials per sweep", product,
                             SWEEP_MAX_TRIALS);
        else
            d->n_trials = (int)product;
    }
}

static void parse_objective(const json_t *o, sweep_def *d, json_t *errors)
{
    static const char *const known[] = {"metric", "mode", NULL};
    snprintf(d->metric, sizeof d->metric, "val_loss");
    if (!o || json_is_null(o)) return;
    if (!json_is_object(o)) {
        http_problem_add(errors, "/objective", "must be {\"metric\": name, \"mode\": \"min\" | \"max\"}");
        return;
    }
    unknown_keys(o, "/objective", known, errors);
    const json_t *m = json_object_get(o, "metric"), *mode = json_object_get(o, "mode");
    if (m) {
        if (!json_is_string(m) || !metric_name_ok(json_string_value(m)))
            http_problem_add(errors, "/objective/metric",
                             "must be a metric name such as val_loss or val_accuracy");
        else
            snprintf(d->metric, sizeof d->metric, "%s", json_string_value(m));
    }
    if (mode && !json_is_null(mode)) {
        const char *s = json_string_value(mode);
        if (!s || (strcmp(s, "min") != 0 && strcmp(s, "max") != 0))
            http_problem_add(errors, "/objective/mode", "must be \"min\" or \"max\"");
        else
            d->mode_max = strcmp(s, "max") == 0;
    }
}

static void parse_early_stop(const json_t *o, sweep_def *d, json_t *errors)
{
    static const char *const known[] = {"method", "min_epochs", "eta", NULL};
    long long n;
    if (!o || json_is_null(o)) return;
    if (!json_is_object(o)) {
        http_problem_add(errors, "/early_stop",
                         "must be null or {\"method\": \"halving\", \"min_epochs\", \"eta\"}");
        return;
    }
    unknown_keys(o, "/early_stop", known, errors);
    const json_t *m = json_object_get(o, "method");
    if (!json_is_string(m) || strcmp(json_string_value(m), "halving") != 0)
        http_problem_add(errors, "/early_stop/method", "must be \"halving\"");
    d->halving = 1;
    d->min_epochs = 1;
    d->eta = 3;
    const json_t *r = json_object_get(o, "min_epochs"), *e = json_object_get(o, "eta");
    if (r && !json_is_null(r)) {
        if (get_int(r, 1, 100000, &n))
            http_problem_add(errors, "/early_stop/min_epochs", "must be an integer >= 1");
        else
            d->min_epochs = (int)n;
    }
    if (e && !json_is_null(e)) {
        if (get_int(e, 2, 100, &n))
            http_problem_add(errors, "/early_stop/eta", "must be an integer from 2 to 100");
        else
            d->eta = (int)n;
    }
}

int sweep_parse(const json_t *root, sweep_def *out, json_t *errors)
{
    static const char *const known[] = {"name",     "base",    "method", "parameters",
                                        "objective", "max_parallel", "n_trials", "seed",
                                        "early_stop", NULL};
    size_t n_before = json_array_size(errors);
    long long n;
    memset(out, 0, sizeof *out);
    if (!json_is_object(root)) {
        http_problem_add(errors, "", "the body must be a sweep object");
        return SWEEP_INVALID;
    }
    unknown_keys(root, "", known, errors);

    const json_t *name = json_object_get(root, "name");
    if (name && !json_is_null(name)) {
        if (!json_is_string(name) || strlen(json_string_value(name)) >= sizeof out->name)
            http_problem_add(errors, "/name", "must be a string of at most %zu characters",
                             sizeof out->name - 1);
        else
            snprintf(out->name, sizeof out->name, "%s", json_string_value(name));
    }
    const json_t *base = json_object_get(root, "base");
    if (!json_is_object(base))
        http_problem_add(errors, "/base", "required: the job spec every trial starts from");
    else
        out->base = json_incref((json_t *)base);

    const json_t *method = json_object_get(root, "method");
    const char *ms = json_string_value(method);
    int method_ok = ms && (strcmp(ms, "grid") == 0 || strcmp(ms, "random") == 0);
    if (!method_ok)
        http_problem_add(errors, "/method", "must be \"grid\" or \"random\"");
    else
        out->method = strcmp(ms, "random") == 0 ? SWEEP_RANDOM : SWEEP_GRID;

    const json_t *trials = json_object_get(root, "n_trials"), *seed = json_object_get(root, "seed");
    if (out->method == SWEEP_RANDOM) {
        if (get_int(trials, 1, SWEEP_MAX_TRIALS, &n))
            http_problem_add(errors, "/n_trials", "a random sweep needs n_trials from 1 to %d",
                             SWEEP_MAX_TRIALS);
        else
            out->n_trials = (int)n;
        if (seed && !json_is_null(seed)) {
            if (get_int(seed, 0, (long long)1 << 53, &n))
                http_problem_add(errors, "/seed", "must be an integer >= 0");
            else
                out->seed = (uint64_t)n;
        }
    } else if (method_ok) {
        if (trials && !json_is_null(trials))
            http_problem_add(errors, "/n_trials", "a grid sweep runs every combination; "
                                                  "n_trials is for random sweeps");
        if (seed && !json_is_null(seed))
            http_problem_add(errors, "/seed", "a grid sweep draws nothing; seed is for random sweeps");
    }
    if (method_ok) parse_params(json_object_get(root, "parameters"), out, errors);
    parse_objective(json_object_get(root, "objective"), out, errors);
    const json_t *mp = json_object_get(root, "max_parallel");
    if (mp && !json_is_null(mp)) {
        if (get_int(mp, 1, 100000, &n))
            http_problem_add(errors, "/max_parallel", "must be an integer >= 1");
        else
            out->max_parallel = (int)n;
    }
    parse_early_stop(json_object_get(root, "early_stop"), out, errors);

    if (json_array_size(errors) > n_before) {
        sweep_def_free(out);
        return SWEEP_INVALID;
    }
    return SWEEP_OK;
}

void sweep_def_free(sweep_def *d)
{
    if (!d) return;
    json_decref(d->base);
    for (int i = 0; i < d->n_params; i++) json_decref(d->params[i].values);
    memset(d, 0, sizeof *d);
}

/* ---------------------------------------------------------------- trials */

/* splitmix64 (Steele, Lea, Flood 2014): a tiny generator whose every seed gives
 * a good stream; trial i starts from seed + (i + 1) * golden so draws of
 * different trials never depend on each other. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 random bits. */
static double uniform01(uint64_t *state)
{
    return (double)(splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

static json_t *draw(const sweep_param *sp, uint64_t *state)
{
    double u = uniform01(state);
    if (sp->values) {
        size_t k = (size_t)(u * (double)json_array_size(sp->values));
        if (k >= json_array_size(sp->values)) k = json_array_size(sp->values) - 1;
        return json_incref(json_array_get(sp->values, k));
    }
    if (sp->integer) {
        double lo = sp->min, hi = sp->max, v;
        if (sp->log_scale)
            v = floor(exp(log(lo) + u * (log(hi + 1) - log(lo))));
        else
            v = lo + floor(u * (hi - lo + 1));
        if (v > hi) v = hi;
        if (v < lo) v = lo;
        return json_integer((json_int_t)v);
    }
    double v = sp->log_scale ? exp(log(sp->min) + u * (log(sp->max) - log(sp->min)))
                             : sp->min + u * (sp->max - sp->min);
    if (v > sp->max) v = sp->max; /* exp(log(x)) may round past the bound */
    if (v < sp->min) v = sp->min;
    return json_real(v);
}

json_t *sweep_trial_params(const sweep_def *d, int i)
{
    if (i < 0 || i >= d->n_trials) return NULL;
    json_t *o = json_object();
    if (!o) return NULL;
    uint64_t state = d->seed + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull;
    /* grid: mixed radix with the last parameter fastest */
    size_t stride[SWEEP_MAX_PARAMS];
    size_t s = 1;
    for (int p = d->n_params - 1; p >= 0; p--) {
        stride[p] = s;
        if (d->params[p].values) s *= json_array_size(d->params[p].values);
    }
    for (int p = 0; p < d->n_params; p++) {
        const sweep_param *sp = &d->params[p];
        json_t *v;
        if (d->method == SWEEP_GRID) {
            size_t k = ((size_t)i / stride[p]) % json_array_size(sp->values);
            v = json_incref(json_array_get(sp->values, k));
        } else {
            v = draw(sp, &state);
        }
        if (!v || json_object_set_new(o, sp->pointer, v)) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

json_t *sweep_trial_spec(const sweep_def *d, const json_t *params)
{
    char why[400];
    const char *key;
    json_t *v;
    json_t *spec = json_deep_copy(d->base);
    if (!spec) return NULL;
    json_object_foreach((json_t *)params, key, v) {
        if (sweep_pointer_set(spec, key, v, why, sizeof why)) {
            json_decref(spec);
            return NULL;
        }
    }
    return spec;
}

/* ---------------------------------------------------------------- ranking */

typedef struct rank_item {
    size_t index;
    int has;
    double value;
} rank_item;

static int rank_cmp_min(const void *a, const void *b)
{
    const rank_item *x = a, *y = b;
    if (x->has != y->has) return x->has ? -1 : 1;
    if (x->has && x->value != y->value) return x->value < y->value ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int rank_cmp_max(const void *a, const void *b)
{
    const rank_item *x = a, *y = b;
    if (x->has != y->has) return x->has ? -1 : 1;
    if (x->has && x->value != y->value) return x->value > y->value ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

void sweep_rank(const double *objective, const int *has_objective, size_t n, int mode_max,
                size_t *order)
{
    rank_item *items = n ? malloc(n * sizeof *items) : NULL;
    if (!items) { /* out of memory: trial order is still a valid answer */
        for (size_t i = 0; i < n; i++) order[i] = i;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        items[i].index = i;
        items[i].has = has_objective[i] && !isnan(objective[i]);
        items[i].value = objective[i];
    }
    qsort(items, n, sizeof *items, mode_max ? rank_cmp_max : rank_cmp_min);
    for (size_t i = 0; i < n; i++) order[i] = items[i].index;
    free(items);
}

const char *sweep_status(const int64_t counts[STORE_JOB_STATUS_COUNT], int cancelled)
{
    int64_t queued = counts[STORE_JOB_QUEUED], running = counts[STORE_JOB_RUNNING],
            succeeded = counts[STORE_JOB_SUCCEEDED], total = 0;
    for (int k = 0; k < STORE_JOB_STATUS_COUNT; k++) total += counts[k];
    if (total > 0 && queued == total) return "queued";
    if (queued > 0 || running > 0) return "running";
    if (cancelled) return "cancelled";
    return succeeded > 0 ? "succeeded" : "failed";
}

int sweep_objective_valid(const char *metric, const struct spec_job *job, char *why, size_t len)
{
    const char *names[NN_MAX_METRICS];
    int n = record_compiled_names(&job->compile, names);
    record_key_kind kind = record_key(metric, names, n);
    if (kind == RECORD_KEY_UNKNOWN) {
        char list[512];
        record_keys_list(list, sizeof list, names, n);
        snprintf(why, len, "%.100s is not in the epoch records: they hold %s, and val_ twins of "
                           "loss and the compiled metrics", metric, list);
        return 0;
    }
    if (kind == RECORD_KEY_VAL && !job->validation[0] && !(job->fit.validation_split > 0)) {
        snprintf(why, len, "%s needs validation data (data.validation or fit.validation_split)",
                 metric);
        return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- halving */

int sweep_halving_is_rung(int epoch, int epochs, int min_epochs, int eta)
{
    if (min_epochs < 1 || eta < 2 || epoch >= epochs) return 0;
    for (long long r = min_epochs; r <= epoch; r *= eta)
        if (r == epoch) return 1;
    return 0;
}

int sweep_halving_keep(double value, const double *values, int n, int eta, int mode_max,
                       int *rank, int *keep)
{
    int better = 0;
    for (int i = 0; i < n; i++)
        if (mode_max ? values[i] > value : values[i] < value) better++;
    int k = n >= eta ? n / eta : n;
    if (rank) *rank = better + 1;
    if (keep) *keep = k;
    return better + 1 <= k;
}

int sweep_halving_stop(struct store *st, const struct store_job_sweep *cfg, const char *job_id,
                       int epoch, int epochs, const char *record_json, char *why, size_t len)
{
    double *values = NULL;
    int n = 0, rank = 0, keep = 0, stop = 0;
    if (cfg->halving_min_epochs < 1 ||
        !sweep_halving_is_rung(epoch, epochs, cfg->halving_min_epochs, cfg->halving_eta))
        return 0;
    json_t *rec = json_loads(record_json, 0, NULL);
    const json_t *v = json_object_get(rec, cfg->metric);
    double *all = NULL;
    if (json_is_number(v) &&
        store_sweep_rung_values(st, cfg->sweep_id, epoch, cfg->metric, job_id, &values, &n) ==
            STORE_OK &&
        (all = realloc(values, ((size_t)n + 1) * sizeof *all))) {
        values = all;
        double value = json_number_value(v);
        values[n++] = value; /* its own, beside the others' */
        stop = !sweep_halving_keep(value, values, n, cfg->halving_eta, cfg->mode_max, &rank, &keep);
        if (stop)
            snprintf(why, len,
                     "stopped by successive halving at epoch %d: %s %.6g ranked %d of the %d "
                     "trials at this rung; the best %d go on",
                     epoch, cfg->metric, value, rank, n, keep);
    }
    free(values);
    json_decref(rec);
    return stop;
}
