/*
 * spec.h — job specs: JSON (Jansson) <-> the core's plain spec structs.
 *
 * spec_job_parse validates a native job spec (api-docs/openapi.yaml, JobSpec) and
 * converts it to nn_model_spec / nn_compile_spec / nn_fit_spec. It does not
 * stop at the first mistake: every problem found is reported as {pointer, message},
 * the pointer an RFC 6901 JSON Pointer to the offending field ("~" and "/" in keys
 * escaped as "~0" and "~1"), ready for a problem+json `errors` array.
 * spec_job_to_json renders a parsed job back to JSON with every default written
 * out; parsing that rendering gives the same job. Datasets are named, not checked:
 * the caller resolves the ids. The module keeps no state: every call is
 * thread-safe on distinct arguments. A spec_job owns its layer array (free it with
 * spec_job_free); json_t arguments are borrowed.
 *
 * The accepted JSON, in brief (unknown keys are rejected everywhere; null in an
 * optional field means "the default"; integers must be integral numbers, 64 and
 * 64.0 are both fine, 64.5 is not):
 *
 *   { "name": "<0-127 chars>",
 *     "data": {"train": id, "validation": id, "test": id},   ids: [A-Za-z0-9_.-]{1,63}
 *     "model": {"input_shape": [n],
 *               "layers": [ <dense> | <dropout>, ... ]},      at least one dense
 *     "compile": {"optimizer": <optimizer>, "loss": <loss>, "metrics": [name, ...]},
 *     "fit": {"epochs", "batch_size", "shuffle", "seed", "validation_split",
 *             "early_stopping": null | {"monitor", "min_delta", "patience", "mode",
 *                 "restore_best_weights", "start_from_epoch", "baseline"}},
 *     "init": null | {"weights": id} | {"from_job": id, "resume": false} }
 *
 *   "model" may instead be a Keras model.to_json() document: keras.h converts it
 *   to the native form and points every problem into the Keras document.
 *   "model", "compile" and "compile.loss" are required; "data" and "data.train" too
 *   unless SPEC_DATA_OPTIONAL. Omitted "optimizer" is "rmsprop" (Keras compile).
 *
 *   dense:   {"type": "dense", "units", "name", "activation", "use_bias",
 *             "kernel_initializer", "bias_initializer", "kernel_regularizer",
 *             "bias_regularizer", "activity_regularizer"}
 *   dropout: {"type": "dropout", "rate" in [0, 1), "name", "seed"}
 *   Layer names match [A-Za-z0-9_.-]{1,63} and are unique. Unnamed layers are named
 *   as Keras names a fresh model's layers: dense, dense_1, ...; dropout, dropout_1,
 *   ... (a counter per type), skipping names the spec uses explicitly.
 *
 *   initializer: "glorot_uniform" (or a Keras class name, "GlorotUniform")
 *              | {"name": "random_normal", "mean": 0, "stddev": 0.05, "seed": 1}
 *              | {"class_name": "RandomNormal", "config": {"mean", "stddev", "seed"},
 *                 "module": ..., "registered_name": ...}           (Keras serialized)
 *     parameters: random_normal mean, stddev >= 0; random_uniform minval <= maxval;
 *     every kind takes "seed" (an integer >= 0).
 *   regularizer: null | "l1" | "l2" | "l1_l2" | "l1l2"  (0.01 per term)
 *              | {"l1": a} | {"l2": b} | {"l1": a, "l2": b}
 *              | {"class_name": "L1"|"L2"|"L1L2", "config": {...}, "module", ...}
 *     (Keras defaults for missing config fields: L1 0.01, L2 0.01, L1L2 0 and 0);
 *     coefficients are finite and >= 0.
 *   optimizer: "adam" | {"name": "adam", "learning_rate": <lr>, ...fields} with
 *     fields per kind (Keras' names): all: learning_rate, weight_decay >= 0
 *     (adamw's default 0.004, the others' none), clipnorm, clipvalue,
 *     global_clipnorm (> 0; at most one of the three); sgd: momentum [0,1],
 *     nesterov; adam/adamw: beta_1, beta_2 [0,1), epsilon > 0, amsgrad; rmsprop:
 *     rho [0,1), momentum [0,1], epsilon, centered; adagrad:
 *     initial_accumulator_value >= 0, epsilon.
 *   <lr>: a number > 0, or a schedule object
 *     {"schedule": "exponential_decay", "initial_learning_rate": 0.01,
 *      "decay_steps": 1000, "decay_rate": 0.96, "staircase": false}
 *     {"schedule": "cosine_decay", "initial_learning_rate": 0.01,
 *      "decay_steps": 1000, "alpha": 0.0, "warmup_target": null, "warmup_steps": 0}
 *     (decay_steps counts optimizer steps, as in Keras.)
 *   loss: "mse" | {"name": "binary_crossentropy", "from_logits": false,
 *     "label_smoothing": 0.0, "delta": 1.0} — from_logits for the crossentropies,
 *     label_smoothing [0,1] for binary and categorical crossentropy, delta > 0 for
 *     huber.
 *   metrics: up to NN_MAX_METRICS distinct names; kept as written (history keys);
 *     "accuracy" stays unresolved (see nn_metric_resolve).
 *
 * Cross-field rules: the categorical crossentropies need an output width of 2 or
 * more (binary_crossentropy takes any: one unit per independent label, as Keras); softmax over one unit is rejected
 * (it always outputs 1); from_logits true with a softmax or sigmoid output layer
 * is rejected (Keras only warns, but the loss would squash twice: always a bug);
 * an early_stopping monitor must be "loss", "val_loss" or a compiled metric with
 * optional "val_" prefix, and (unless SPEC_DATA_OPTIONAL) a "val_" monitor needs
 * validation data (data.validation or fit.validation_split > 0); the total
 * parameter count is checked against the limit.
 */
#ifndef FITD_SPEC_H
#define FITD_SPEC_H

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>

#include "nn.h"

/* Caps on a spec. Zero fields take the defaults of spec_limits_default(): 64
 * layers, 65536 units per layer, 1,000,000 input features, 50M parameters, 10000
 * epochs, batch size 65536. */
typedef struct spec_limits {
    int max_layers;
    int max_units;
    int max_input_dim;
    size_t max_params;
    int max_epochs;
    int max_batch_size;
} spec_limits;
spec_limits spec_limits_default(void);
/* Limits that admit any spec: for re-parsing a stored spec, which passed the
 * limits of its day (the API's may exceed the defaults, or have been lowered since). */
spec_limits spec_limits_unlimited(void);

#define SPEC_MAX_PROBLEMS 64

/* One validation failure: a JSON Pointer ("" = the whole document) and a message. */
typedef struct spec_problem {
    char pointer[160];
    char message[200];
} spec_problem;

/* The problems of one parse, in document order. `truncated` is set when more than
 * SPEC_MAX_PROBLEMS were found (the first ones are kept). */
typedef struct spec_problems {
    int n;
    int truncated;
    spec_problem items[SPEC_MAX_PROBLEMS];
} spec_problems;

/* For validators that name each problem's field (spec.c, keras.c). A JSON
 * Pointer is built in the caller's buffer `path` (cap bytes, *len used):
 * spec_path_push appends one segment ("~" escaped as "~0", "/" as "~1") and
 * returns the length to restore (spec_path_pop); a segment that does not fit is
 * left out, so the problem names its parent. spec_problem_addv records a problem
 * at `pointer`, cut back to a segment boundary when the record cannot hold it,
 * or sets `truncated` when the list is full; pr may be NULL (nothing recorded). */
size_t spec_path_push(char *path, size_t cap, size_t *len, const char *key);
size_t spec_path_push_index(char *path, size_t cap, size_t *len, size_t i);
void spec_path_pop(char *path, size_t *len, size_t saved);
/* The JSON Pointer (into out, cap bytes) of the last scalar value that starts
 * before byte `end` of the JSON text: where Jansson, which reports a number out of
 * range by position only, found it. Where the whole pointer cannot be given (a key
 * of 256 bytes or more, nesting past 64 levels, cap) it stops at the value's
 * deepest parent that it can. */
void spec_pointer_before(const char *text, size_t end, char *out, size_t cap);
/* The pointer for Jansson's error `jerr` on the JSON text (len bytes): the
 * out-of-range number's (spec_pointer_before), "" for any other error. */
void spec_json_error_pointer(const char *text, size_t len, const json_error_t *jerr, char *out,
                             size_t cap);
#if defined(__GNUC__)
__attribute__((format(printf, 3, 0)))
#endif
void spec_problem_addv(spec_problems *pr, const char *pointer, const char *fmt, va_list ap);

/* "init": a warm start. {"weights": id} (uploaded safetensors), {"from_job": id}
 * (a succeeded job's final weights) or {"from_job": id, "resume": true} (its
 * trainer state, continued to fit.epochs in total). Ids as dataset ids; the store
 * checks (ids, tenant, tensor names and shapes) are server/warmstart.c's. */
typedef enum spec_init_kind {
    SPEC_INIT_NONE = 0,
    SPEC_INIT_WEIGHTS,
    SPEC_INIT_FROM_JOB
} spec_init_kind;
typedef struct spec_init {
    spec_init_kind kind;
    char id[64];
    int resume; /* SPEC_INIT_FROM_JOB only */
} spec_init;

typedef struct spec_job {
    char name[128];
    char train[64], validation[64], test[64]; /* dataset ids from "data"; "" when absent */
    nn_model_spec model;                      /* layers malloc'ed, owned; names resolved */
    nn_compile_spec compile;
    nn_fit_spec fit;
    spec_init init;                           /* kind SPEC_INIT_NONE when absent */
} spec_job;

/* Parse flags. */
enum {
    SPEC_DATA_OPTIONAL = 1, /* "data" and "data.train" may be absent (the CLI) */
    SPEC_STORED = 2         /* a spec a job stored: see spec_job_parse_stored */
};

/* Results. */
enum {
    SPEC_OK = 0,
    SPEC_INVALID = -1, /* problems lists every mistake found */
    SPEC_NOMEM = -2    /* out of memory; problems holds one item saying so */
};

/* Validate `root` and convert it. On SPEC_OK *out is filled (free it with
 * spec_job_free) and problems->n is 0. Otherwise *out is left empty (safe to pass
 * to spec_job_free) and `problems` explains. `lim` may be NULL (defaults);
 * `problems` may be NULL when only the verdict matters. */
int spec_job_parse(const json_t *root, const spec_limits *lim, int flags, spec_job *out,
                   spec_problems *problems);

/* The same from JSON text: malformed JSON (including invalid UTF-8, duplicate
 * keys and nesting deeper than Jansson's JSON_PARSER_MAX_DEPTH, 2048) is one
 * problem with pointer "" and Jansson's line/column message. */
int spec_job_parse_text(const char *buf, size_t len, const spec_limits *lim, int flags,
                        spec_job *out, spec_problems *problems);

/* A job's stored (resolved) spec, which passed the limits and rules of its day:
 * no limit applies, and a rule added since that only refuses keeps the reading the
 * spec had then (more than one clipping option: clipnorm, else global_clipnorm,
 * else clipvalue, the order the optimizer applied them in). NULL text is invalid. */
int spec_job_parse_stored(const char *text, spec_job *out, spec_problems *problems);

/* Release what spec_job_parse allocated and empty the job. NULL is fine. */
void spec_job_free(spec_job *job);

/* The job as native-form JSON with every default written out (all layers named,
 * initializers and losses as objects, the optimizer with all its fields). Returns
 * a new reference (json_decref it), or NULL when out of memory. */
json_t *spec_job_to_json(const spec_job *job);

#endif
