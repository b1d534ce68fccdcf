/* record.c — epoch records and evaluation results as JSON (see record.h). */
#include <math.h>
#include <stdio.h>

#include "record.h"

/* JSON has no NaN or Inf: such values are written as null. */
static int set_num(json_t *o, const char *key, double v)
{
    return json_object_set_new(o, key, isfinite(v) ? json_real(v) : json_null());
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
