/*
 * keras.c — Keras model.to_json() documents <-> native model JSON (see keras.h for
 * the version families and their key structures).
 *
 * Import walks only the known structure (fixed recursion depth), records every
 * problem and goes on, like spec.c. Values fitd maps are copied into the native
 * form untouched so that spec.c's checks (and its parsing of Keras-serialized
 * initializers and regularizers) are the only ones; the one rewrite is the
 * VarianceScaling initializer of old files, which becomes the named kind it
 * stands for.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keras.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define KERAS_PTR_MAX 64 /* a pointer relative to the base, e.g. "/config/layers/0/config/batch_shape" */

struct keras_map {
    char base[sizeof(((spec_problem *)0)->pointer)];
    char input[KERAS_PTR_MAX]; /* the array holding the input width ("" = unknown) */
    int input_index;           /* the width's index in that array */
    char layers[KERAS_PTR_MAX]; /* the layer list */
    int n;
    size_t *layer; /* per native layer, its index in the Keras layer list */
};

/* ---------------------------------------------------------------- context */

typedef struct kctx {
    spec_problems *pr;
    char path[512]; /* the current JSON Pointer, base included */
    size_t len;
    size_t base_len;
    int nomem;
} kctx;

static size_t kpush(kctx *k, const char *key)
{
    return spec_path_push(k->path, sizeof k->path, &k->len, key);
}

static size_t kpush_index(kctx *k, size_t i)
{
    return spec_path_push_index(k->path, sizeof k->path, &k->len, i);
}

static void kpop(kctx *k, size_t saved)
{
    spec_path_pop(k->path, &k->len, saved);
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void kproblem(kctx *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    spec_problem_addv(k->pr, k->path, fmt, ap);
    va_end(ap);
}

/* The problem at /<path>/<key>. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void kproblem_at(kctx *k, const char *key, const char *fmt, ...)
{
    size_t s = kpush(k, key);
    va_list ap;
    va_start(ap, fmt);
    spec_problem_addv(k->pr, k->path, fmt, ap);
    va_end(ap);
    kpop(k, s);
}

/* A user string fit for a message: itself when it is a short identifier-like
 * ASCII string, "?" otherwise (messages must stay valid UTF-8). */
static const char *shown(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 48) return "?";
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_.->/ ", *p)) return "?";
    return s;
}

/* Report every key of `obj` not in `allowed` (NULL-terminated). */
static void check_keys(kctx *k, const json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++) ok = strcmp(*a, key) == 0;
        if (!ok) kproblem_at(k, key, "unknown key '%s': fitd cannot honour it", shown(key));
    }
}

/* ---------------------------------------------------------------- checks */

/* A field fitd only supports at its default: null / absent (or false). */
static void want_null(kctx *k, const json_t *cfg, const char *key, const char *what)
{
    const json_t *v = json_object_get(cfg, key);
    if (v && !json_is_null(v) && !json_is_false(v))
        kproblem_at(k, key, "fitd does not support %s", what);
}

static void want_trainable(kctx *k, const json_t *cfg)
{
    const json_t *v = json_object_get(cfg, "trainable");
    if (v && !json_is_true(v))
        kproblem_at(k, "trainable", "fitd trains every layer: trainable must be true");
}

/* "float32", null, or a float32 dtype-policy object (Keras 3.4+ DTypePolicy,
 * 3.4-3.6 FloatDTypePolicy, tf.keras Policy). */
static void want_float32(kctx *k, const json_t *cfg)
{
    const json_t *v = json_object_get(cfg, "dtype");
    if (!v || json_is_null(v)) return;
    size_t s = kpush(k, "dtype");
    if (json_is_string(v)) {
        if (strcmp(json_string_value(v), "float32") != 0)
            kproblem(k, "fitd computes in float32; dtype '%s' is not supported",
                     shown(json_string_value(v)));
    } else if (json_is_object(v)) {
        static const char *const keys[] = {"module", "class_name", "config", "registered_name",
                                           NULL};
        static const char *const classes[] = {"DTypePolicy", "FloatDTypePolicy", "Policy"};
        check_keys(k, v, keys);
        const char *cls = json_string_value(json_object_get(v, "class_name"));
        int known = 0;
        for (size_t i = 0; cls && i < N_OF(classes); i++) known |= strcmp(cls, classes[i]) == 0;
        const json_t *cfg2 = json_object_get(v, "config");
        const char *name = json_string_value(json_object_get(cfg2, "name"));
        if (!known) {
            kproblem_at(k, "class_name", "fitd does not support the dtype policy '%s'",
                        shown(cls));
        } else if (!name || strcmp(name, "float32") != 0) {
            size_t s1 = kpush(k, "config");
            kproblem_at(k, "name", "fitd computes in float32; dtype policy '%s' is not supported",
                        shown(name));
            kpop(k, s1);
        }
    } else {
        kproblem(k, "dtype must be \"float32\" or a dtype policy object");
    }
    kpop(k, s);
}

/* A serialized object's header: "registered_name" is null for Keras' own
 * classes (a custom class has "package>Name"); "module" a string. */
static void check_header(kctx *k, const json_t *obj, const char *cls)
{
    const json_t *rn = json_object_get(obj, "registered_name");
    if (rn && !json_is_null(rn) &&
        !(json_is_string(rn) && cls && strcmp(json_string_value(rn), cls) == 0))
        kproblem_at(k, "registered_name", "fitd does not support custom (registered) classes");
    const json_t *mod = json_object_get(obj, "module");
    if (mod && !json_is_null(mod) && !json_is_string(mod))
        kproblem_at(k, "module", "must be a string");
}

/* ---------------------------------------------------------------- the map */

static void map_set(char dst[KERAS_PTR_MAX], const kctx *k)
{
    const char *rel = k->path + k->base_len;
    if (strlen(rel) < KERAS_PTR_MAX) snprintf(dst, KERAS_PTR_MAX, "%s", rel);
}

/* ---------------------------------------------------------------- input shape */

/* A [null, n] shape at /<path>/<key>: returns its width value (borrowed; may be
 * any JSON, spec.c checks it) and records the pointer in `where`, or NULL. */
static json_t *batch_shape(kctx *k, const json_t *cfg, const char *key,
                           char where[KERAS_PTR_MAX])
{
    json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v)) return NULL;
    size_t s = kpush(k, key);
    json_t *w = NULL;
    if (!json_is_array(v) || json_array_size(v) != 2) {
        kproblem(k, "fitd takes flat feature vectors: the shape must be [null, n]");
    } else if (!json_is_null(json_array_get(v, 0))) {
        size_t s0 = kpush_index(k, 0);
        kproblem(k, "fitd takes any batch size: the batch dimension must be null");
        kpop(k, s0);
    } else {
        w = json_array_get(v, 1);
        map_set(where, k);
    }
    kpop(k, s);
    return w;
}

/* The candidate input widths, in the order that decides. */
typedef struct input_src {
    json_t *width;
    char where[KERAS_PTR_MAX];
} input_src;

static void input_add(input_src *src, int *n, json_t *w, const char *where)
{
    if (!w) return;
    src[*n].width = w;
    snprintf(src[*n].where, KERAS_PTR_MAX, "%s", where);
    (*n)++;
}

/* ---------------------------------------------------------------- initializers */

/* Old files write glorot_uniform & co. as VarianceScaling(scale, mode,
 * distribution); "normal" is tf.keras 2.0's name for the truncated normal. */
static json_t *variance_scaling(kctx *k, const json_t *v)
{
    static const struct {
        double scale;
        const char *mode;
        int uniform;
        const char *cls;
    } known[] = {
        {1.0, "fan_avg", 1, "GlorotUniform"}, {1.0, "fan_avg", 0, "GlorotNormal"},
        {2.0, "fan_in", 1, "HeUniform"},      {2.0, "fan_in", 0, "HeNormal"},
        {1.0, "fan_in", 1, "LecunUniform"},   {1.0, "fan_in", 0, "LecunNormal"},
    };
    static const char *const keys[] = {"scale", "mode", "distribution", "seed", NULL};
    json_t *cfg = json_object_get(v, "config");
    size_t s = kpush(k, "config");
    json_t *out = NULL;
    if (!json_is_object(cfg)) {
        kproblem(k, "VarianceScaling needs its config");
        goto done;
    }
    check_keys(k, cfg, keys);
    const json_t *sc = json_object_get(cfg, "scale");
    const json_t *md = json_object_get(cfg, "mode"), *ds = json_object_get(cfg, "distribution");
    /* Absent or null: Keras' defaults; any other non-matching type is an error. */
    int bad_sc = sc && !json_is_null(sc) && !json_is_number(sc);
    int bad_md = md && !json_is_null(md) && !json_is_string(md);
    int bad_ds = ds && !json_is_null(ds) && !json_is_string(ds);
    if (bad_sc) kproblem_at(k, "scale", "must be a number");
    if (bad_md) kproblem_at(k, "mode", "must be a string");
    if (bad_ds) kproblem_at(k, "distribution", "must be a string");
    if (bad_sc || bad_md || bad_ds) goto done;
    double scale = json_is_number(sc) ? json_number_value(sc) : 1.0;
    const char *mode = json_is_string(md) ? json_string_value(md) : "fan_in";
    const char *dist = json_is_string(ds) ? json_string_value(ds) : "truncated_normal";
    int uniform = strcmp(dist, "uniform") == 0;
    if (!uniform && strcmp(dist, "truncated_normal") != 0 && strcmp(dist, "normal") != 0) {
        kproblem_at(k, "distribution", "fitd supports the distributions uniform and "
                                       "truncated_normal, not '%s'", shown(dist));
        goto done;
    }
    const char *cls = NULL;
    for (size_t i = 0; i < N_OF(known) && !cls; i++)
        if (known[i].scale == scale && strcmp(known[i].mode, mode) == 0 &&
            known[i].uniform == uniform)
            cls = known[i].cls;
    if (!cls) {
        kproblem(k, "fitd supports VarianceScaling only as glorot_*, he_* or lecun_* "
                    "(scale 1 or 2, mode fan_avg or fan_in)");
        goto done;
    }
    json_t *seed = json_object_get(cfg, "seed");
    out = json_pack("{s:s, s:{s:O}}", "class_name", cls, "config", "seed",
                    seed ? seed : json_null());
    if (!out) k->nomem = 1;
done:
    kpop(k, s);
    return out;
}

/* A new reference to the initializer as spec.c takes it (NULL when dropped). */
static json_t *initializer(kctx *k, json_t *v)
{
    const char *cls = json_string_value(json_object_get(v, "class_name"));
    if (json_is_object(v) && cls && strcmp(cls, "VarianceScaling") == 0) {
        check_header(k, v, cls);
        return variance_scaling(k, v);
    }
    return json_incref(v);
}

/* ---------------------------------------------------------------- layers */

static int copy_field(kctx *k, json_t *dst, const json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    if (!v) return 0;
    if (json_object_set(dst, key, v) != 0) k->nomem = 1;
    return 1;
}

static void convert_dense(kctx *k, const json_t *cfg, json_t *out)
{
    static const char *const keys[] = {
        "name", "trainable", "dtype", "units", "activation", "use_bias", "kernel_initializer",
        "bias_initializer", "kernel_regularizer", "bias_regularizer", "activity_regularizer",
        "kernel_constraint", "bias_constraint", "batch_input_shape", "quantization_config",
        "lora_rank", "lora_alpha", NULL};
    static const char *const copied[] = {"name", "units", "activation", "use_bias",
                                         "kernel_regularizer", "bias_regularizer",
                                         "activity_regularizer"};
    static const char *const inits[] = {"kernel_initializer", "bias_initializer"};
    check_keys(k, cfg, keys);
    want_trainable(k, cfg);
    want_float32(k, cfg);
    want_null(k, cfg, "kernel_constraint", "weight constraints");
    want_null(k, cfg, "bias_constraint", "weight constraints");
    want_null(k, cfg, "quantization_config", "quantization");
    want_null(k, cfg, "lora_rank", "LoRA");
    want_null(k, cfg, "lora_alpha", "LoRA");
    if (json_object_set_new(out, "type", json_string("dense")) != 0) k->nomem = 1;
    for (size_t i = 0; i < N_OF(copied); i++) copy_field(k, out, cfg, copied[i]);
    for (size_t i = 0; i < N_OF(inits); i++) {
        json_t *v = json_object_get(cfg, inits[i]);
        if (!v) continue;
        size_t s = kpush(k, inits[i]);
        json_t *conv = initializer(k, v);
        kpop(k, s);
        if (conv && json_object_set_new(out, inits[i], conv) != 0) k->nomem = 1;
    }
}

static void convert_dropout(kctx *k, const json_t *cfg, json_t *out)
{
    static const char *const keys[] = {"name", "trainable", "dtype", "rate", "noise_shape",
                                       "seed", "batch_input_shape", NULL};
    static const char *const copied[] = {"name", "rate", "seed"};
    check_keys(k, cfg, keys);
    want_trainable(k, cfg);
    want_float32(k, cfg);
    want_null(k, cfg, "noise_shape", "noise_shape (dropout masks shared across axes)");
    if (json_object_set_new(out, "type", json_string("dropout")) != 0) k->nomem = 1;
    for (size_t i = 0; i < N_OF(copied); i++) copy_field(k, out, cfg, copied[i]);
}

static void convert_input(kctx *k, const json_t *cfg, input_src *src, int *n_src)
{
    static const char *const keys[] = {"batch_shape", "batch_input_shape", "dtype", "sparse",
                                       "ragged", "optional", "name", NULL};
    char where[KERAS_PTR_MAX] = "";
    check_keys(k, cfg, keys);
    want_float32(k, cfg);
    want_null(k, cfg, "sparse", "sparse inputs");
    want_null(k, cfg, "ragged", "ragged inputs");
    want_null(k, cfg, "optional", "optional inputs");
    const char *key = json_object_get(cfg, "batch_shape") ? "batch_shape" : "batch_input_shape";
    json_t *w = batch_shape(k, cfg, key, where);
    if (w) {
        input_add(src, n_src, w, where);
    } else if (!json_object_get(cfg, key)) {
        kproblem_at(k, key, "the InputLayer needs its shape");
    }
}

/* One entry of the layer list at the current path; appends the native layer. */
static void convert_layer(kctx *k, const json_t *l, size_t index, json_t *native_layers,
                          keras_map *map, input_src *src, int *n_src)
{
    static const char *const keys[] = {"module", "class_name", "config", "registered_name",
                                       "build_config", NULL};
    json_t *out = NULL;
    if (!json_is_object(l)) {
        kproblem(k, "a layer must be an object with class_name and config");
        return;
    }
    check_keys(k, l, keys);
    const char *cls = json_string_value(json_object_get(l, "class_name"));
    check_header(k, l, cls);
    json_t *cfg = json_object_get(l, "config");
    if (!cls) {
        kproblem_at(k, "class_name", "a layer needs its class_name");
        return;
    }
    if (!json_is_object(cfg)) {
        kproblem_at(k, "config", "a layer needs its config object");
        return;
    }
    int dense = strcmp(cls, "Dense") == 0, dropout = strcmp(cls, "Dropout") == 0;
    size_t s = kpush(k, "config");
    if (strcmp(cls, "InputLayer") == 0) {
        if (index == 0)
            convert_input(k, cfg, src, n_src);
        else
            kproblem(k, "an InputLayer may only come first");
        goto done;
    }
    if (!dense && !dropout) {
        kpop(k, s);
        kproblem_at(k, "class_name", "fitd does not support the layer class '%s' "
                                     "(supported: InputLayer, Dense, Dropout)", shown(cls));
        return;
    }
    /* tf.keras writes the input shape on the first layer of a model built with
     * input_shape=: alone, or also on the InputLayer it adds before that layer. */
    char where[KERAS_PTR_MAX] = "";
    json_t *w = NULL;
    if (json_object_get(cfg, "batch_input_shape")) {
        if (map->n == 0)
            w = batch_shape(k, cfg, "batch_input_shape", where);
        else
            kproblem_at(k, "batch_input_shape", "only the first layer may carry the input shape");
    }
    input_add(src, n_src, w, where);
    out = json_object();
    if (!out) {
        k->nomem = 1;
        goto done;
    }
    if (dense)
        convert_dense(k, cfg, out);
    else
        convert_dropout(k, cfg, out);
    map->layer[map->n++] = index;
    if (json_array_append_new(native_layers, out) != 0) k->nomem = 1;
    out = NULL;
done:
    kpop(k, s);
    json_decref(out);
}

/* ---------------------------------------------------------------- import */

int keras_is_document(const json_t *model)
{
    return json_is_object(model) && json_object_get(model, "class_name") != NULL;
}

void keras_map_free(keras_map *map)
{
    if (!map) return;
    free(map->layer);
    free(map);
}

/* Sequential config (object form): name, trainable, dtype, layers,
 * build_input_shape. Returns the layer list (borrowed) or NULL. */
static json_t *sequential_config(kctx *k, json_t *cfg, keras_map *map, input_src *src,
                                 int *n_src)
{
    static const char *const keys[] = {"name", "trainable", "dtype", "layers",
                                       "build_input_shape", NULL};
    char where[KERAS_PTR_MAX] = "";
    check_keys(k, cfg, keys);
    want_trainable(k, cfg);
    want_float32(k, cfg);
    json_t *layers = json_object_get(cfg, "layers");
    size_t s = kpush(k, "layers");
    map_set(map->layers, k);
    if (!json_is_array(layers)) {
        kproblem(k, "the Sequential config needs its layers array");
        layers = NULL;
    }
    kpop(k, s);
    json_t *w = batch_shape(k, cfg, "build_input_shape", where);
    input_add(src, n_src, w, where);
    return layers;
}

/* Decide the input width: the first source wins, the others must agree. */
static json_t *input_width(kctx *k, const input_src *src, int n_src, keras_map *map)
{
    if (n_src == 0) {
        size_t s = k->len;
        k->len += strlen(map->layers);
        memcpy(k->path + s, map->layers, strlen(map->layers) + 1);
        kproblem(k, "the input width is unknown: start the model with keras.Input(shape=(n,))");
        kpop(k, s);
        return json_integer(1); /* a placeholder: the document is rejected anyway */
    }
    snprintf(map->input, sizeof map->input, "%s", src[0].where);
    map->input_index = 1;
    /* A deciding width that is no width (0, null, ...) is the problem itself: the
     * spec's check names it there, through the map; the others are judged once it
     * is fixed. */
    const json_t *w0 = src[0].width;
    int usable = json_is_number(w0) && json_number_value(w0) >= 1;
    for (int i = 1; usable && i < n_src; i++) {
        if (json_equal(src[i].width, src[0].width)) continue;
        size_t s = k->len;
        snprintf(k->path + s, sizeof k->path - s, "%s/1", src[i].where);
        kproblem(k, "disagrees with the input width at %s%s/1", map->base, src[0].where);
        kpop(k, s);
    }
    return json_incref(src[0].width);
}

int keras_to_native(const json_t *doc, const char *base, json_t **native, keras_map **map,
                    spec_problems *pr)
{
    static const char *const keys[] = {"module", "class_name", "config", "registered_name",
                                       "build_config", "compile_config", "keras_version",
                                       "backend", NULL};
    kctx k;
    keras_map *m = NULL;
    json_t *out = NULL, *layers_out = NULL, *shape = NULL, *width = NULL;
    /* At most: the InputLayer, the first layer, build_input_shape, build_config. */
    input_src src[4];
    int n_src = 0;
    memset(&k, 0, sizeof k);
    k.pr = pr;
    snprintf(k.path, sizeof k.path, "%s", base);
    k.len = k.base_len = strlen(k.path);
    *native = NULL;
    *map = NULL;

    m = calloc(1, sizeof *m);
    out = json_object();
    layers_out = json_array();
    if (!m || !out || !layers_out) goto nomem;
    snprintf(m->base, sizeof m->base, "%s", base);

    check_keys(&k, doc, keys);
    const char *cls = json_string_value(json_object_get(doc, "class_name"));
    check_header(&k, doc, cls);
    if (!cls || strcmp(cls, "Sequential") != 0)
        kproblem_at(&k, "class_name", "fitd takes Sequential models, not '%s'", shown(cls));

    json_t *cfg = json_object_get(doc, "config"), *layers = NULL;
    size_t s = kpush(&k, "config");
    if (json_is_array(cfg)) { /* the old bare-list form */
        layers = cfg;
        map_set(m->layers, &k);
    } else if (json_is_object(cfg)) {
        layers = sequential_config(&k, cfg, m, src, &n_src);
    } else {
        kproblem(&k, "must be the Sequential config (an object, or a list of layers)");
    }
    /* The InputLayer and the first layer come before build_input_shape. */
    input_src cfg_src = n_src ? src[0] : (input_src){0};
    n_src = 0;
    size_t n = layers ? json_array_size(layers) : 0;
    m->layer = calloc(n ? n : 1, sizeof *m->layer);
    if (!m->layer) goto nomem;
    size_t sl = json_is_array(cfg) ? k.len : kpush(&k, "layers");
    for (size_t i = 0; i < n && !k.nomem; i++) {
        size_t si = kpush_index(&k, i);
        convert_layer(&k, json_array_get(layers, i), i, layers_out, m, src, &n_src);
        kpop(&k, si);
    }
    kpop(&k, sl);
    kpop(&k, s);
    if (cfg_src.width) src[n_src++] = cfg_src;
    char where[KERAS_PTR_MAX] = "";
    json_t *bc = json_object_get(doc, "build_config");
    if (json_is_object(bc)) {
        size_t sb = kpush(&k, "build_config");
        input_add(src, &n_src, batch_shape(&k, bc, "input_shape", where), where);
        kpop(&k, sb);
    }
    if (k.nomem) goto nomem;

    width = input_width(&k, src, n_src, m);
    shape = json_array();
    if (!width || !shape) goto nomem;
    if (json_array_append_new(shape, width) != 0) { /* width freed by Jansson */
        width = NULL;
        goto nomem;
    }
    width = NULL;
    if (json_object_set_new(out, "input_shape", shape) != 0) {
        shape = NULL;
        goto nomem;
    }
    shape = NULL;
    if (json_object_set_new(out, "layers", layers_out) != 0) {
        layers_out = NULL;
        goto nomem;
    }
    *native = out;
    *map = m;
    return 0;

nomem:
    json_decref(width);
    json_decref(shape);
    json_decref(layers_out);
    json_decref(out);
    keras_map_free(m);
    return -1;
}

/* ---------------------------------------------------------------- pointer mapping */

void keras_map_problems(const keras_map *map, spec_problems *pr, int from)
{
    if (!map || !pr) return;
    size_t nb = strlen(map->base);
    for (int i = from; i < pr->n; i++) {
        spec_problem *it = &pr->items[i];
        if (strncmp(it->pointer, map->base, nb) != 0 || it->pointer[nb] != '/') continue;
        const char *rest = it->pointer + nb;
        char mapped[512];
        if (strncmp(rest, "/input_shape", 12) == 0 && (rest[12] == 0 || rest[12] == '/')) {
            if (!map->input[0])
                snprintf(mapped, sizeof mapped, "%s%s", map->base, map->layers);
            else if (rest[12] == '/')
                snprintf(mapped, sizeof mapped, "%s%s/%d", map->base, map->input, map->input_index);
            else
                snprintf(mapped, sizeof mapped, "%s%s", map->base, map->input);
        } else if (strcmp(rest, "/layers") == 0) {
            snprintf(mapped, sizeof mapped, "%s%s", map->base, map->layers);
        } else if (strncmp(rest, "/layers/", 8) == 0) {
            char *end = NULL;
            long li = strtol(rest + 8, &end, 10);
            if (end == rest + 8 || li < 0 || li >= map->n) continue;
            const char *tail = end;
            size_t ki = map->layer[li];
            if (*tail == 0)
                snprintf(mapped, sizeof mapped, "%s%s/%zu", map->base, map->layers, ki);
            else if (strncmp(tail, "/type", 5) == 0 && (tail[5] == 0 || tail[5] == '/'))
                snprintf(mapped, sizeof mapped, "%s%s/%zu/class_name", map->base, map->layers, ki);
            else
                snprintf(mapped, sizeof mapped, "%s%s/%zu/config%s", map->base, map->layers, ki,
                         tail);
        } else {
            continue;
        }
        size_t n = strlen(mapped);
        if (n >= sizeof it->pointer) {
            n = sizeof it->pointer - 1;
            while (n > 0 && mapped[n] != '/') n--;
        }
        memcpy(it->pointer, mapped, n);
        it->pointer[n] = 0;
    }
}

/* ---------------------------------------------------------------- export */

/* json_object_set_new that remembers a failure (the value is freed either way). */
static void put(json_t *obj, const char *key, json_t *value, int *fail)
{
    if (json_object_set_new(obj, key, value) != 0) *fail = 1;
}

/* {"module": module, "class_name": cls, "config": config, "registered_name": null} */
static json_t *keras_object(const char *module, const char *cls, json_t *config, int *fail)
{
    json_t *o = json_object();
    put(o, "module", json_string(module), fail);
    put(o, "class_name", json_string(cls), fail);
    put(o, "config", config, fail);
    put(o, "registered_name", json_null(), fail);
    if (*fail) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *dtype_policy(int *fail)
{
    json_t *cfg = json_object();
    put(cfg, "name", json_string("float32"), fail);
    return keras_object("keras", "DTypePolicy", cfg, fail);
}

/* [null, n] */
static json_t *shape_of(int n, int *fail)
{
    json_t *a = json_array();
    if (!a || json_array_append_new(a, json_null()) != 0 ||
        json_array_append_new(a, json_integer(n)) != 0)
        *fail = 1;
    return a;
}

/* Keras' class name for an initializer kind: its snake_case name in CamelCase
 * ("glorot_uniform" -> "GlorotUniform"), which nn_init_from_name resolves back. */
static void init_class(nn_init_kind kind, char out[64])
{
    const char *s = nn_init_name(kind);
    size_t n = 0;
    int up = 1;
    for (; *s && n + 1 < 64; s++) {
        if (*s == '_') {
            up = 1;
            continue;
        }
        out[n++] = up ? (char)toupper((unsigned char)*s) : *s;
        up = 0;
    }
    out[n] = 0;
}

static json_t *initializer_json(const nn_init_spec *in, int *fail)
{
    char cls[64];
    init_class(in->kind, cls);
    json_t *cfg = json_object();
    if (in->kind == NN_INIT_RANDOM_NORMAL) {
        put(cfg, "mean", json_real(in->a), fail);
        put(cfg, "stddev", json_real(in->b), fail);
    } else if (in->kind == NN_INIT_RANDOM_UNIFORM) {
        put(cfg, "minval", json_real(in->a), fail);
        put(cfg, "maxval", json_real(in->b), fail);
    }
    /* Keras' Zeros and Ones take no seed (nor need one). */
    if (in->kind != NN_INIT_ZEROS && in->kind != NN_INIT_ONES)
        put(cfg, "seed", in->has_seed ? json_integer((json_int_t)in->seed) : json_null(), fail);
    return keras_object("keras.initializers", cls, cfg, fail);
}

static json_t *regularizer_json(nn_regularizer r, int *fail)
{
    if (r.l1 == 0 && r.l2 == 0) return json_null();
    json_t *cfg = json_object();
    if (r.l1 != 0) put(cfg, "l1", json_real(r.l1), fail);
    if (r.l2 != 0) put(cfg, "l2", json_real(r.l2), fail);
    const char *cls = r.l1 != 0 && r.l2 != 0 ? "L1L2" : r.l1 != 0 ? "L1" : "L2";
    return keras_object("keras.regularizers", cls, cfg, fail);
}

/* Keras 3 serializes swish under its function's name, silu. */
static const char *activation_name(nn_activation a)
{
    return a == NN_ACT_SWISH ? "silu" : nn_activation_name(a);
}

static json_t *layer_json(const nn_layer_spec *l, int in_width, int *fail)
{
    json_t *cfg = json_object();
    put(cfg, "name", json_string(l->name), fail);
    put(cfg, "trainable", json_true(), fail);
    put(cfg, "dtype", dtype_policy(fail), fail);
    const char *cls;
    if (l->kind == NN_LAYER_DENSE) {
        cls = "Dense";
        if (l->activity_reg.l1 != 0 || l->activity_reg.l2 != 0) /* Layer.get_config */
            put(cfg, "activity_regularizer", regularizer_json(l->activity_reg, fail), fail);
        put(cfg, "units", json_integer(l->units), fail);
        put(cfg, "activation", json_string(activation_name(l->activation)), fail);
        put(cfg, "use_bias", json_boolean(l->use_bias), fail);
        put(cfg, "kernel_initializer", initializer_json(&l->kernel_init, fail), fail);
        put(cfg, "bias_initializer", initializer_json(&l->bias_init, fail), fail);
        put(cfg, "kernel_regularizer", regularizer_json(l->kernel_reg, fail), fail);
        put(cfg, "bias_regularizer", regularizer_json(l->bias_reg, fail), fail);
        put(cfg, "kernel_constraint", json_null(), fail);
        put(cfg, "bias_constraint", json_null(), fail);
    } else {
        cls = "Dropout";
        put(cfg, "rate", json_real(l->rate), fail);
        put(cfg, "seed", l->has_seed ? json_integer((json_int_t)l->seed) : json_null(), fail);
        put(cfg, "noise_shape", json_null(), fail);
    }
    json_t *o = keras_object("keras.layers", cls, cfg, fail);
    json_t *bc = json_object();
    put(bc, "input_shape", shape_of(in_width, fail), fail);
    put(o, "build_config", bc, fail);
    return o;
}

/* Keras 3's name for the InputLayer, numbered past any layer that took it: Keras
 * refuses a model with a name used twice. */
static const char *input_layer_name(const nn_model_spec *model, char *buf, size_t size)
{
    for (int n = 0;; n++) {
        snprintf(buf, size, n ? "input_layer_%d" : "input_layer", n);
        int used = 0;
        for (int i = 0; i < model->n_layers && !used; i++)
            used = strcmp(model->layers[i].name, buf) == 0;
        if (!used) return buf;
    }
}

json_t *keras_model_to_json(const nn_model_spec *model)
{
    int fail = 0;
    char in_name[NN_NAME_MAX];
    json_t *layers = json_array(), *in_cfg = json_object();
    if (!layers) fail = 1;
    put(in_cfg, "batch_shape", shape_of(model->input_dim, &fail), &fail);
    put(in_cfg, "dtype", json_string("float32"), &fail);
    put(in_cfg, "sparse", json_false(), &fail);
    put(in_cfg, "name", json_string(input_layer_name(model, in_name, sizeof in_name)), &fail);
    json_t *input = keras_object("keras.layers", "InputLayer", in_cfg, &fail);
    if (!layers || json_array_append_new(layers, input) != 0) fail = 1;
    int width = model->input_dim;
    for (int i = 0; i < model->n_layers && !fail; i++) {
        const nn_layer_spec *l = &model->layers[i];
        if (json_array_append_new(layers, layer_json(l, width, &fail)) != 0) fail = 1;
        if (l->kind == NN_LAYER_DENSE) width = l->units;
    }
    json_t *cfg = json_object();
    put(cfg, "name", json_string("sequential"), &fail);
    put(cfg, "trainable", json_true(), &fail);
    put(cfg, "dtype", dtype_policy(&fail), &fail);
    put(cfg, "layers", layers, &fail);
    put(cfg, "build_input_shape", shape_of(model->input_dim, &fail), &fail);
    json_t *doc = keras_object("keras", "Sequential", cfg, &fail);
    json_t *bc = json_object();
    put(bc, "input_shape", shape_of(model->input_dim, &fail), &fail);
    put(doc, "build_config", bc, &fail);
    if (fail) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}
