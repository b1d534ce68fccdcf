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
/* {"loss": ..., "<metric>": ..., "regularization_loss": ...} with the names of the
 * compile spec's metrics. */
json_t *record_eval_json(const nn_compile_spec *compile, const nn_eval_result *ev);

#endif
