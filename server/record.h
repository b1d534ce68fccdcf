/*
 * record.h — the JSON forms of the core's training results, shared by every
 * caller that prints or stores them (the train command, the worker pool, the
 * metrics API), so an epoch looks the same everywhere:
 *   {"epoch": 3, "loss": ..., "<metric>": ..., "val_loss": ..., "val_<metric>": ...,
 *    "regularization_loss": ..., "learning_rate": ..., "seconds": ...}
 * Functions return new references (json_decref them), or NULL when out of memory.
 */
#ifndef FITD_RECORD_H
#define FITD_RECORD_H

#include <jansson.h>

#include "nn.h"

json_t *record_epoch_json(const nn_epoch_record *rec);

/* What a name is among the keys of the epoch records of a job compiled with the
 * given metric names: loss or a compiled metric (RECORD_KEY_TRAIN, with a val_
 * twin when the job validates), a val_ twin (RECORD_KEY_VAL), one of
 * regularization_loss, learning_rate and seconds (RECORD_KEY_SINGLE), or not a
 * record key. The one place that knows the record's keys besides
 * record_epoch_json. */
typedef enum record_key_kind {
    RECORD_KEY_UNKNOWN = 0,
    RECORD_KEY_TRAIN,
    RECORD_KEY_VAL,
    RECORD_KEY_SINGLE
} record_key_kind;
record_key_kind record_key(const char *name, const char *const *metrics, int n_metrics);
/* The compiled metric names of cs as the names array record_key and
 * record_keys_list take; returns their count. */
int record_compiled_names(const nn_compile_spec *cs, const char *names[NN_MAX_METRICS]);
/* "loss, <metric>..., regularization_loss, learning_rate, seconds" into dst (cut
 * to fit), for messages that list what a job records. */
void record_keys_list(char *dst, size_t len, const char *const *metrics, int n_metrics);

/* v as JSON: a real, or null for NaN and Inf, which JSON cannot hold (json_real
 * refuses them, which callers took for out of memory). */
json_t *record_json_number(double v);

/* A record's numeric member, or NAN (absent, null or not a number). */
double record_num(const json_t *rec, const char *key);

/* Learning curves read back from stored records: record_curve_row, called once per
 * epoch (a store_metrics_fn), appends x = epoch and y[k] = the record's keys[k]
 * (NAN when absent or null), and adds every numeric key it sees to `seen` when
 * that is non-NULL. It returns non-zero, with failed set, when out of memory. */
typedef struct record_curve {
    const char *keys[2];
    int n_keys;
    json_t *seen; /* borrowed */
    double *x, *y[2];
    int n, cap, failed;
} record_curve;
int record_curve_row(void *user, int epoch, const char *text, size_t len);
void record_curve_free(record_curve *c);
/* {"loss": ..., "<metric>": ..., "regularization_loss": ...} with the names of the
 * compile spec's metrics. */
json_t *record_eval_json(const nn_compile_spec *compile, const nn_eval_result *ev);

#endif
