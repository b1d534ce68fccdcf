/*
 * spec.c — job-spec JSON validation and conversion (see spec.h for the accepted
 * shapes). Validation walks only the known structure, so its recursion depth is
 * fixed whatever the document's nesting; every problem is recorded and parsing
 * goes on, so one pass reports them all.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keras.h"
#include "record.h"
#include "spec.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

spec_limits spec_limits_default(void)
{
    spec_limits l;
    l.max_layers = 64;
    l.max_units = 65536;
    l.max_input_dim = 1000000;
    l.max_params = 50000000;
    l.max_epochs = 10000;
    l.max_batch_size = 65536;
    return l;
}

spec_limits spec_limits_unlimited(void)
{
    spec_limits l = {
        .max_layers = INT_MAX,
        .max_units = INT_MAX,
        .max_input_dim = INT_MAX,
        .max_params = SIZE_MAX,
        .max_epochs = INT_MAX,
        .max_batch_size = INT_MAX,
    };
    return l;
}

/* ---------------------------------------------------------------- parse context */

typedef struct pctx {
    spec_problems *pr;
    spec_limits lim;
    int flags;
    int nomem;
    char path[1024]; /* the current JSON Pointer */
    size_t len;
} pctx;

size_t spec_path_push(char *path, size_t cap, size_t *len, const char *key)
{
    size_t saved = *len, n = *len;
    if (n + 1 >= cap) return saved;
    path[n++] = '/';
    for (const char *k = key; *k; k++) {
        const char *esc = *k == '~' ? "~0" : *k == '/' ? "~1" : NULL;
        size_t need = esc ? 2 : 1;
        if (n + need >= cap) {
            path[saved] = 0;
            return saved;
        }
        if (esc) {
            path[n++] = esc[0];
            path[n++] = esc[1];
        } else {
            path[n++] = *k;
        }
    }
    path[n] = 0;
    *len = n;
    return saved;
}

size_t spec_path_push_index(char *path, size_t cap, size_t *len, size_t i)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%zu", i);
    return spec_path_push(path, cap, len, buf);
}

void spec_path_pop(char *path, size_t *len, size_t saved)
{
    *len = saved;
    path[saved] = 0;
}

void spec_problem_addv(spec_problems *pr, const char *pointer, const char *fmt, va_list ap)
{
    if (!pr) return;
    if (pr->n >= SPEC_MAX_PROBLEMS) {
        pr->truncated = 1;
        return;
    }
    spec_problem *it = &pr->items[pr->n++];
    size_t n = strlen(pointer);
    if (n >= sizeof it->pointer) {
        n = sizeof it->pointer - 1;
        while (n > 0 && pointer[n] != '/') n--;
    }
    memcpy(it->pointer, pointer, n);
    it->pointer[n] = 0;
    vsnprintf(it->message, sizeof it->message, fmt, ap);
}

static size_t path_push(pctx *c, const char *key)
{
    return spec_path_push(c->path, sizeof c->path, &c->len, key);
}

static size_t path_push_index(pctx *c, size_t i)
{
    return spec_path_push_index(c->path, sizeof c->path, &c->len, i);
}

static void path_pop(pctx *c, size_t saved)
{
    spec_path_pop(c->path, &c->len, saved);
}

/* Record a problem at the current pointer. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void problem(pctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    spec_problem_addv(c->pr, c->path, fmt, ap);
    va_end(ap);
}

/* A user string made safe for a message: at most 40 bytes (cut at a UTF-8
 * character boundary, "..." appended), control characters as '?'. */
static const char *shown(const char *s, char buf[48])
{
    size_t n = strlen(s), cut = n > 40 ? 40 : n;
    while (cut < n && cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80) cut--;
    for (size_t i = 0; i < cut; i++) buf[i] = (unsigned char)s[i] < 0x20 ? '?' : s[i];
    if (cut < n) {
        memcpy(buf + cut, "...", 4);
    } else {
        buf[cut] = 0;
    }
    return buf;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

/* Report every key of `obj` not in `allowed` (NULL-terminated). */
static void check_keys(pctx *c, const json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0) ok = 1;
        if (ok) continue;
        char b[48];
        size_t s = path_push(c, key);
        problem(c, "unknown key '%s'", shown(key, b));
        path_pop(c, s);
    }
}

/* Field getters. Each reports its own problems at /<path>/<key> and returns 1
 * when the field holds a valid value (written to *out), 0 when it is absent or
 * null (*out untouched), -1 when it is invalid (reported). */

static int get_required(pctx *c, const json_t *obj, const char *key, int required, json_t **v)
{
    *v = json_object_get(obj, key);
    if (*v && !json_is_null(*v)) return 1;
    if (required) {
        size_t s = path_push(c, key);
        problem(c, "'%s' is required", key);
        path_pop(c, s);
        return -1;
    }
    return 0;
}

static void fmt_num(char *buf, size_t n, double x)
{
    if (isinf(x)) {
        snprintf(buf, n, "%s", x > 0 ? "inf" : "-inf");
    } else {
        snprintf(buf, n, "%.17g", x);
        /* prefer the shortest form that reads back the same */
        for (int p = 1; p <= 17; p++) {
            char t[40];
            snprintf(t, sizeof t, "%.*g", p, x);
            if (strtod(t, NULL) == x) {
                snprintf(buf, n, "%s", t);
                break;
            }
        }
    }
}

/* Reals: finite and within [lo, hi] where lo_open / hi_open make that end
 * exclusive; -inf / inf leave a side unbounded. */
static int check_real(pctx *c, double x, double lo, int lo_open, double hi, int hi_open)
{
    int bad = !isfinite(x) || (lo_open ? !(x > lo) : !(x >= lo)) || (hi_open ? !(x < hi) : !(x <= hi));
    if (!bad) return 1;
    char a[40], b[40];
    fmt_num(a, sizeof a, lo);
    fmt_num(b, sizeof b, hi);
    if (!isfinite(x))
        problem(c, "must be a finite number");
    else if (isinf(hi))
        problem(c, "must be %s %s", lo_open ? ">" : ">=", a);
    else if (isinf(lo))
        problem(c, "must be %s %s", hi_open ? "<" : "<=", b);
    else
        problem(c, "must be in %c%s, %s%c", lo_open ? '(' : '[', a, b, hi_open ? ')' : ']');
    return -1;
}

static int get_real(pctx *c, const json_t *obj, const char *key, int required, double *out,
                    double lo, int lo_open, double hi, int hi_open)
{
    json_t *v;
    int r = get_required(c, obj, key, required, &v);
    if (r <= 0) return r;
    size_t s = path_push(c, key);
    if (!json_is_number(v)) {
        problem(c, "must be a number, not %s", type_name(v));
        r = -1;
    } else {
        double x = json_number_value(v);
        r = check_real(c, x, lo, lo_open, hi, hi_open);
        if (r == 1) *out = x;
    }
    path_pop(c, s);
    return r;
}

/* Integers: a JSON integer, or a real with an integral value, in [lo, hi]. */
static int check_int(pctx *c, const json_t *v, int64_t *out, int64_t lo, int64_t hi)
{
    if (!json_is_number(v)) {
        problem(c, "must be an integer, not %s", type_name(v));
        return -1;
    }
    int64_t x;
    if (json_is_integer(v)) {
        x = (int64_t)json_integer_value(v);
    } else {
        double d = json_real_value(v);
        if (!isfinite(d) || floor(d) != d) {
            char b[40];
            fmt_num(b, sizeof b, d);
            problem(c, "must be an integer, not %s", b);
            return -1;
        }
        if (d < -9.2e18 || d > 9.2e18) {
            problem(c, "must be at %s %lld", d < 0 ? "least" : "most",
                    (long long)(d < 0 ? lo : hi));
            return -1;
        }
        x = (int64_t)d;
    }
    if (x < lo) {
        problem(c, "must be at least %lld", (long long)lo);
        return -1;
    }
    if (x > hi) {
        problem(c, "must be at most %lld", (long long)hi);
        return -1;
    }
    *out = x;
    return 1;
}

static int get_int(pctx *c, const json_t *obj, const char *key, int required, int64_t *out,
                   int64_t lo, int64_t hi)
{
    json_t *v;
    int r = get_required(c, obj, key, required, &v);
    if (r <= 0) return r;
    size_t s = path_push(c, key);
    r = check_int(c, v, out, lo, hi);
    path_pop(c, s);
    return r;
}

static int get_int32(pctx *c, const json_t *obj, const char *key, int required, int *out,
                     int64_t lo, int64_t hi)
{
    int64_t x = 0;
    int r = get_int(c, obj, key, required, &x, lo, hi);
    if (r == 1) *out = (int)x;
    return r;
}

static int get_bool(pctx *c, const json_t *obj, const char *key, int *out)
{
    json_t *v;
    int r = get_required(c, obj, key, 0, &v);
    if (r <= 0) return r;
    if (!json_is_boolean(v)) {
        size_t s = path_push(c, key);
        problem(c, "must be true or false, not %s", type_name(v));
        path_pop(c, s);
        return -1;
    }
    *out = json_is_true(v);
    return 1;
}

/* Strings: at most max_len bytes, no control characters; *out borrowed. */
static int get_string(pctx *c, const json_t *obj, const char *key, int required,
                      const char **out, size_t max_len)
{
    json_t *v;
    int r = get_required(c, obj, key, required, &v);
    if (r <= 0) return r;
    size_t s = path_push(c, key);
    r = -1;
    if (!json_is_string(v)) {
        problem(c, "must be a string, not %s", type_name(v));
    } else if (json_string_length(v) > max_len) {
        problem(c, "is longer than %zu bytes", max_len);
    } else if (strlen(json_string_value(v)) != json_string_length(v)) {
        problem(c, "must not contain NUL characters");
    } else {
        const char *str = json_string_value(v);
        int ctrl = 0;
        for (const char *p = str; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f) ctrl = 1;
        if (ctrl) {
            problem(c, "must not contain control characters");
        } else {
            *out = str;
            r = 1;
        }
    }
    path_pop(c, s);
    return r;
}

/* Identifiers (layer names, dataset ids): [A-Za-z0-9_.-]{1,max_len}. */
static int is_ident(const char *s, size_t max_len)
{
    size_t n = strlen(s);
    if (n < 1 || n > max_len) return 0;
    for (const char *p = s; *p; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return 0;
    }
    return 1;
}

static int get_ident(pctx *c, const json_t *obj, const char *key, int required, char *out,
                     size_t out_size, const char *what)
{
    const char *s = NULL;
    int r = get_string(c, obj, key, required, &s, 1024);
    if (r <= 0) return r;
    if (!is_ident(s, out_size - 1)) {
        size_t sv = path_push(c, key);
        problem(c, "%s must be 1 to %zu characters from A-Z a-z 0-9 _ . -", what, out_size - 1);
        path_pop(c, sv);
        return -1;
    }
    snprintf(out, out_size, "%s", s);
    return 1;
}

/* An object-valued field: 1 and *out when it is an object, 0 absent/null, -1 if
 * another type. */
static int get_object(pctx *c, const json_t *obj, const char *key, int required, json_t **out)
{
    int r = get_required(c, obj, key, required, out);
    if (r <= 0) return r;
    if (!json_is_object(*out)) {
        size_t s = path_push(c, key);
        problem(c, "must be an object, not %s", type_name(*out));
        path_pop(c, s);
        return -1;
    }
    return 1;
}

/* ---------------------------------------------------------------- initializers */

/* Fields of an initializer's parameters (the "name" form or a Keras "config"). */
static void parse_init_params(pctx *c, const json_t *obj, nn_init_spec *out, int name_form)
{
    static const char *const normal_n[] = {"name", "mean", "stddev", "seed", NULL};
    static const char *const uniform_n[] = {"name", "minval", "maxval", "seed", NULL};
    static const char *const plain_n[] = {"name", "seed", NULL};
    const char *const *keys = out->kind == NN_INIT_RANDOM_NORMAL    ? normal_n
                              : out->kind == NN_INIT_RANDOM_UNIFORM ? uniform_n
                                                                    : plain_n;
    check_keys(c, obj, name_form ? keys : keys + 1);
    if (out->kind == NN_INIT_RANDOM_NORMAL) {
        /* Float32 weights: a value past FLT_MAX would be an infinite weight. */
        get_real(c, obj, "mean", 0, &out->a, -FLT_MAX, 0, FLT_MAX, 0);
        get_real(c, obj, "stddev", 0, &out->b, 0, 0, FLT_MAX, 0);
    } else if (out->kind == NN_INIT_RANDOM_UNIFORM) {
        int ra = get_real(c, obj, "minval", 0, &out->a, -FLT_MAX, 0, FLT_MAX, 0);
        int rb = get_real(c, obj, "maxval", 0, &out->b, -FLT_MAX, 0, FLT_MAX, 0);
        if (ra >= 0 && rb >= 0 && out->a > out->b) {
            size_t s = path_push(c, "maxval");
            problem(c, "must be >= minval");
            path_pop(c, s);
        }
    }
    int64_t seed = 0;
    if (get_int(c, obj, "seed", 0, &seed, 0, INT64_MAX) == 1) {
        out->has_seed = 1;
        out->seed = (uint64_t)seed;
    }
}

static int init_kind_of(pctx *c, const char *name, const char *field, nn_init_kind *kind)
{
    *kind = nn_init_from_name(name);
    if (*kind != NN_INIT_COUNT) return 1;
    char b[48];
    size_t s = field ? path_push(c, field) : c->len;
    problem(c, "unknown initializer '%s'", shown(name, b));
    path_pop(c, s);
    return -1;
}

/* The value at the current path; *out holds the default on entry. */
static void parse_initializer(pctx *c, const json_t *v, nn_init_spec *out)
{
    nn_init_kind kind;
    if (json_is_string(v)) {
        if (init_kind_of(c, json_string_value(v), NULL, &kind) == 1) *out = nn_init_default(kind);
        return;
    }
    if (!json_is_object(v)) {
        problem(c, "an initializer must be a name or an object, not %s", type_name(v));
        return;
    }
    const char *name = NULL;
    if (json_object_get(v, "class_name")) {
        static const char *const keys[] = {"class_name", "config", "module", "registered_name", NULL};
        check_keys(c, v, keys);
        if (get_string(c, v, "class_name", 1, &name, 64) != 1) return;
        if (init_kind_of(c, name, "class_name", &kind) != 1) return;
        *out = nn_init_default(kind);
        json_t *cfg = NULL;
        if (get_object(c, v, "config", 0, &cfg) == 1) {
            size_t s = path_push(c, "config");
            parse_init_params(c, cfg, out, 0);
            path_pop(c, s);
        }
        return;
    }
    if (get_string(c, v, "name", 1, &name, 64) != 1) return;
    if (init_kind_of(c, name, "name", &kind) != 1) return;
    *out = nn_init_default(kind);
    parse_init_params(c, v, out, 1);
}

/* ---------------------------------------------------------------- regularizers */

static void parse_reg_coefs(pctx *c, const json_t *obj, nn_regularizer *out, int want_l1,
                            int want_l2)
{
    /* Float32, as Keras uses them: past FLT_MAX a coefficient is infinite and the
     * first batch's loss with it. A stored spec keeps what was accepted before. */
    double hi = (c->flags & SPEC_STORED) ? INFINITY : FLT_MAX;
    if (want_l1) get_real(c, obj, "l1", 0, &out->l1, 0, 0, hi, 0);
    if (want_l2) get_real(c, obj, "l2", 0, &out->l2, 0, 0, hi, 0);
}

static void parse_regularizer(pctx *c, const json_t *v, nn_regularizer *out)
{
    out->l1 = out->l2 = 0;
    if (!v || json_is_null(v)) return;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strcmp(s, "l1") == 0) {
            out->l1 = 0.01;
        } else if (strcmp(s, "l2") == 0) {
            out->l2 = 0.01;
        } else if (strcmp(s, "l1_l2") == 0 || strcmp(s, "l1l2") == 0) {
            out->l1 = out->l2 = 0.01;
        } else {
            char b[48];
            problem(c, "unknown regularizer '%s' (expected l1, l2, l1_l2 or an object)",
                    shown(s, b));
        }
        return;
    }
    if (!json_is_object(v)) {
        problem(c, "a regularizer must be a name, an object or null, not %s", type_name(v));
        return;
    }
    if (json_object_get(v, "class_name")) {
        static const char *const keys[] = {"class_name", "config", "module", "registered_name", NULL};
        const char *cls = NULL;
        check_keys(c, v, keys);
        if (get_string(c, v, "class_name", 1, &cls, 64) != 1) return;
        int want_l1, want_l2;
        if (strcmp(cls, "L1") == 0) {
            want_l1 = 1, want_l2 = 0, out->l1 = 0.01; /* Keras L1() default */
        } else if (strcmp(cls, "L2") == 0) {
            want_l1 = 0, want_l2 = 1, out->l2 = 0.01; /* Keras L2() default */
        } else if (strcmp(cls, "L1L2") == 0) {
            want_l1 = 1, want_l2 = 1; /* Keras L1L2() default: 0, 0 */
        } else {
            char b[48];
            size_t s = path_push(c, "class_name");
            problem(c, "unknown regularizer class '%s' (expected L1, L2 or L1L2)", shown(cls, b));
            path_pop(c, s);
            return;
        }
        json_t *cfg = NULL;
        if (get_object(c, v, "config", 0, &cfg) == 1) {
            static const char *const k1[] = {"l1", NULL}, *const k2[] = {"l2", NULL},
                                     *const k12[] = {"l1", "l2", NULL};
            size_t s = path_push(c, "config");
            check_keys(c, cfg, want_l1 && want_l2 ? k12 : want_l1 ? k1 : k2);
            parse_reg_coefs(c, cfg, out, want_l1, want_l2);
            path_pop(c, s);
        }
        return;
    }
    static const char *const keys[] = {"l1", "l2", NULL};
    check_keys(c, v, keys);
    if (!json_object_get(v, "l1") && !json_object_get(v, "l2")) {
        problem(c, "a regularizer object needs 'l1' and/or 'l2'");
        return;
    }
    parse_reg_coefs(c, v, out, 1, 1);
}

/* ---------------------------------------------------------------- layers */

typedef struct layer_info {
    int named;    /* the spec named it */
    int width_ok; /* units known and valid */
} layer_info;

static void parse_dense(pctx *c, const json_t *l, nn_layer_spec *out)
{
    static const char *const keys[] = {"type", "name", "units", "activation", "use_bias",
                                       "kernel_initializer", "bias_initializer",
                                       "kernel_regularizer", "bias_regularizer",
                                       "activity_regularizer", NULL};
    check_keys(c, l, keys);
    int units = 0;
    if (get_int32(c, l, "units", 1, &units, 1, c->lim.max_units) != 1) units = 0;
    *out = nn_layer_dense(units, NN_ACT_LINEAR);
    const char *act = NULL;
    if (get_string(c, l, "activation", 0, &act, 64) == 1) {
        nn_activation a = nn_activation_from_name(act);
        if (a == NN_ACT_COUNT) {
            char b[48];
            size_t s = path_push(c, "activation");
            problem(c, "unknown activation '%s'", shown(act, b));
            path_pop(c, s);
        } else {
            out->activation = a;
            if (a == NN_ACT_SOFTMAX && units == 1) {
                size_t s = path_push(c, "activation");
                problem(c, "softmax over 1 unit always outputs 1; use sigmoid");
                path_pop(c, s);
            }
        }
    }
    get_bool(c, l, "use_bias", &out->use_bias);
    static const char *const init_keys[] = {"kernel_initializer", "bias_initializer"};
    nn_init_spec *inits[] = {&out->kernel_init, &out->bias_init};
    for (size_t i = 0; i < N_OF(init_keys); i++) {
        json_t *v = json_object_get(l, init_keys[i]);
        if (!v || json_is_null(v)) continue;
        size_t s = path_push(c, init_keys[i]);
        parse_initializer(c, v, inits[i]);
        path_pop(c, s);
    }
    static const char *const reg_keys[] = {"kernel_regularizer", "bias_regularizer",
                                           "activity_regularizer"};
    nn_regularizer *regs[] = {&out->kernel_reg, &out->bias_reg, &out->activity_reg};
    for (size_t i = 0; i < N_OF(reg_keys); i++) {
        json_t *v = json_object_get(l, reg_keys[i]);
        size_t s = path_push(c, reg_keys[i]);
        parse_regularizer(c, v, regs[i]);
        path_pop(c, s);
    }
}

static void parse_dropout(pctx *c, const json_t *l, nn_layer_spec *out)
{
    static const char *const keys[] = {"type", "name", "rate", "seed", NULL};
    check_keys(c, l, keys);
    double rate = 0;
    if (get_real(c, l, "rate", 1, &rate, 0, 0, 1, 1) == 1 && !((float)rate < 1.0f)) {
        size_t s = path_push(c, "rate");
        problem(c, "must be below 1 in float32 (%.10g rounds to 1)", rate);
        path_pop(c, s);
    }
    *out = nn_layer_dropout(rate);
    int64_t seed = 0;
    if (get_int(c, l, "seed", 0, &seed, 0, INT64_MAX) == 1) {
        out->has_seed = 1;
        out->seed = (uint64_t)seed;
    }
}

/* Saturating size arithmetic for the parameter count (limits may be huge). */
static size_t mul_sat(size_t a, size_t b)
{
    return (b != 0 && a > SIZE_MAX / b) ? SIZE_MAX : a * b;
}

static size_t add_sat(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* Keras-style default names, skipping names that the spec uses explicitly. */
static void name_layers(nn_layer_spec *layers, const layer_info *info, int n)
{
    int counter[2] = {0, 0};
    for (int i = 0; i < n; i++) {
        if (info[i].named) continue;
        const char *base = layers[i].kind == NN_LAYER_DENSE ? "dense" : "dropout";
        int *k = &counter[layers[i].kind == NN_LAYER_DENSE ? 0 : 1];
        for (;;) {
            char cand[NN_NAME_MAX];
            if (*k == 0)
                snprintf(cand, sizeof cand, "%s", base);
            else
                snprintf(cand, sizeof cand, "%s_%d", base, *k);
            (*k)++;
            int taken = 0;
            for (int j = 0; j < n && !taken; j++)
                if (info[j].named && strcmp(layers[j].name, cand) == 0) taken = 1;
            if (!taken) {
                memcpy(layers[i].name, cand, sizeof cand);
                break;
            }
        }
    }
}

/* Output width and activation of the model when known (all dense units valid). */
typedef struct model_shape {
    int known;
    int out_width;
    nn_activation out_act;
} model_shape;

static void parse_model(pctx *c, const json_t *m, spec_job *job, model_shape *shape)
{
    static const char *const keys[] = {"input_shape", "layers", NULL};
    layer_info *info = NULL;
    check_keys(c, m, keys);
    shape->known = 0;

    int input_ok = 0;
    json_t *in;
    if (get_required(c, m, "input_shape", 1, &in) == 1) {
        size_t s = path_push(c, "input_shape");
        if (!json_is_array(in) || json_array_size(in) != 1) {
            problem(c, "must be an array of one integer, e.g. [784] (flatten the features)");
        } else {
            size_t s0 = path_push_index(c, 0);
            int64_t d = 0;
            if (check_int(c, json_array_get(in, 0), &d, 1, c->lim.max_input_dim) == 1) {
                job->model.input_dim = (int)d;
                input_ok = 1;
            }
            path_pop(c, s0);
        }
        path_pop(c, s);
    }

    json_t *layers;
    if (get_required(c, m, "layers", 1, &layers) != 1) return;
    size_t sl = path_push(c, "layers");
    size_t n = json_is_array(layers) ? json_array_size(layers) : 0;
    if (!json_is_array(layers)) {
        problem(c, "must be an array, not %s", type_name(layers));
        goto out;
    }
    if (n == 0) {
        problem(c, "needs at least one layer");
        goto out;
    }
    if (n > (size_t)c->lim.max_layers) {
        problem(c, "has %zu layers; the limit is %d", n, c->lim.max_layers);
        goto out;
    }
    job->model.layers = calloc(n, sizeof *job->model.layers);
    info = calloc(n, sizeof *info);
    if (!job->model.layers || !info) {
        c->nomem = 1;
        goto out;
    }
    job->model.n_layers = (int)n;

    int widths_ok = input_ok, n_dense = 0;
    size_t width = (size_t)job->model.input_dim, params = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_array_get(layers, i);
        nn_layer_spec *ls = &job->model.layers[i];
        size_t si = path_push_index(c, i);
        *ls = nn_layer_dropout(0); /* a placeholder for a layer that fails to parse */
        const char *type = NULL;
        if (!json_is_object(l)) {
            problem(c, "a layer must be an object, not %s", type_name(l));
            widths_ok = 0;
        } else if (get_string(c, l, "type", 1, &type, 64) == 1) {
            if (strcmp(type, "dense") == 0 || strcmp(type, "Dense") == 0) {
                parse_dense(c, l, ls);
                n_dense++;
                if (ls->units < 1) {
                    widths_ok = 0;
                } else {
                    params = add_sat(params, mul_sat(width, (size_t)ls->units));
                    if (ls->use_bias) params = add_sat(params, (size_t)ls->units);
                    width = (size_t)ls->units;
                }
            } else if (strcmp(type, "dropout") == 0 || strcmp(type, "Dropout") == 0) {
                parse_dropout(c, l, ls);
            } else {
                char b[48];
                size_t st = path_push(c, "type");
                problem(c, "unknown layer type '%s' (expected dense or dropout)", shown(type, b));
                path_pop(c, st);
                widths_ok = 0;
            }
            if (get_ident(c, l, "name", 0, ls->name, sizeof ls->name, "a layer name") == 1) {
                info[i].named = 1;
                for (size_t j = 0; j < i; j++) {
                    if (info[j].named && strcmp(job->model.layers[j].name, ls->name) == 0) {
                        size_t sn = path_push(c, "name");
                        problem(c, "duplicate layer name '%s' (also layer %zu)", ls->name, j);
                        path_pop(c, sn);
                        break;
                    }
                }
            }
        } else {
            widths_ok = 0;
        }
        path_pop(c, si);
    }
    if (n_dense == 0 && widths_ok) {
        problem(c, "needs at least one dense layer");
        widths_ok = 0;
    }
    if (widths_ok && params > c->lim.max_params) {
        problem(c, "the model has %zu parameters; the limit is %zu", params, c->lim.max_params);
    }
    name_layers(job->model.layers, info, (int)n);
    if (widths_ok) {
        shape->known = 1;
        shape->out_width = (int)width;
        for (size_t i = n; i-- > 0;)
            if (job->model.layers[i].kind == NN_LAYER_DENSE) {
                shape->out_act = job->model.layers[i].activation;
                break;
            }
    }
out:
    path_pop(c, sl);
    free(info);
}

/* ---------------------------------------------------------------- optimizer */

enum {
    O_SGD = 1 << NN_OPT_SGD,
    O_ADAM = 1 << NN_OPT_ADAM,
    O_ADAMW = 1 << NN_OPT_ADAMW,
    O_RMS = 1 << NN_OPT_RMSPROP,
    O_ADAGRAD = 1 << NN_OPT_ADAGRAD,
    O_ALL = O_SGD | O_ADAM | O_ADAMW | O_RMS | O_ADAGRAD
};

static const struct {
    const char *key;
    unsigned kinds;
} opt_fields[] = {
    {"name", O_ALL},
    {"learning_rate", O_ALL},
    {"clipnorm", O_ALL},
    {"clipvalue", O_ALL},
    {"global_clipnorm", O_ALL},
    {"momentum", O_SGD | O_RMS},
    {"nesterov", O_SGD},
    {"beta_1", O_ADAM | O_ADAMW},
    {"beta_2", O_ADAM | O_ADAMW},
    {"amsgrad", O_ADAM | O_ADAMW},
    {"epsilon", O_ADAM | O_ADAMW | O_RMS | O_ADAGRAD},
    {"weight_decay", O_ALL},
    {"rho", O_RMS},
    {"centered", O_RMS},
    {"initial_accumulator_value", O_ADAGRAD},
};

static void parse_schedule(pctx *c, const json_t *v, nn_optimizer_spec *o)
{
    const char *kind = NULL;
    if (get_string(c, v, "schedule", 1, &kind, 64) != 1) return;
    if (strcmp(kind, "exponential_decay") == 0) {
        static const char *const keys[] = {"schedule", "initial_learning_rate", "decay_steps",
                                           "decay_rate", "staircase", NULL};
        check_keys(c, v, keys);
        o->schedule.kind = NN_SCHED_EXPONENTIAL_DECAY;
        get_real(c, v, "decay_rate", 1, &o->schedule.decay_rate, 0, 1, INFINITY, 0);
        get_bool(c, v, "staircase", &o->schedule.staircase);
    } else if (strcmp(kind, "cosine_decay") == 0) {
        static const char *const keys[] = {"schedule",      "initial_learning_rate", "decay_steps",
                                           "alpha",         "warmup_target",         "warmup_steps",
                                           NULL};
        check_keys(c, v, keys);
        o->schedule.kind = NN_SCHED_COSINE_DECAY;
        get_real(c, v, "alpha", 0, &o->schedule.alpha, 0, 0, 1, 0);
        /* Keras: a warmup_target (not null) turns the warmup on */
        o->schedule.warmup =
            get_real(c, v, "warmup_target", 0, &o->schedule.warmup_target, 0, 0, 1e6, 0) == 1;
        int64_t ws = 0;
        if (get_int(c, v, "warmup_steps", 0, &ws, 0, INT64_MAX) == 1) o->schedule.warmup_steps = ws;
    } else {
        char b[48];
        size_t s = path_push(c, "schedule");
        problem(c, "unknown schedule '%s' (expected exponential_decay or cosine_decay)",
                shown(kind, b));
        path_pop(c, s);
        return;
    }
    get_real(c, v, "initial_learning_rate", 1, &o->learning_rate, 0, 0, 1e6, 0);
    int64_t steps = 0;
    if (get_int(c, v, "decay_steps", 1, &steps, 1, INT64_MAX) == 1) o->schedule.decay_steps = steps;
}

static void parse_optimizer(pctx *c, const json_t *v, nn_optimizer_spec *o)
{
    const char *name = NULL;
    char b[48];
    if (json_is_string(v)) {
        name = json_string_value(v);
    } else if (json_is_object(v)) {
        if (get_string(c, v, "name", 1, &name, 64) != 1) return;
    } else {
        problem(c, "must be an optimizer name or an object, not %s", type_name(v));
        return;
    }
    nn_optimizer_kind k = nn_optimizer_from_name(name);
    if (k == NN_OPT_COUNT) {
        size_t s = json_is_object(v) ? path_push(c, "name") : c->len;
        problem(c, "unknown optimizer '%s' (expected sgd, adam, adamw, rmsprop or adagrad)",
                shown(name, b));
        path_pop(c, s);
        return;
    }
    *o = nn_optimizer_default(k);
    if (!json_is_object(v)) return;

    const char *key;
    json_t *fv;
    json_object_foreach((json_t *)v, key, fv) {
        int found = -1;
        for (size_t i = 0; i < N_OF(opt_fields); i++)
            if (strcmp(opt_fields[i].key, key) == 0) found = (int)i;
        if (found >= 0 && (opt_fields[found].kinds & (1u << k))) continue;
        size_t s = path_push(c, key);
        if (found >= 0)
            problem(c, "'%s' is not a setting of the %s optimizer", key, nn_optimizer_name(k));
        else
            problem(c, "unknown key '%s'", shown(key, b));
        path_pop(c, s);
    }

    json_t *lr = json_object_get(v, "learning_rate");
    if (lr && json_is_object(lr)) {
        size_t s = path_push(c, "learning_rate");
        parse_schedule(c, lr, o);
        path_pop(c, s);
    } else {
        get_real(c, v, "learning_rate", 0, &o->learning_rate, 0, 0, 1e6, 0); /* 0: Keras allows it */
    }
    unsigned m = 1u << k;
    if (m & (O_SGD | O_RMS)) get_real(c, v, "momentum", 0, &o->momentum, 0, 0, 1, 0);
    if (m & O_SGD) get_bool(c, v, "nesterov", &o->nesterov);
    if (m & (O_ADAM | O_ADAMW)) {
        get_real(c, v, "beta_1", 0, &o->beta_1, 0, 0, 1, 1);
        get_real(c, v, "beta_2", 0, &o->beta_2, 0, 0, 1, 1);
        get_bool(c, v, "amsgrad", &o->amsgrad);
    }
    if (m & (O_ADAM | O_ADAMW | O_RMS | O_ADAGRAD))
        get_real(c, v, "epsilon", 0, &o->epsilon, 0, 1, 1, 0);
    get_real(c, v, "weight_decay", 0, &o->weight_decay, 0, 0, INFINITY, 0);
    if (m & O_RMS) {
        get_real(c, v, "rho", 0, &o->rho, 0, 0, 1, 1);
        get_bool(c, v, "centered", &o->centered);
    }
    if (m & O_ADAGRAD)
        get_real(c, v, "initial_accumulator_value", 0, &o->initial_accumulator, 0, 0, INFINITY, 0);
    /* Keras 3's BaseOptimizer refuses more than one clipping option: each one
     * after the first is named. */
    static const char *const clips[] = {"clipnorm", "clipvalue", "global_clipnorm"};
    double *const clip_out[] = {&o->clipnorm, &o->clipvalue, &o->global_clipnorm};
    int n_clips = 0;
    for (int i = 0; i < 3; i++) {
        if (get_real(c, v, clips[i], 0, clip_out[i], 0, 1, INFINITY, 0) != 1 || n_clips++ == 0)
            continue;
        if (c->flags & SPEC_STORED) continue; /* accepted before the rule: as applied then */
        size_t s = path_push(c, clips[i]);
        problem(c, "only one of clipnorm, clipvalue and global_clipnorm can be set");
        path_pop(c, s);
    }
    if ((c->flags & SPEC_STORED) && (o->clipnorm > 0 || o->global_clipnorm > 0)) o->clipvalue = 0;
}

/* ---------------------------------------------------------------- loss, metrics */

/* Returns 1 when the loss parsed (then *loss_ptr names the field for cross-field
 * problems: "loss" itself or its from_logits). */
static int parse_loss(pctx *c, const json_t *v, nn_loss_spec *loss)
{
    const char *name = NULL;
    char b[48];
    if (json_is_string(v)) {
        name = json_string_value(v);
    } else if (json_is_object(v)) {
        if (get_string(c, v, "name", 1, &name, 64) != 1) return 0;
    } else {
        problem(c, "must be a loss name or an object, not %s", type_name(v));
        return 0;
    }
    nn_loss_kind k = nn_loss_from_name(name);
    if (k == NN_LOSS_COUNT) {
        size_t s = json_is_object(v) ? path_push(c, "name") : c->len;
        problem(c, "unknown loss '%s'", shown(name, b));
        path_pop(c, s);
        return 0;
    }
    *loss = nn_loss_default(k);
    if (!json_is_object(v)) return 1;
    int ce = k == NN_LOSS_BINARY_CE || k == NN_LOSS_CATEGORICAL_CE ||
             k == NN_LOSS_SPARSE_CATEGORICAL_CE;
    int smooth = k == NN_LOSS_BINARY_CE || k == NN_LOSS_CATEGORICAL_CE;
    const char *key;
    json_t *fv;
    json_object_foreach((json_t *)v, key, fv) {
        int known = strcmp(key, "from_logits") == 0 || strcmp(key, "label_smoothing") == 0 ||
                    strcmp(key, "delta") == 0;
        int applies = strcmp(key, "name") == 0 || (ce && strcmp(key, "from_logits") == 0) ||
                      (smooth && strcmp(key, "label_smoothing") == 0) ||
                      (k == NN_LOSS_HUBER && strcmp(key, "delta") == 0);
        if (applies) continue;
        size_t s = path_push(c, key);
        if (known)
            problem(c, "'%s' does not apply to the %s loss", key, nn_loss_name(k));
        else
            problem(c, "unknown key '%s'", shown(key, b));
        path_pop(c, s);
    }
    if (ce) get_bool(c, v, "from_logits", &loss->from_logits);
    if (smooth) get_real(c, v, "label_smoothing", 0, &loss->label_smoothing, 0, 0, 1, 0);
    if (k == NN_LOSS_HUBER) get_real(c, v, "delta", 0, &loss->delta, 0, 1, INFINITY, 0);
    return 1;
}

static void parse_metrics(pctx *c, const json_t *v, nn_compile_spec *cs)
{
    if (!json_is_array(v)) {
        problem(c, "must be an array of metric names, not %s", type_name(v));
        return;
    }
    if (json_array_size(v) > NN_MAX_METRICS) {
        problem(c, "has %zu metrics; at most %d are allowed", json_array_size(v), NN_MAX_METRICS);
        return;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *m = json_array_get(v, i);
        size_t s = path_push_index(c, i);
        char b[48];
        if (!json_is_string(m)) {
            problem(c, "a metric must be a name, not %s", type_name(m));
        } else {
            const char *name = json_string_value(m);
            nn_metric_kind k = nn_metric_from_name(name);
            int dup = 0;
            for (int j = 0; j < cs->n_metrics; j++)
                if (strcmp(cs->metric_names[j], name) == 0) dup = 1;
            if (k == NN_METRIC_COUNT) {
                problem(c, "unknown metric '%s'", shown(name, b));
            } else if (dup) {
                problem(c, "duplicate metric '%s'", name);
            } else {
                cs->metrics[cs->n_metrics] = k;
                snprintf(cs->metric_names[cs->n_metrics], sizeof cs->metric_names[0], "%s", name);
                cs->n_metrics++;
            }
        }
        path_pop(c, s);
    }
}

/* Loss against the output layer (see spec.h for the rules). `loss_v` is the
 * loss's JSON value, used to aim the pointer. */
static void check_loss_output(pctx *c, const json_t *loss_v, const nn_loss_spec *loss,
                              const model_shape *shape)
{
    if (!shape->known) return;
    size_t s = path_push(c, "compile");
    size_t s1 = path_push(c, "loss");
    int w = shape->out_width;
    const char *ln = nn_loss_name(loss->kind);
    if ((loss->kind == NN_LOSS_CATEGORICAL_CE || loss->kind == NN_LOSS_SPARSE_CATEGORICAL_CE) &&
        w < 2) {
        problem(c, "%s needs an output layer of 2 or more units; for one unit use "
                   "binary_crossentropy", ln);
    } else if (loss->from_logits &&
               (shape->out_act == NN_ACT_SOFTMAX || shape->out_act == NN_ACT_SIGMOID)) {
        size_t s2 = json_is_object(loss_v) ? path_push(c, "from_logits") : c->len;
        problem(c, "from_logits is true but the output layer applies %s; use a linear "
                   "output or from_logits false", nn_activation_name(shape->out_act));
        path_pop(c, s2);
    }
    path_pop(c, s1);
    path_pop(c, s);
}

static void parse_compile(pctx *c, const json_t *v, nn_compile_spec *cs, const json_t **loss_v,
                          int *loss_ok)
{
    static const char *const keys[] = {"optimizer", "loss", "metrics", NULL};
    check_keys(c, v, keys);
    cs->optimizer = nn_optimizer_default(NN_OPT_RMSPROP); /* Keras compile() default */
    json_t *o = json_object_get(v, "optimizer");
    if (o && !json_is_null(o)) {
        size_t s = path_push(c, "optimizer");
        parse_optimizer(c, o, &cs->optimizer);
        path_pop(c, s);
    }
    json_t *l;
    *loss_ok = 0;
    if (get_required(c, v, "loss", 1, &l) == 1) {
        size_t s = path_push(c, "loss");
        *loss_ok = parse_loss(c, l, &cs->loss);
        *loss_v = l;
        path_pop(c, s);
    }
    json_t *m = json_object_get(v, "metrics");
    if (m && !json_is_null(m)) {
        size_t s = path_push(c, "metrics");
        parse_metrics(c, m, cs);
        path_pop(c, s);
    }
}

/* ---------------------------------------------------------------- fit, data */

/* Loss, a compiled metric, or the val_ twin of either. */
static int monitor_known(const char *mon, const nn_compile_spec *cs)
{
    const char *names[NN_MAX_METRICS];
    record_key_kind kind = record_key(mon, names, record_compiled_names(cs, names));
    return kind == RECORD_KEY_TRAIN || kind == RECORD_KEY_VAL;
}

static void parse_early_stopping(pctx *c, const json_t *v, nn_early_stopping *es,
                                 const nn_compile_spec *cs)
{
    static const char *const keys[] = {"monitor", "min_delta", "patience", "mode",
                                       "restore_best_weights", "start_from_epoch", "baseline",
                                       NULL};
    check_keys(c, v, keys);
    es->enabled = 1;
    const char *mon = NULL;
    if (get_string(c, v, "monitor", 0, &mon, sizeof es->monitor - 1) == 1) {
        if (!monitor_known(mon, cs)) {
            char b[48];
            size_t s = path_push(c, "monitor");
            problem(c, "monitor '%s' is neither loss, val_loss nor a compiled metric "
                       "(with optional val_ prefix)", shown(mon, b));
            path_pop(c, s);
        } else {
            snprintf(es->monitor, sizeof es->monitor, "%s", mon);
        }
    }
    /* Any sign: Keras compares with |min_delta| (so does the core). */
    get_real(c, v, "min_delta", 0, &es->min_delta, -INFINITY, 0, INFINITY, 0);
    get_int32(c, v, "patience", 0, &es->patience, 0, c->lim.max_epochs);
    get_int32(c, v, "start_from_epoch", 0, &es->start_from_epoch, 0, c->lim.max_epochs);
    const char *mode = NULL;
    if (get_string(c, v, "mode", 0, &mode, 16) == 1) {
        if (strcmp(mode, "auto") == 0) {
            es->mode = NN_ES_AUTO;
        } else if (strcmp(mode, "min") == 0) {
            es->mode = NN_ES_MIN;
        } else if (strcmp(mode, "max") == 0) {
            es->mode = NN_ES_MAX;
        } else {
            size_t s = path_push(c, "mode");
            problem(c, "must be auto, min or max");
            path_pop(c, s);
        }
    }
    get_bool(c, v, "restore_best_weights", &es->restore_best_weights);
    if (get_real(c, v, "baseline", 0, &es->baseline, -INFINITY, 0, INFINITY, 0) == 1) es->has_baseline = 1;
}

static void parse_fit(pctx *c, const json_t *v, nn_fit_spec *f, const nn_compile_spec *cs)
{
    static const char *const keys[] = {"epochs", "batch_size", "shuffle", "seed",
                                       "validation_split", "early_stopping", NULL};
    check_keys(c, v, keys);
    get_int32(c, v, "epochs", 0, &f->epochs, 1, c->lim.max_epochs);
    get_int32(c, v, "batch_size", 0, &f->batch_size, 1, c->lim.max_batch_size);
    get_bool(c, v, "shuffle", &f->shuffle);
    int64_t seed = 0;
    if (get_int(c, v, "seed", 0, &seed, 0, INT64_MAX) == 1) f->seed = (uint64_t)seed;
    get_real(c, v, "validation_split", 0, &f->validation_split, 0, 0, 1, 1);
    json_t *es = NULL;
    if (get_object(c, v, "early_stopping", 0, &es) == 1) {
        size_t s = path_push(c, "early_stopping");
        parse_early_stopping(c, es, &f->early_stopping, cs);
        path_pop(c, s);
    }
}

static void parse_data(pctx *c, const json_t *v, spec_job *job)
{
    static const char *const keys[] = {"train", "validation", "test", NULL};
    check_keys(c, v, keys);
    int need = !(c->flags & SPEC_DATA_OPTIONAL);
    get_ident(c, v, "train", need, job->train, sizeof job->train, "a dataset id");
    get_ident(c, v, "validation", 0, job->validation, sizeof job->validation, "a dataset id");
    get_ident(c, v, "test", 0, job->test, sizeof job->test, "a dataset id");
}

/* "init" (spec.h spec_init): exactly one of weights / from_job; resume only with
 * from_job. Whether the ids exist is the caller's check (server/warmstart.c). */
static void parse_warm_start(pctx *c, const json_t *v, spec_init *init)
{
    static const char *const keys[] = {"weights", "from_job", "resume", NULL};
    check_keys(c, v, keys);
    int has_w = json_object_get(v, "weights") && !json_is_null(json_object_get(v, "weights"));
    int has_j = json_object_get(v, "from_job") && !json_is_null(json_object_get(v, "from_job"));
    if (has_w == has_j) {
        problem(c, "give exactly one of \"weights\" (an uploaded weights id) and \"from_job\" (a "
                   "job id)");
        return;
    }
    init->kind = has_w ? SPEC_INIT_WEIGHTS : SPEC_INIT_FROM_JOB;
    if (get_ident(c, v, has_w ? "weights" : "from_job", 1, init->id, sizeof init->id,
                  has_w ? "a weights id" : "a job id") != 1)
        init->kind = SPEC_INIT_NONE;
    if (get_bool(c, v, "resume", &init->resume) == 1 && init->resume && has_w) {
        size_t s = path_push(c, "resume");
        problem(c, "resume continues a job's training: it needs \"from_job\", not \"weights\"");
        path_pop(c, s);
    }
}

/* ---------------------------------------------------------------- entry points */

void spec_job_free(spec_job *job)
{
    if (!job) return;
    free(job->model.layers);
    memset(job, 0, sizeof *job);
}

static void job_init(spec_job *job)
{
    memset(job, 0, sizeof *job);
    job->compile.optimizer = nn_optimizer_default(NN_OPT_RMSPROP);
    job->compile.loss = nn_loss_default(NN_LOSS_MSE);
    job->fit = nn_fit_default();
}

static void limits_resolve(spec_limits *dst, const spec_limits *lim)
{
    spec_limits d = spec_limits_default();
    *dst = d;
    if (!lim) return;
    if (lim->max_layers > 0) dst->max_layers = lim->max_layers;
    if (lim->max_units > 0) dst->max_units = lim->max_units;
    if (lim->max_input_dim > 0) dst->max_input_dim = lim->max_input_dim;
    if (lim->max_params > 0) dst->max_params = lim->max_params;
    if (lim->max_epochs > 0) dst->max_epochs = lim->max_epochs;
    if (lim->max_batch_size > 0) dst->max_batch_size = lim->max_batch_size;
}

static void nomem_problem(spec_problems *pr)
{
    if (!pr) return;
    pr->n = 1;
    pr->truncated = 0;
    snprintf(pr->items[0].pointer, sizeof pr->items[0].pointer, "%s", "");
    snprintf(pr->items[0].message, sizeof pr->items[0].message, "%s", "out of memory");
}

int spec_job_parse(const json_t *root, const spec_limits *lim, int flags, spec_job *out,
                   spec_problems *problems)
{
    pctx c;
    memset(&c, 0, sizeof c);
    spec_problems local;
    c.pr = problems ? problems : &local;
    c.pr->n = 0;
    c.pr->truncated = 0;
    c.flags = flags;
    limits_resolve(&c.lim, lim);
    job_init(out);

    if (!root || !json_is_object(root)) {
        problem(&c, "a job spec must be a JSON object, not %s", root ? type_name(root) : "empty");
        goto out;
    }
    static const char *const keys[] = {"name", "data", "model", "compile", "fit", "init", NULL};
    check_keys(&c, root, keys);

    const char *name = NULL;
    if (get_string(&c, root, "name", 0, &name, sizeof out->name - 1) == 1)
        snprintf(out->name, sizeof out->name, "%s", name);

    json_t *v = NULL;
    int r = get_object(&c, root, "data", !(flags & SPEC_DATA_OPTIONAL), &v);
    if (r == 1) {
        size_t s = path_push(&c, "data");
        parse_data(&c, v, out);
        path_pop(&c, s);
    }

    model_shape shape = {0, 0, NN_ACT_LINEAR};
    if (get_object(&c, root, "model", 1, &v) == 1) {
        size_t s = path_push(&c, "model");
        /* A Keras to_json() document is validated as the native form it converts
         * to; the native problems are then pointed back into the Keras document. */
        json_t *native = NULL;
        keras_map *km = NULL;
        if (keras_is_document(v) && keras_to_native(v, c.path, &native, &km, c.pr) != 0)
            c.nomem = 1;
        int first = c.pr->n;
        if (!c.nomem) parse_model(&c, native ? native : v, out, &shape);
        keras_map_problems(km, c.pr, first);
        keras_map_free(km);
        json_decref(native);
        path_pop(&c, s);
        if (c.nomem) goto out;
    }

    const json_t *loss_v = NULL;
    int loss_ok = 0;
    if (get_object(&c, root, "compile", 1, &v) == 1) {
        size_t s = path_push(&c, "compile");
        parse_compile(&c, v, &out->compile, &loss_v, &loss_ok);
        path_pop(&c, s);
    }
    if (loss_ok) check_loss_output(&c, loss_v, &out->compile.loss, &shape);

    if (get_object(&c, root, "fit", 0, &v) == 1) {
        size_t s = path_push(&c, "fit");
        parse_fit(&c, v, &out->fit, &out->compile);
        path_pop(&c, s);
    }

    if (get_object(&c, root, "init", 0, &v) == 1) {
        size_t s = path_push(&c, "init");
        parse_warm_start(&c, v, &out->init);
        path_pop(&c, s);
    }

    /* A val_ monitor without validation data would never trigger (Keras warns). */
    const nn_early_stopping *es = &out->fit.early_stopping;
    if (!(flags & SPEC_DATA_OPTIONAL) && es->enabled && strncmp(es->monitor, "val_", 4) == 0 &&
        !out->validation[0] && out->fit.validation_split == 0) {
        size_t s = path_push(&c, "fit");
        size_t s1 = path_push(&c, "early_stopping");
        size_t s2 = path_push(&c, "monitor");
        problem(&c, "monitor '%s' needs validation data: set data.validation or "
                    "fit.validation_split", es->monitor);
        path_pop(&c, s2);
        path_pop(&c, s1);
        path_pop(&c, s);
    }

out:
    if (c.nomem) {
        spec_job_free(out);
        nomem_problem(c.pr);
        return SPEC_NOMEM;
    }
    if (c.pr->n > 0) {
        spec_job_free(out);
        return SPEC_INVALID;
    }
    return SPEC_OK;
}

/* The text before `end` is well-formed (Jansson read it that far), so a small
 * scan suffices: containers, keys, commas, and where each scalar starts. Jansson
 * itself decodes each key (every escape, surrogate pairs). A key too long for the
 * scan, nesting past its depth, or a pointer past `cap` stops the pointer at the
 * deepest level it holds whole: a parent of the value, never another value. */
void spec_pointer_before(const char *t, size_t end, char *out, size_t cap)
{
    enum { DEPTH = 64, KEY = 256 };
    struct level {
        int array, key_ok;
        size_t index;
        char key[KEY];
    } st[DEPTH];
    int depth = 0, deeper = 0, expect_key = 0; /* deeper: levels past DEPTH */
    out[0] = 0;
    for (size_t i = 0; i < end;) {
        char c = t[i];
        if (c == 0) return; /* not before a Jansson error, but the scan must end */
        if (c == '{' || c == '[') {
            if (depth == DEPTH) {
                deeper++;
            } else {
                st[depth] = (struct level){.array = c == '['};
                depth++;
            }
            expect_key = c == '{';
            i++;
        } else if (c == '}' || c == ']') {
            if (deeper)
                deeper--;
            else if (depth)
                depth--;
            i++;
        } else if (c == ',') {
            int array = deeper ? 0 : depth && st[depth - 1].array;
            if (!deeper && array) st[depth - 1].index++;
            expect_key = deeper ? 1 : depth && !array;
            i++;
        } else if (c == '"') {
            size_t from = i;
            for (i++; i < end && t[i] != '"'; i++)
                if (t[i] == '\\') i++; /* the escaped character is not the end */
            if (expect_key && depth && !deeper && i < end) {
                struct level *L = &st[depth - 1];
                json_t *k = json_loadb(t + from, i + 1 - from, JSON_DECODE_ANY, NULL);
                const char *v = json_string_value(k);
                L->key_ok = v && json_string_length(k) < KEY && strlen(v) == json_string_length(k);
                if (L->key_ok) memcpy(L->key, v, json_string_length(k) + 1);
                json_decref(k);
            }
            expect_key = 0;
            i++;
        } else if (c == ':' || c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            i++;
        } else { /* a number, true, false or null starts here */
            size_t n = 0;
            out[0] = 0;
            for (int d = 0; d < depth; d++) {
                size_t before = n;
                if (st[d].array)
                    spec_path_push_index(out, cap, &n, st[d].index);
                else if (st[d].key_ok)
                    spec_path_push(out, cap, &n, st[d].key);
                if (n == before) break; /* did not fit: the parent it has */
            }
            while (i < end && !strchr(",]} \t\r\n", t[i])) i++;
        }
    }
}

void spec_json_error_pointer(const char *text, size_t len, const json_error_t *jerr, char *out,
                             size_t cap)
{
    out[0] = 0;
    if (json_error_code(jerr) == json_error_numeric_overflow && jerr->position > 0 &&
        (size_t)jerr->position <= len)
        spec_pointer_before(text, (size_t)jerr->position, out, cap);
}

int spec_job_parse_text(const char *buf, size_t len, const spec_limits *lim, int flags,
                        spec_job *out, spec_problems *problems)
{
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        job_init(out);
        spec_job_free(out);
        if (problems) {
            problems->n = 1;
            problems->truncated = 0;
            problems->items[0].pointer[0] = 0;
            if (json_error_code(&jerr) == json_error_out_of_memory) {
                nomem_problem(problems);
                return SPEC_NOMEM;
            }
            spec_json_error_pointer(buf, len, &jerr, problems->items[0].pointer,
                                    sizeof problems->items[0].pointer);
            snprintf(problems->items[0].message, sizeof problems->items[0].message,
                     "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        }
        return SPEC_INVALID;
    }
    int rc = spec_job_parse(root, lim, flags, out, problems);
    json_decref(root);
    return rc;
}

int spec_job_parse_stored(const char *text, spec_job *out, spec_problems *problems)
{
    spec_limits lim = spec_limits_unlimited();
    return spec_job_parse_text(text ? text : "", text ? strlen(text) : 0, &lim,
                               SPEC_STORED | SPEC_DATA_OPTIONAL, out, problems);
}

/* ---------------------------------------------------------------- rendering */

/* json_object_set_new that remembers a failure (Jansson returns -1 and frees the
 * value when out of memory or when value is NULL). */
static void put(json_t *obj, const char *key, json_t *value, int *fail)
{
    if (json_object_set_new(obj, key, value) != 0) *fail = 1;
}

static json_t *init_to_json(const nn_init_spec *s, int *fail)
{
    json_t *o = json_object();
    if (!o) {
        *fail = 1;
        return NULL;
    }
    put(o, "name", json_string(nn_init_name(s->kind)), fail);
    if (s->kind == NN_INIT_RANDOM_NORMAL) {
        put(o, "mean", json_real(s->a), fail);
        put(o, "stddev", json_real(s->b), fail);
    } else if (s->kind == NN_INIT_RANDOM_UNIFORM) {
        put(o, "minval", json_real(s->a), fail);
        put(o, "maxval", json_real(s->b), fail);
    }
    put(o, "seed", s->has_seed ? json_integer((json_int_t)s->seed) : json_null(), fail);
    return o;
}

static json_t *reg_to_json(nn_regularizer r, int *fail)
{
    if (r.l1 == 0 && r.l2 == 0) return json_null();
    json_t *o = json_object();
    if (!o) {
        *fail = 1;
        return NULL;
    }
    put(o, "l1", json_real(r.l1), fail);
    put(o, "l2", json_real(r.l2), fail);
    return o;
}

static json_t *layer_to_json(const nn_layer_spec *l, int *fail)
{
    json_t *o = json_object();
    if (!o) {
        *fail = 1;
        return NULL;
    }
    if (l->kind == NN_LAYER_DENSE) {
        put(o, "type", json_string("dense"), fail);
        put(o, "name", json_string(l->name), fail);
        put(o, "units", json_integer(l->units), fail);
        put(o, "activation", json_string(nn_activation_name(l->activation)), fail);
        put(o, "use_bias", json_boolean(l->use_bias), fail);
        put(o, "kernel_initializer", init_to_json(&l->kernel_init, fail), fail);
        put(o, "bias_initializer", init_to_json(&l->bias_init, fail), fail);
        put(o, "kernel_regularizer", reg_to_json(l->kernel_reg, fail), fail);
        put(o, "bias_regularizer", reg_to_json(l->bias_reg, fail), fail);
        put(o, "activity_regularizer", reg_to_json(l->activity_reg, fail), fail);
    } else {
        put(o, "type", json_string("dropout"), fail);
        put(o, "name", json_string(l->name), fail);
        put(o, "rate", json_real(l->rate), fail);
        put(o, "seed", l->has_seed ? json_integer((json_int_t)l->seed) : json_null(), fail);
    }
    return o;
}

static json_t *positive_or_null(double x)
{
    return x > 0 ? json_real(x) : json_null();
}

static json_t *optimizer_to_json(const nn_optimizer_spec *o, int *fail)
{
    json_t *j = json_object();
    if (!j) {
        *fail = 1;
        return NULL;
    }
    put(j, "name", json_string(nn_optimizer_name(o->kind)), fail);
    if (o->schedule.kind == NN_SCHED_CONSTANT) {
        put(j, "learning_rate", json_real(o->learning_rate), fail);
    } else {
        json_t *s = json_object();
        if (!s) *fail = 1;
        int expo = o->schedule.kind == NN_SCHED_EXPONENTIAL_DECAY;
        if (s) {
            put(s, "schedule", json_string(expo ? "exponential_decay" : "cosine_decay"), fail);
            put(s, "initial_learning_rate", json_real(o->learning_rate), fail);
            put(s, "decay_steps", json_integer((json_int_t)o->schedule.decay_steps), fail);
            if (expo) {
                put(s, "decay_rate", json_real(o->schedule.decay_rate), fail);
                put(s, "staircase", json_boolean(o->schedule.staircase), fail);
            } else {
                put(s, "alpha", json_real(o->schedule.alpha), fail);
                put(s, "warmup_target",
                    o->schedule.warmup ? json_real(o->schedule.warmup_target) : json_null(), fail);
                put(s, "warmup_steps", json_integer((json_int_t)o->schedule.warmup_steps), fail);
            }
        }
        put(j, "learning_rate", s, fail);
    }
    switch (o->kind) {
    case NN_OPT_SGD:
        put(j, "momentum", json_real(o->momentum), fail);
        put(j, "nesterov", json_boolean(o->nesterov), fail);
        break;
    case NN_OPT_ADAM:
    case NN_OPT_ADAMW:
        put(j, "beta_1", json_real(o->beta_1), fail);
        put(j, "beta_2", json_real(o->beta_2), fail);
        put(j, "epsilon", json_real(o->epsilon), fail);
        put(j, "amsgrad", json_boolean(o->amsgrad), fail);
        break;
    case NN_OPT_RMSPROP:
        put(j, "rho", json_real(o->rho), fail);
        put(j, "momentum", json_real(o->momentum), fail);
        put(j, "epsilon", json_real(o->epsilon), fail);
        put(j, "centered", json_boolean(o->centered), fail);
        break;
    case NN_OPT_ADAGRAD:
        put(j, "initial_accumulator_value", json_real(o->initial_accumulator), fail);
        put(j, "epsilon", json_real(o->epsilon), fail);
        break;
    case NN_OPT_COUNT:
        break;
    }
    /* AdamW always decays (0.004 by default); the others only when asked, as Keras
     * writes None for them. */
    put(j, "weight_decay",
        o->kind == NN_OPT_ADAMW ? json_real(o->weight_decay) : positive_or_null(o->weight_decay), fail);
    put(j, "clipnorm", positive_or_null(o->clipnorm), fail);
    put(j, "clipvalue", positive_or_null(o->clipvalue), fail);
    put(j, "global_clipnorm", positive_or_null(o->global_clipnorm), fail);
    return j;
}

static json_t *loss_to_json(const nn_loss_spec *l, int *fail)
{
    json_t *j = json_object();
    if (!j) {
        *fail = 1;
        return NULL;
    }
    put(j, "name", json_string(nn_loss_name(l->kind)), fail);
    if (l->kind == NN_LOSS_BINARY_CE || l->kind == NN_LOSS_CATEGORICAL_CE ||
        l->kind == NN_LOSS_SPARSE_CATEGORICAL_CE)
        put(j, "from_logits", json_boolean(l->from_logits), fail);
    if (l->kind == NN_LOSS_BINARY_CE || l->kind == NN_LOSS_CATEGORICAL_CE)
        put(j, "label_smoothing", json_real(l->label_smoothing), fail);
    if (l->kind == NN_LOSS_HUBER) put(j, "delta", json_real(l->delta), fail);
    return j;
}

static json_t *fit_to_json(const nn_fit_spec *f, int *fail)
{
    json_t *j = json_object();
    if (!j) {
        *fail = 1;
        return NULL;
    }
    put(j, "epochs", json_integer(f->epochs), fail);
    put(j, "batch_size", json_integer(f->batch_size), fail);
    put(j, "shuffle", json_boolean(f->shuffle), fail);
    put(j, "seed", json_integer((json_int_t)f->seed), fail);
    put(j, "validation_split", json_real(f->validation_split), fail);
    const nn_early_stopping *es = &f->early_stopping;
    if (!es->enabled) {
        put(j, "early_stopping", json_null(), fail);
    } else {
        static const char *const modes[] = {"auto", "min", "max"};
        json_t *e = json_object();
        if (!e) *fail = 1;
        if (e) {
            put(e, "monitor", json_string(es->monitor), fail);
            put(e, "min_delta", json_real(es->min_delta), fail);
            put(e, "patience", json_integer(es->patience), fail);
            put(e, "mode", json_string(modes[es->mode <= NN_ES_MAX ? es->mode : 0]), fail);
            put(e, "restore_best_weights", json_boolean(es->restore_best_weights), fail);
            put(e, "start_from_epoch", json_integer(es->start_from_epoch), fail);
            put(e, "baseline", es->has_baseline ? json_real(es->baseline) : json_null(), fail);
        }
        put(j, "early_stopping", e, fail);
    }
    return j;
}

json_t *spec_job_to_json(const spec_job *job)
{
    int fail = 0;
    json_t *root = json_object(), *data = NULL, *model = NULL, *shape = NULL, *layers = NULL,
           *compile = NULL, *metrics = NULL;
    if (!root) return NULL;
    if (job->name[0]) put(root, "name", json_string(job->name), &fail); /* unnamed: as the job's null */

    data = json_object();
    if (!data) goto fail;
    if (job->train[0]) put(data, "train", json_string(job->train), &fail);
    if (job->validation[0]) put(data, "validation", json_string(job->validation), &fail);
    if (job->test[0]) put(data, "test", json_string(job->test), &fail);
    put(root, "data", data, &fail);

    model = json_object();
    shape = json_array();
    layers = json_array();
    if (!model || !shape || !layers) goto fail;
    if (json_array_append_new(shape, json_integer(job->model.input_dim)) != 0) fail = 1;
    for (int i = 0; i < job->model.n_layers; i++)
        if (json_array_append_new(layers, layer_to_json(&job->model.layers[i], &fail)) != 0)
            fail = 1;
    put(model, "input_shape", shape, &fail);
    put(model, "layers", layers, &fail);
    shape = layers = NULL;
    put(root, "model", model, &fail);
    model = NULL;

    compile = json_object();
    metrics = json_array();
    if (!compile || !metrics) goto fail;
    put(compile, "optimizer", optimizer_to_json(&job->compile.optimizer, &fail), &fail);
    put(compile, "loss", loss_to_json(&job->compile.loss, &fail), &fail);
    for (int i = 0; i < job->compile.n_metrics; i++)
        if (json_array_append_new(metrics, json_string(job->compile.metric_names[i])) != 0)
            fail = 1;
    put(compile, "metrics", metrics, &fail);
    metrics = NULL;
    put(root, "compile", compile, &fail);
    compile = NULL;

    put(root, "fit", fit_to_json(&job->fit, &fail), &fail);
    /* Only when set: specs without a warm start render as before. */
    if (job->init.kind == SPEC_INIT_WEIGHTS)
        put(root, "init", json_pack("{s:s}", "weights", job->init.id), &fail);
    else if (job->init.kind == SPEC_INIT_FROM_JOB)
        put(root, "init", json_pack("{s:s, s:b}", "from_job", job->init.id, "resume", job->init.resume),
            &fail);
    if (fail) goto fail;
    return root;

fail:
    json_decref(metrics);
    json_decref(compile);
    json_decref(layers);
    json_decref(shape);
    json_decref(model);
    json_decref(root);
    return NULL;
}
