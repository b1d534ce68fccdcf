/*
 * names.c — names, aliases and Keras defaults for the plain spec types of nn.h
 * (activations, initializers, layers, losses, metrics, optimizers, fit).
 *
 * Canonical names are Keras' snake_case identifiers. The *_from_name functions
 * are exact (case-sensitive) and also accept the aliases Keras accepts for the
 * same object; they return the kind's *_COUNT value for an unknown name.
 * Nothing here allocates or keeps state.
 */
#include <string.h>

#include "nn.h"

typedef struct name_alias {
    const char *name;
    int kind;
} name_alias;

static int lookup(const name_alias *t, size_t n, const char *name, int unknown)
{
    if (!name) return unknown;
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0) return t[i].kind;
    return unknown;
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- activations */

static const char *const act_names[NN_ACT_COUNT] = {
    [NN_ACT_LINEAR] = "linear",   [NN_ACT_RELU] = "relu",
    [NN_ACT_SIGMOID] = "sigmoid", [NN_ACT_TANH] = "tanh",
    [NN_ACT_SOFTMAX] = "softmax", [NN_ACT_ELU] = "elu",
    [NN_ACT_SELU] = "selu",       [NN_ACT_GELU] = "gelu",
    [NN_ACT_LEAKY_RELU] = "leaky_relu", [NN_ACT_SOFTPLUS] = "softplus",
    [NN_ACT_SWISH] = "swish",
};

const char *nn_activation_name(nn_activation a)
{
    return (unsigned)a < NN_ACT_COUNT ? act_names[a] : "unknown";
}

nn_activation nn_activation_from_name(const char *name)
{
    static const name_alias aliases[] = {{"silu", NN_ACT_SWISH}}; /* Keras 3: silu == swish */
    for (int a = 0; a < NN_ACT_COUNT; a++)
        if (name && strcmp(act_names[a], name) == 0) return (nn_activation)a;
    return (nn_activation)lookup(aliases, N_OF(aliases), name, NN_ACT_COUNT);
}

/* ---------------------------------------------------------------- initializers */

static const char *const init_names[NN_INIT_COUNT] = {
    [NN_INIT_GLOROT_UNIFORM] = "glorot_uniform", [NN_INIT_GLOROT_NORMAL] = "glorot_normal",
    [NN_INIT_HE_UNIFORM] = "he_uniform",         [NN_INIT_HE_NORMAL] = "he_normal",
    [NN_INIT_LECUN_UNIFORM] = "lecun_uniform",   [NN_INIT_LECUN_NORMAL] = "lecun_normal",
    [NN_INIT_ZEROS] = "zeros",                   [NN_INIT_ONES] = "ones",
    [NN_INIT_RANDOM_NORMAL] = "random_normal",   [NN_INIT_RANDOM_UNIFORM] = "random_uniform",
};

const char *nn_init_name(nn_init_kind k)
{
    return (unsigned)k < NN_INIT_COUNT ? init_names[k] : "unknown";
}

/* Keras also resolves its class names (as written by model.to_json()). */
nn_init_kind nn_init_from_name(const char *name)
{
    static const name_alias aliases[] = {
        {"GlorotUniform", NN_INIT_GLOROT_UNIFORM}, {"GlorotNormal", NN_INIT_GLOROT_NORMAL},
        {"HeUniform", NN_INIT_HE_UNIFORM},         {"HeNormal", NN_INIT_HE_NORMAL},
        {"LecunUniform", NN_INIT_LECUN_UNIFORM},   {"LecunNormal", NN_INIT_LECUN_NORMAL},
        {"Zeros", NN_INIT_ZEROS},                  {"Ones", NN_INIT_ONES},
        {"RandomNormal", NN_INIT_RANDOM_NORMAL},   {"RandomUniform", NN_INIT_RANDOM_UNIFORM},
    };
    for (int k = 0; k < NN_INIT_COUNT; k++)
        if (name && strcmp(init_names[k], name) == 0) return (nn_init_kind)k;
    return (nn_init_kind)lookup(aliases, N_OF(aliases), name, NN_INIT_COUNT);
}

/* Keras RandomNormal(mean=0, stddev=0.05), RandomUniform(minval=-0.05, maxval=0.05). */
nn_init_spec nn_init_default(nn_init_kind k)
{
    nn_init_spec s;
    memset(&s, 0, sizeof s);
    s.kind = k;
    if (k == NN_INIT_RANDOM_NORMAL) {
        s.a = 0.0;
        s.b = 0.05;
    } else if (k == NN_INIT_RANDOM_UNIFORM) {
        s.a = -0.05;
        s.b = 0.05;
    }
    return s;
}

/* ---------------------------------------------------------------- layers */

/* Keras Dense defaults: use_bias True, kernel glorot_uniform, bias zeros, no
 * regularizers. */
nn_layer_spec nn_layer_dense(int units, nn_activation act)
{
    nn_layer_spec l;
    memset(&l, 0, sizeof l);
    l.kind = NN_LAYER_DENSE;
    l.units = units;
    l.activation = act;
    l.use_bias = 1;
    l.kernel_init = nn_init_default(NN_INIT_GLOROT_UNIFORM);
    l.bias_init = nn_init_default(NN_INIT_ZEROS);
    return l;
}

nn_layer_spec nn_layer_dropout(double rate)
{
    nn_layer_spec l;
    memset(&l, 0, sizeof l);
    l.kind = NN_LAYER_DROPOUT;
    l.activation = NN_ACT_LINEAR;
    l.rate = rate;
    l.kernel_init = nn_init_default(NN_INIT_GLOROT_UNIFORM);
    l.bias_init = nn_init_default(NN_INIT_ZEROS);
    return l;
}

/* ---------------------------------------------------------------- losses */

static const char *const loss_names[NN_LOSS_COUNT] = {
    [NN_LOSS_MSE] = "mse",
    [NN_LOSS_MAE] = "mae",
    [NN_LOSS_HUBER] = "huber",
    [NN_LOSS_BINARY_CE] = "binary_crossentropy",
    [NN_LOSS_CATEGORICAL_CE] = "categorical_crossentropy",
    [NN_LOSS_SPARSE_CATEGORICAL_CE] = "sparse_categorical_crossentropy",
};

const char *nn_loss_name(nn_loss_kind k)
{
    return (unsigned)k < NN_LOSS_COUNT ? loss_names[k] : "unknown";
}

nn_loss_kind nn_loss_from_name(const char *name)
{
    static const name_alias aliases[] = {
        {"mean_squared_error", NN_LOSS_MSE},
        {"mean_absolute_error", NN_LOSS_MAE},
        {"huber_loss", NN_LOSS_HUBER}, /* tf.keras */
    };
    for (int k = 0; k < NN_LOSS_COUNT; k++)
        if (name && strcmp(loss_names[k], name) == 0) return (nn_loss_kind)k;
    return (nn_loss_kind)lookup(aliases, N_OF(aliases), name, NN_LOSS_COUNT);
}

/* Keras: from_logits False, label_smoothing 0, Huber delta 1.0. */
nn_loss_spec nn_loss_default(nn_loss_kind k)
{
    nn_loss_spec s;
    memset(&s, 0, sizeof s);
    s.kind = k;
    s.from_logits = 0;
    s.label_smoothing = 0.0;
    s.delta = 1.0;
    return s;
}

/* ---------------------------------------------------------------- metrics */

static const char *const metric_names[NN_METRIC_COUNT] = {
    [NN_METRIC_ACCURACY] = "accuracy",
    [NN_METRIC_BINARY_ACCURACY] = "binary_accuracy",
    [NN_METRIC_CATEGORICAL_ACCURACY] = "categorical_accuracy",
    [NN_METRIC_SPARSE_CATEGORICAL_ACCURACY] = "sparse_categorical_accuracy",
    [NN_METRIC_MAE] = "mae",
    [NN_METRIC_MSE] = "mse",
};

const char *nn_metric_name(nn_metric_kind k)
{
    return (unsigned)k < NN_METRIC_COUNT ? metric_names[k] : "unknown";
}

nn_metric_kind nn_metric_from_name(const char *name)
{
    static const name_alias aliases[] = {
        {"acc", NN_METRIC_ACCURACY},
        {"mean_absolute_error", NN_METRIC_MAE},
        {"mean_squared_error", NN_METRIC_MSE},
    };
    for (int k = 0; k < NN_METRIC_COUNT; k++)
        if (name && strcmp(metric_names[k], name) == 0) return (nn_metric_kind)k;
    return (nn_metric_kind)lookup(aliases, N_OF(aliases), name, NN_METRIC_COUNT);
}

/* "accuracy" is binary accuracy for one output unit, sparse categorical accuracy
 * for integer labels, categorical accuracy otherwise, as Keras 3 decides from the
 * shapes (compile_utils.get_metric). Integer labels against several units are the
 * sparse loss here (any other loss refuses them: nn_check_data), so the loss says
 * which. A binary crossentropy over several units gets categorical accuracy, as in
 * Keras; binary_accuracy scores each label. Other kinds are returned unchanged. */
nn_metric_kind nn_metric_resolve(nn_metric_kind m, const nn_loss_spec *loss, int output_width)
{
    if (m != NN_METRIC_ACCURACY) return m;
    if (output_width == 1) return NN_METRIC_BINARY_ACCURACY;
    if (loss && loss->kind == NN_LOSS_SPARSE_CATEGORICAL_CE)
        return NN_METRIC_SPARSE_CATEGORICAL_ACCURACY;
    return NN_METRIC_CATEGORICAL_ACCURACY;
}

/* ---------------------------------------------------------------- optimizers */

static const char *const opt_names[NN_OPT_COUNT] = {
    [NN_OPT_SGD] = "sgd",         [NN_OPT_ADAM] = "adam",       [NN_OPT_ADAMW] = "adamw",
    [NN_OPT_RMSPROP] = "rmsprop", [NN_OPT_ADAGRAD] = "adagrad",
};

const char *nn_optimizer_name(nn_optimizer_kind k)
{
    return (unsigned)k < NN_OPT_COUNT ? opt_names[k] : "unknown";
}

/* Keras resolves both the lower-case names and the class names. */
nn_optimizer_kind nn_optimizer_from_name(const char *name)
{
    static const name_alias aliases[] = {
        {"SGD", NN_OPT_SGD},         {"Adam", NN_OPT_ADAM},       {"AdamW", NN_OPT_ADAMW},
        {"RMSprop", NN_OPT_RMSPROP}, {"Adagrad", NN_OPT_ADAGRAD},
    };
    for (int k = 0; k < NN_OPT_COUNT; k++)
        if (name && strcmp(opt_names[k], name) == 0) return (nn_optimizer_kind)k;
    return (nn_optimizer_kind)lookup(aliases, N_OF(aliases), name, NN_OPT_COUNT);
}

/* Keras 3 constructor defaults (keras/src/optimizers/{sgd,adam,adamw,rmsprop,
 * adagrad}.py). Fields an optimizer does not use stay zero; no clipping, constant
 * learning rate. */
nn_optimizer_spec nn_optimizer_default(nn_optimizer_kind k)
{
    nn_optimizer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = k;
    s.schedule.kind = NN_SCHED_CONSTANT;
    switch (k) {
    case NN_OPT_SGD:
        s.learning_rate = 0.01;
        s.momentum = 0.0;
        s.nesterov = 0;
        break;
    case NN_OPT_ADAM:
    case NN_OPT_ADAMW:
        s.learning_rate = 0.001;
        s.beta_1 = 0.9;
        s.beta_2 = 0.999;
        s.epsilon = 1e-7;
        s.amsgrad = 0;
        if (k == NN_OPT_ADAMW) s.weight_decay = 0.004;
        break;
    case NN_OPT_RMSPROP:
        s.learning_rate = 0.001;
        s.rho = 0.9;
        s.momentum = 0.0;
        s.epsilon = 1e-7;
        s.centered = 0;
        break;
    case NN_OPT_ADAGRAD:
        s.learning_rate = 0.001;
        s.initial_accumulator = 0.1;
        s.epsilon = 1e-7;
        break;
    case NN_OPT_COUNT:
        break;
    }
    return s;
}

/* ---------------------------------------------------------------- fit */

/* Keras Model.fit defaults (epochs 1, batch_size 32, shuffle True); EarlyStopping
 * off, but holding Keras' constructor defaults so that enabling it is enough. */
nn_fit_spec nn_fit_default(void)
{
    nn_fit_spec f;
    memset(&f, 0, sizeof f);
    f.epochs = 1;
    f.batch_size = 32;
    f.shuffle = 1;
    f.seed = 0;
    f.validation_split = 0.0;
    f.early_stopping.enabled = 0;
    strcpy(f.early_stopping.monitor, "val_loss");
    f.early_stopping.min_delta = 0.0;
    f.early_stopping.patience = 0;
    f.early_stopping.mode = NN_ES_AUTO;
    f.early_stopping.restore_best_weights = 0;
    f.early_stopping.start_from_epoch = 0;
    f.early_stopping.has_baseline = 0;
    return f;
}
