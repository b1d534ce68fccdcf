/* jobmem.c — training memory estimate of a job (see jobmem.h). */
#include "jobmem.h"

int jobmem_optimizer_slots(const nn_optimizer_spec *opt)
{
    switch (opt->kind) {
    case NN_OPT_SGD: return opt->momentum > 0 ? 1 : 0;
    case NN_OPT_ADAM:
    case NN_OPT_ADAMW: return opt->amsgrad ? 3 : 2;
    case NN_OPT_RMSPROP: return 1 + (opt->momentum > 0 ? 1 : 0) + (opt->centered ? 1 : 0);
    case NN_OPT_ADAGRAD: return 1;
    default: return 3; /* unknown: the most any optimizer keeps */
    }
}

jobmem_estimate jobmem_estimate_job(const spec_job *job, double dataset_bytes)
{
    jobmem_estimate e = {0};
    const nn_model_spec *m = &job->model;
    double batch = job->fit.batch_size > 0 ? (double)job->fit.batch_size : 32.0;
    double width = (double)m->input_dim, max_width = width, act = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const nn_layer_spec *L = &m->layers[i];
        if (L->kind == NN_LAYER_DENSE) {
            double out = (double)L->units;
            e.params += width * out + (L->use_bias ? out : 0);
            act += 2 * batch * out; /* output and (upper bound) pre-activation */
            width = out;
        } else {
            act += 2 * batch * width; /* output and mask */
        }
        if (width > max_width) max_width = width;
    }
    act += 2 * batch * max_width;                /* the two gradient buffers */
    act += batch * ((double)m->input_dim + width); /* one batch of x and y */
    e.slots = jobmem_optimizer_slots(&job->compile.optimizer);
    int copies = 2 + e.slots; /* weights, gradients, slots */
    if (job->fit.early_stopping.enabled && job->fit.early_stopping.restore_best_weights) copies++;
    e.state_bytes = e.params * 4.0 * copies;
    e.act_bytes = act * 4.0;
    e.data_bytes = dataset_bytes > 0 ? dataset_bytes : 0;
    e.total_bytes = e.state_bytes + e.act_bytes + e.data_bytes;
    return e;
}
