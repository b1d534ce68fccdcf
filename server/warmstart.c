/*
 * warmstart.c — checks and loading for a job's "init". See warmstart.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warmstart.h"

/* ---------------------------------------------------------------- pure helpers */

int warmstart_model_tensors(const nn_model_spec *m, warmstart_tensor *out, int max)
{
    int n = 0, in = m->input_dim;
    for (int i = 0; i < m->n_layers; i++) {
        const nn_layer_spec *L = &m->layers[i];
        if (L->kind != NN_LAYER_DENSE) continue; /* dropout has no weights */
        for (int part = 0; part < (L->use_bias ? 2 : 1); part++) {
            if (n == max) return -1;
            warmstart_tensor *t = &out[n++];
            memset(t, 0, sizeof *t);
            snprintf(t->name, sizeof t->name, "%s/%s", L->name, part ? "bias" : "kernel");
            t->ndim = part ? 1 : 2;
            t->shape[0] = part ? L->units : in;
            t->shape[1] = part ? 0 : L->units;
        }
        in = L->units;
    }
    return n;
}

static void shape_text(const warmstart_tensor *t, char *buf, size_t len)
{
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < t->ndim && d < 4 && k < len; d++)
        k += (size_t)snprintf(buf + k, len - k, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (k < len) snprintf(buf + k, len - k, "]");
}

static const warmstart_tensor *find_tensor(const warmstart_tensor *list, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(list[i].name, name) == 0) return &list[i];
    return NULL;
}

int warmstart_tensors_match(const warmstart_tensor *want, int n_want, const warmstart_tensor *have,
                            int n_have, char *msg, size_t msg_len)
{
    for (int i = 0; i < n_want; i++) {
        const warmstart_tensor *h = find_tensor(have, n_have, want[i].name);
        if (!h) {
            snprintf(msg, msg_len, "the weights lack tensor '%s', which the model has",
                     want[i].name);
            return 1;
        }
        int same = h->ndim == want[i].ndim;
        for (int d = 0; same && d < h->ndim && d < 4; d++) same = h->shape[d] == want[i].shape[d];
        if (!same) {
            char got[96], need[96];
            shape_text(h, got, sizeof got);
            shape_text(&want[i], need, sizeof need);
            snprintf(msg, msg_len, "tensor '%s' has shape %s, the model needs %s", h->name, got,
                     need);
            return 1;
        }
    }
    for (int i = 0; i < n_have; i++) {
        if (!find_tensor(want, n_want, have[i].name)) {
            snprintf(msg, msg_len, "the weights have a tensor '%s' that the model does not",
                     have[i].name);
            return 1;
        }
    }
    return 0;
}

/* The keys a resume may change: name and init at the top, fit.epochs. */
static int ignored(int depth, const char *parent, const char *key)
{
    if (depth == 0) return strcmp(key, "name") == 0 || strcmp(key, "init") == 0;
    return depth == 1 && strcmp(parent, "fit") == 0 && strcmp(key, "epochs") == 0;
}

/* Recursive json_equal that writes where the first difference is into p. */
static int diff_at(const json_t *a, const json_t *b, char *p, size_t len, size_t cap, int depth,
                   const char *parent)
{
    if (json_typeof(a) != json_typeof(b) && !(json_is_number(a) && json_is_number(b))) return 1;
    if (json_is_object(a)) {
        const char *key;
        json_t *va;
        json_object_foreach((json_t *)a, key, va) {
            if (ignored(depth, parent, key)) continue;
            const json_t *vb = json_object_get(b, key);
            size_t n = len;
            spec_path_push(p, cap, &n, key);
            if (!vb || diff_at(va, vb, p, n, cap, depth + 1, key)) return 1;
            spec_path_pop(p, &n, len);
        }
        json_t *vb;
        json_object_foreach((json_t *)b, key, vb) {
            if (ignored(depth, parent, key)) continue;
            if (!json_object_get(a, key)) {
                size_t n = len;
                spec_path_push(p, cap, &n, key);
                return 1;
            }
        }
        return 0;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) return 1;
        for (size_t i = 0; i < json_array_size(a); i++) {
            size_t n = len;
            spec_path_push_index(p, cap, &n, i);
            if (diff_at(json_array_get(a, i), json_array_get(b, i), p, n, cap, depth + 1, ""))
                return 1;
            spec_path_pop(p, &n, len);
        }
        return 0;
    }
    if (json_is_number(a)) return json_number_value(a) != json_number_value(b);
    return !json_equal((json_t *)a, (json_t *)b);
}

int warmstart_spec_diff(const json_t *a, const json_t *b, char *pointer, size_t pointer_len)
{
    pointer[0] = 0;
    return diff_at(a, b, pointer, 0, pointer_len, 0, "");
}

/* ---------------------------------------------------------------- submission */

/* The tensors of an upload's stored tensors_json; -1 when malformed. */
static int tensors_from_json(const char *text, warmstart_tensor **out)
{
    json_t *arr = json_loads(text ? text : "", 0, NULL);
    size_t n = json_array_size(arr);
    warmstart_tensor *t = calloc(n ? n : 1, sizeof *t);
    int ok = arr && json_is_array(arr) && t;
    for (size_t i = 0; ok && i < n; i++) {
        const json_t *o = json_array_get(arr, i), *shape = json_object_get(o, "shape");
        const char *name = json_string_value(json_object_get(o, "name"));
        ok = name && json_is_array(shape) && json_array_size(shape) <= 4 &&
             strlen(name) < sizeof t[i].name;
        if (!ok) break;
        snprintf(t[i].name, sizeof t[i].name, "%s", name);
        t[i].ndim = (int)json_array_size(shape);
        for (int d = 0; d < t[i].ndim; d++)
            t[i].shape[d] = (int64_t)json_integer_value(json_array_get(shape, (size_t)d));
    }
    json_decref(arr);
    if (!ok) {
        free(t);
        return -1;
    }
    *out = t;
    return (int)n;
}

/* The model's tensors; NULL when out of memory. */
static warmstart_tensor *model_tensors(const nn_model_spec *m, int *n)
{
    int max = 2 * m->n_layers;
    warmstart_tensor *t = calloc(max > 0 ? (size_t)max : 1, sizeof *t);
    if (t) *n = warmstart_model_tensors(m, t, max);
    return t;
}

/* {"weights": id}: the upload exists, is the caller's, and fits. */
static int check_weights(http_req *req, store *st, const spec_job *job, json_t *errors)
{
    store_weights_meta meta;
    warmstart_tensor *want = NULL, *have = NULL;
    int n_want = 0, ret = 0;
    char msg[300];
    const char *id = job->init.id;
    store_rc rc = store_weights_get(st, id, &meta);
    if (rc == STORE_NOT_FOUND || (rc == STORE_OK && strcmp(meta.tenant, http_req_tenant(req)) != 0)) {
        http_problem_add(errors, "/init/weights", "weights %s do not exist", id);
        goto out;
    }
    if (rc != STORE_OK) {
        http_reply_store_error(req, st, (int)rc);
        ret = -1;
        goto out;
    }
    int n_have = tensors_from_json(meta.tensors_json, &have);
    want = model_tensors(&job->model, &n_want);
    if (!want) {
        http_reply_nomem(req);
        ret = -1;
        goto out;
    }
    if (n_have < 0)
        http_problem_add(errors, "/init/weights", "weights %s: the stored tensor list is unreadable", id);
    else if (warmstart_tensors_match(want, n_want, have, n_have, msg, sizeof msg))
        http_problem_add(errors, "/init/weights", "weights %s do not fit the model: %s", id, msg);
out:
    free(want);
    free(have);
    store_weights_meta_free(&meta);
    return ret;
}

/* Resume: the source's spec with everything but name, init and fit.epochs equal. */
static int check_resume(http_req *req, const spec_job *job, const store_job *src,
                        const spec_job *src_spec, json_t *errors)
{
    const char *id = src->id;
    if (!src->has_checkpoint) {
        http_problem_add(errors, "/init/resume",
                         "job %s has no final trainer state to resume (it finished before fitd "
                         "kept it)",
                         id);
        return 0;
    }
    if (src_spec->fit.early_stopping.enabled && src_spec->fit.early_stopping.restore_best_weights) {
        http_problem_add(errors, "/init/resume",
                         "job %s restored its best weights at the end "
                         "(early_stopping.restore_best_weights), so its final state is not where "
                         "training stopped; start from its weights without resume instead",
                         id);
        return 0;
    }
    if (src->epochs_done < src->epochs) {
        http_problem_add(errors, "/init/resume",
                         "job %s stopped early after epoch %d of %d; there is nothing to continue",
                         id, src->epochs_done, src->epochs);
        return 0;
    }
    if (job->fit.epochs <= src->epochs_done)
        http_problem_add(errors, "/fit/epochs",
                         "with resume, fit.epochs is the total epoch count: it must exceed the %d "
                         "epochs job %s ran",
                         src->epochs_done, id);
    /* Both written by this fitd's spec_job_to_json: a spec stored by an older one
     * lacks keys added since (a default then is the same setting). */
    json_t *mine = spec_job_to_json(job);
    json_t *theirs = spec_job_to_json(src_spec);
    char ptr[200];
    int ret = 0;
    if (!mine || !theirs) {
        http_reply_nomem(req);
        ret = -1;
    } else if (warmstart_spec_diff(mine, theirs, ptr, sizeof ptr)) {
        http_problem_add(errors, ptr,
                         "differs from job %s's spec; a resume must repeat it (only name, init "
                         "and fit.epochs may change)",
                         id);
    }
    json_decref(mine);
    json_decref(theirs);
    return ret;
}

/* {"from_job": id}: the job exists, is the caller's, succeeded, and fits. */
static int check_from_job(http_req *req, store *st, const spec_job *job, json_t *errors)
{
    store_job src = {0};
    spec_job src_spec = {0};
    warmstart_tensor *want = NULL, *have = NULL;
    int n_want = 0, n_have = 0, ret = 0;
    char msg[300];
    const char *id = job->init.id;
    store_rc rc = store_job_get(st, id, &src);
    if (rc == STORE_NOT_FOUND || (rc == STORE_OK && strcmp(src.tenant, http_req_tenant(req)) != 0)) {
        http_problem_add(errors, "/init/from_job", "job %s does not exist", id);
        goto out;
    }
    if (rc != STORE_OK) {
        http_reply_store_error(req, st, (int)rc);
        ret = -1;
        goto out;
    }
    if (src.status != STORE_JOB_SUCCEEDED) {
        http_problem_add(errors, "/init/from_job",
                         "job %s is %s; only a succeeded job's weights can start another", id,
                         store_job_status_name(src.status));
        goto out;
    }
    int prc = spec_job_parse_stored(src.spec_json, &src_spec, NULL);
    if (prc == SPEC_NOMEM) {
        http_reply_nomem(req);
        ret = -1;
        goto out;
    }
    if (prc != SPEC_OK) {
        http_problem_add(errors, "/init/from_job", "job %s: its stored spec is unreadable", id);
        goto out;
    }
    if (job->init.resume) {
        ret = check_resume(req, job, &src, &src_spec, errors);
        goto out;
    }
    if (!src.has_weights) {
        http_problem_add(errors, "/init/from_job", "job %s has no stored weights", id);
        goto out;
    }
    want = model_tensors(&job->model, &n_want);
    have = model_tensors(&src_spec.model, &n_have);
    if (!want || !have) {
        http_reply_nomem(req);
        ret = -1;
        goto out;
    }
    if (warmstart_tensors_match(want, n_want, have, n_have, msg, sizeof msg))
        http_problem_add(errors, "/init/from_job", "job %s's weights do not fit the model: %s", id,
                         msg);
out:
    free(want);
    free(have);
    spec_job_free(&src_spec);
    store_job_free(&src);
    return ret;
}

int warmstart_check(http_req *req, store *st, const spec_job *job, json_t *errors)
{
    switch (job->init.kind) {
    case SPEC_INIT_WEIGHTS: return check_weights(req, st, job, errors);
    case SPEC_INIT_FROM_JOB: return check_from_job(req, st, job, errors);
    default: return 0;
    }
}

/* ---------------------------------------------------------------- worker */

int warmstart_apply(store *st, const spec_job *job, nn_model *model, nn_trainer *trainer, char *msg,
                    size_t msg_len)
{
    void *buf = NULL;
    size_t len = 0;
    nn_error err = {0};
    store_rc rc;
    int ret = -1;
    const spec_init *in = &job->init;
    const char *what = in->kind == SPEC_INIT_WEIGHTS ? "init.weights" : "init.from_job";

    if (in->kind == SPEC_INIT_NONE) return 0;
    if (in->kind == SPEC_INIT_WEIGHTS)
        rc = store_weights_load(st, in->id, &buf, &len);
    else if (in->resume)
        rc = store_job_checkpoint_load(st, in->id, &buf, &len, NULL);
    else
        rc = store_job_weights_load(st, in->id, &buf, &len);
    if (rc != STORE_OK) {
        snprintf(msg, msg_len, "%s %s: %s (%s)", what, in->id, store_errmsg(st), store_rc_name(rc));
        goto out;
    }
    nn_status s = in->resume ? nn_trainer_restore(trainer, buf, len, &err)
                             : nn_model_load_safetensors(model, buf, len, &err);
    if (s != NN_OK) {
        snprintf(msg, msg_len, "%s %s: %s", what, in->id, err.message);
        goto out;
    }
    ret = 0;
out:
    free(buf);
    return ret;
}
