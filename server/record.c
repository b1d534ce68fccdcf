/* record.c — epoch records and evaluation results as JSON (see record.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

json_t *record_json_number(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static int set_num(json_t *o, const char *key, double v)
{
    return json_object_set_new(o, key, record_json_number(v));
}

static const char *metric_key(const nn_compile_spec *c, int k)
{
    return c->metric_names[k][0] ? c->metric_names[k] : nn_metric_name(c->metrics[k]);
}

json_t *record_epoch_json(const nn_epoch_record *rec)
{
    json_t *o = json_object();
    char key[48];
    int bad = !o;
    if (!bad) bad |= json_object_set_new(o, "epoch", json_integer(rec->epoch));
    if (!bad) bad |= set_num(o, "loss", rec->loss);
    for (int k = 0; !bad && k < rec->n_metrics; k++) bad |= set_num(o, rec->metric_names[k], rec->metrics[k]);
    if (!bad && rec->has_val) {
        bad |= set_num(o, "val_loss", rec->val_loss);
        for (int k = 0; !bad && k < rec->n_metrics; k++) {
            snprintf(key, sizeof key, "val_%s", rec->metric_names[k]);
            bad |= set_num(o, key, rec->val_metrics[k]);
        }
    }
    if (!bad) bad |= set_num(o, "regularization_loss", rec->regularization_loss);
    if (!bad) bad |= set_num(o, "learning_rate", rec->learning_rate);
    if (!bad) bad |= set_num(o, "seconds", rec->seconds);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *record_eval_json(const nn_compile_spec *compile, const nn_eval_result *ev)
{
    json_t *o = json_object();
    int bad = !o;
    if (!bad) bad |= set_num(o, "loss", ev->loss);
    for (int k = 0; !bad && k < ev->n_metrics; k++) bad |= set_num(o, metric_key(compile, k), ev->metrics[k]);
    if (!bad) bad |= set_num(o, "regularization_loss", ev->regularization_loss);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The keys every record has besides loss and the compiled metrics. */
static const char *const single_keys[] = {"regularization_loss", "learning_rate", "seconds"};
#define N_SINGLE (int)(sizeof single_keys / sizeof single_keys[0])

static int is_train_key(const char *name, const char *const *metrics, int n_metrics)
{
    if (strcmp(name, "loss") == 0) return 1;
    for (int i = 0; i < n_metrics; i++)
        if (metrics[i] && strcmp(name, metrics[i]) == 0) return 1;
    return 0;
}

record_key_kind record_key(const char *name, const char *const *metrics, int n_metrics)
{
    if (is_train_key(name, metrics, n_metrics)) return RECORD_KEY_TRAIN;
    if (strncmp(name, "val_", 4) == 0 && is_train_key(name + 4, metrics, n_metrics))
        return RECORD_KEY_VAL;
    for (int i = 0; i < N_SINGLE; i++)
        if (strcmp(name, single_keys[i]) == 0) return RECORD_KEY_SINGLE;
    return RECORD_KEY_UNKNOWN;
}

int record_compiled_names(const nn_compile_spec *cs, const char *names[NN_MAX_METRICS])
{
    int n = 0;
    for (; n < cs->n_metrics; n++) names[n] = cs->metric_names[n];
    return n;
}

void record_keys_list(char *dst, size_t len, const char *const *metrics, int n_metrics)
{
    size_t n = (size_t)snprintf(dst, len, "loss");
    for (int i = 0; i < n_metrics && n < len; i++)
        if (metrics[i]) n += (size_t)snprintf(dst + n, len - n, ", %s", metrics[i]);
    for (int i = 0; i < N_SINGLE && n < len; i++)
        n += (size_t)snprintf(dst + n, len - n, ", %s", single_keys[i]);
}

double record_num(const json_t *rec, const char *key)
{
    const json_t *v = json_object_get(rec, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

int record_curve_row(void *user, int epoch, const char *text, size_t len)
{
    record_curve *c = user;
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 64;
        double *x = realloc(c->x, (size_t)cap * sizeof *x);
        if (!x) return c->failed = 1;
        c->x = x;
        for (int k = 0; k < c->n_keys; k++) {
            double *y = realloc(c->y[k], (size_t)cap * sizeof *y);
            if (!y) return c->failed = 1;
            c->y[k] = y;
        }
        c->cap = cap;
    }
    json_t *r = json_loadb(text, len, 0, NULL);
    if (!r) return c->failed = 1;
    if (c->seen) {
        const char *key;
        json_t *v;
        json_object_foreach(r, key, v) if (json_is_number(v) && strcmp(key, "epoch") != 0)
            json_object_set_new(c->seen, key, json_true());
    }
    c->x[c->n] = epoch;
    for (int k = 0; k < c->n_keys; k++) c->y[k][c->n] = record_num(r, c->keys[k]);
    c->n++;
    json_decref(r);
    return 0;
}

void record_curve_free(record_curve *c)
{
    free(c->x);
    for (int k = 0; k < 2; k++) free(c->y[k]);
    c->x = c->y[0] = c->y[1] = NULL;
    c->n = c->cap = 0;
}
