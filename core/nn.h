/*
 * nn.h — fitd's training core: Keras-style Sequential models in C.
 *
 * The core builds a model from a plain spec (nn_model_spec), trains it with a
 * resumable trainer (nn_trainer), evaluates and predicts, and serializes weights
 * (safetensors) and the whole training state (checkpoints). It also parses the
 * dataset formats fitd accepts (CSV, IDX with optional gzip) into nn_dataset.
 *
 * It knows nothing of HTTP, SQL, JSON libraries or threads: it links libc, libm,
 * CBLAS and zlib only, keeps no mutable globals (nn_blas_set_threads is the one
 * process-wide knob, owned by the program's main), and reports through callbacks.
 *
 * Thread-safety: distinct handles may be used from distinct threads at once; one
 * handle is used by one thread at a time. Datasets are read-only once built and may
 * be shared between concurrent trainers.
 *
 * Errors: every fallible call returns nn_status (NN_OK == 0) and fills the optional
 * nn_error; the first error recorded wins. Out of memory is NN_ERR_NOMEM, never a
 * crash. Functions that return memory say who frees it.
 */
#ifndef NN_H
#define NN_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- errors */

typedef enum nn_status {
    NN_OK = 0,
    NN_ERR_NOMEM,     /* allocation failed */
    NN_ERR_INVALID,   /* bad argument or spec (a caller's mistake) */
    NN_ERR_PARSE,     /* malformed input data (CSV, IDX, safetensors, checkpoint) */
    NN_ERR_LIMIT,     /* input exceeds a configured limit */
    NN_ERR_MISMATCH,  /* shapes or names disagree (weights, datasets, checkpoints) */
    NN_ERR_NUMERIC,   /* NaN or Inf in the loss or the weights */
    NN_ERR_CANCELLED, /* the cancel callback asked to stop */
    NN_ERR_IO,        /* a file could not be read or written */
    NN_ERR_CALLBACK   /* a callback returned an error */
} nn_status;

typedef struct nn_error {
    nn_status code;
    char message[256];
} nn_error;

/* Record an error unless one is recorded already (the first error wins). `err`
 * may be NULL. Returns `code` so callers can write `return nn_error_set(...)`. */
nn_status nn_error_set(nn_error *err, nn_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void nn_error_clear(nn_error *err);
const char *nn_status_name(nn_status code);

/* Length (1-4) of the valid UTF-8 character at s, reading at most avail bytes, or
 * 0: not UTF-8 (RFC 3629: no overlong forms, surrogates or code points past
 * U+10FFFF). */
size_t nn_utf8_char_len(const unsigned char *s, size_t avail);

/* ---------------------------------------------------------------- limits */

/* Caps applied while parsing untrusted input. Zero fields take the defaults of
 * nn_limits_default(). */
typedef struct nn_limits {
    size_t max_bytes;    /* decoded bytes of one dataset (default 2 GiB) */
    size_t max_samples;  /* rows / items (default 10,000,000) */
    size_t max_features; /* features per sample (default 1,000,000) */
    size_t max_file_bytes; /* an IDX file's bytes once decompressed: a gzip bomb's
                            * declared size is refused before it inflates (default:
                            * no limit beyond max_bytes) */
} nn_limits;
nn_limits nn_limits_default(void);

/* ---------------------------------------------------------------- model spec */

typedef enum nn_activation {
    NN_ACT_LINEAR = 0,
    NN_ACT_RELU,
    NN_ACT_SIGMOID,
    NN_ACT_TANH,
    NN_ACT_SOFTMAX,
    NN_ACT_ELU,        /* alpha 1 */
    NN_ACT_SELU,
    NN_ACT_GELU,       /* exact (erf) form, Keras' default approximate=False */
    NN_ACT_LEAKY_RELU, /* negative_slope 0.2, Keras 3's default */
    NN_ACT_SOFTPLUS,
    NN_ACT_SWISH,      /* x * sigmoid(x) */
    NN_ACT_COUNT
} nn_activation;
const char *nn_activation_name(nn_activation a);
/* Returns NN_ACT_COUNT for an unknown name. */
nn_activation nn_activation_from_name(const char *name);

typedef enum nn_init_kind {
    NN_INIT_GLOROT_UNIFORM = 0,
    NN_INIT_GLOROT_NORMAL,
    NN_INIT_HE_UNIFORM,
    NN_INIT_HE_NORMAL,
    NN_INIT_LECUN_UNIFORM,
    NN_INIT_LECUN_NORMAL,
    NN_INIT_ZEROS,
    NN_INIT_ONES,
    NN_INIT_RANDOM_NORMAL,  /* mean, stddev (defaults 0, 0.05) */
    NN_INIT_RANDOM_UNIFORM, /* minval, maxval (defaults -0.05, 0.05) */
    NN_INIT_COUNT
} nn_init_kind;
const char *nn_init_name(nn_init_kind k);
nn_init_kind nn_init_from_name(const char *name); /* NN_INIT_COUNT if unknown */

typedef struct nn_init_spec {
    nn_init_kind kind;
    double a, b;      /* random_normal: mean, stddev; random_uniform: minval, maxval */
    int has_seed;     /* an explicit initializer seed; otherwise derived from the model seed */
    uint64_t seed;
} nn_init_spec;
/* The Keras defaults for a kind (a, b filled in; no seed). */
nn_init_spec nn_init_default(nn_init_kind k);

/* L1 penalty l1 * sum(|w|), L2 penalty l2 * sum(w^2); both zero = none. */
typedef struct nn_regularizer {
    double l1, l2;
} nn_regularizer;

typedef enum nn_layer_kind { NN_LAYER_DENSE = 0, NN_LAYER_DROPOUT } nn_layer_kind;

#define NN_NAME_MAX 64

typedef struct nn_layer_spec {
    nn_layer_kind kind;
    char name[NN_NAME_MAX]; /* "" = Keras default naming (dense, dense_1, dropout, ...) */
    /* dense */
    int units;
    nn_activation activation;
    int use_bias;
    nn_init_spec kernel_init, bias_init;
    nn_regularizer kernel_reg, bias_reg, activity_reg;
    /* dropout */
    double rate;
    int has_seed;  /* masks from (seed, training step) alone, not from fit.seed's stream */
    uint64_t seed;
} nn_layer_spec;
/* A dense layer with Keras' defaults (linear, bias, glorot_uniform / zeros). */
nn_layer_spec nn_layer_dense(int units, nn_activation act);
nn_layer_spec nn_layer_dropout(double rate);

typedef struct nn_model_spec {
    int input_dim;
    int n_layers;
    nn_layer_spec *layers; /* borrowed: the model copies what it needs */
} nn_model_spec;

/* ---------------------------------------------------------------- compile spec */

typedef enum nn_loss_kind {
    NN_LOSS_MSE = 0,
    NN_LOSS_MAE,
    NN_LOSS_HUBER,
    NN_LOSS_BINARY_CE,
    NN_LOSS_CATEGORICAL_CE,
    NN_LOSS_SPARSE_CATEGORICAL_CE,
    NN_LOSS_COUNT
} nn_loss_kind;
const char *nn_loss_name(nn_loss_kind k);
nn_loss_kind nn_loss_from_name(const char *name); /* NN_LOSS_COUNT if unknown */

typedef struct nn_loss_spec {
    nn_loss_kind kind;
    int from_logits;        /* the crossentropies */
    double label_smoothing; /* binary and categorical crossentropy */
    double delta;           /* huber, default 1.0 */
} nn_loss_spec;
nn_loss_spec nn_loss_default(nn_loss_kind k);

typedef enum nn_metric_kind {
    NN_METRIC_ACCURACY = 0, /* resolved by nn_metric_resolve before training */
    NN_METRIC_BINARY_ACCURACY,
    NN_METRIC_CATEGORICAL_ACCURACY,
    NN_METRIC_SPARSE_CATEGORICAL_ACCURACY,
    NN_METRIC_MAE,
    NN_METRIC_MSE,
    NN_METRIC_COUNT
} nn_metric_kind;
const char *nn_metric_name(nn_metric_kind k);
nn_metric_kind nn_metric_from_name(const char *name); /* NN_METRIC_COUNT if unknown */
/* Which accuracy Keras picks for "accuracy" given the loss and output width. */
nn_metric_kind nn_metric_resolve(nn_metric_kind m, const nn_loss_spec *loss, int output_width);

typedef enum nn_optimizer_kind {
    NN_OPT_SGD = 0,
    NN_OPT_ADAM,
    NN_OPT_ADAMW,
    NN_OPT_RMSPROP,
    NN_OPT_ADAGRAD,
    NN_OPT_COUNT
} nn_optimizer_kind;
const char *nn_optimizer_name(nn_optimizer_kind k);
nn_optimizer_kind nn_optimizer_from_name(const char *name); /* NN_OPT_COUNT if unknown */

typedef enum nn_schedule_kind {
    NN_SCHED_CONSTANT = 0,
    NN_SCHED_EXPONENTIAL_DECAY, /* lr0 * rate^(step/decay_steps), floor() if staircase */
    NN_SCHED_COSINE_DECAY       /* Keras CosineDecay without warmup */
} nn_schedule_kind;

typedef struct nn_schedule_spec {
    nn_schedule_kind kind;
    int64_t decay_steps;
    double decay_rate; /* exponential */
    int staircase;     /* exponential */
    double alpha;      /* cosine: floor as a fraction of the rate decayed from, default 0 */
    int warmup;        /* cosine: a linear warmup from lr0 to warmup_target first */
    double warmup_target;
    int64_t warmup_steps;
} nn_schedule_spec;

typedef struct nn_optimizer_spec {
    nn_optimizer_kind kind;
    double learning_rate; /* the initial rate when a schedule is set */
    nn_schedule_spec schedule;
    double beta_1, beta_2, epsilon; /* adam, adamw; epsilon also rmsprop, adagrad */
    int amsgrad;
    double weight_decay;            /* decoupled, any kind (adamw's default 0.004) */
    double momentum;                /* sgd, rmsprop */
    int nesterov;                   /* sgd */
    double rho;                     /* rmsprop (0.9) */
    int centered;                   /* rmsprop */
    double initial_accumulator;     /* adagrad (0.1) */
    double clipnorm, clipvalue, global_clipnorm; /* 0 = off */
} nn_optimizer_spec;
/* Keras' defaults for an optimizer kind. */
nn_optimizer_spec nn_optimizer_default(nn_optimizer_kind k);

#define NN_MAX_METRICS 8

typedef struct nn_compile_spec {
    nn_optimizer_spec optimizer;
    nn_loss_spec loss;
    int n_metrics;
    nn_metric_kind metrics[NN_MAX_METRICS];
    char metric_names[NN_MAX_METRICS][32]; /* as the user wrote them: history keys */
} nn_compile_spec;

/* ---------------------------------------------------------------- fit spec */

typedef enum nn_es_mode { NN_ES_AUTO = 0, NN_ES_MIN, NN_ES_MAX } nn_es_mode;

typedef struct nn_early_stopping {
    int enabled;
    char monitor[40]; /* "val_loss", "loss", "val_accuracy", a metric name ... */
    double min_delta;
    int patience;
    nn_es_mode mode;
    int restore_best_weights;
    int start_from_epoch;
    int has_baseline;
    double baseline;
} nn_early_stopping;

typedef struct nn_fit_spec {
    int epochs;           /* default 1 */
    int batch_size;       /* default 32 */
    int shuffle;          /* default 1: reshuffle every epoch */
    uint64_t seed;        /* shuffling, dropout and (unless given) initializers */
    double validation_split; /* 0 = none; ignored when validation data is given */
    nn_early_stopping early_stopping;
} nn_fit_spec;
nn_fit_spec nn_fit_default(void);

/* ---------------------------------------------------------------- datasets */

/* Features and targets as row-major float32 matrices. A dataset is immutable
 * once built; nn_dataset_free releases x and y (the struct itself is the
 * caller's). */
typedef struct nn_dataset {
    size_t n;      /* samples */
    int x_width;   /* features per sample */
    int y_width;   /* targets per sample */
    float *x;      /* [n, x_width] */
    float *y;      /* [n, y_width] */
    int y_integer; /* every target is a non-negative integer */
    int n_classes; /* y_width == 1 and y_integer: max label + 1; else 0 */
    float y_min, y_max; /* the targets' range; NaN when unknown or empty */
} nn_dataset;
void nn_dataset_free(nn_dataset *ds);
/* Fill y_integer, n_classes, y_min and y_max from y. */
void nn_dataset_describe(nn_dataset *ds);
/* Rows [from, from + count) as a view sharing ds's memory (do not free it). */
nn_dataset nn_dataset_view(const nn_dataset *ds, size_t from, size_t count);

/* CSV: a header row, then numbers only. The target is one column, chosen by name
 * or by index (negative counts from the end; the default -1 is the last). Errors
 * name the line and the column. Streaming: feed chunks in any split. */
typedef struct nn_csv_options {
    const char *label_name; /* NULL: use label_index */
    int label_index;        /* default -1 */
    nn_limits limits;
} nn_csv_options;
nn_csv_options nn_csv_default(void);

typedef struct nn_csv_parser nn_csv_parser;
nn_csv_parser *nn_csv_parser_new(const nn_csv_options *opt, nn_error *err);
nn_status nn_csv_parser_feed(nn_csv_parser *p, const void *buf, size_t len, nn_error *err);
/* On NN_OK fills *out (freed with nn_dataset_free). */
nn_status nn_csv_parser_finish(nn_csv_parser *p, nn_dataset *out, nn_error *err);
void nn_csv_parser_free(nn_csv_parser *p);
nn_status nn_csv_load_file(const char *path, const nn_csv_options *opt, nn_dataset *out, nn_error *err);

/* IDX (the MNIST family's format): magic 0x00 0x00 type ndim, big-endian dims,
 * then data; ubyte, sbyte, short, int, float, double. gzip is detected by its
 * magic bytes and inflated on the fly. Declared sizes are checked against the
 * limits before anything is allocated and memory grows only as data arrives.
 * Unsigned-byte arrays of 2+ dimensions (images) are scaled to [0,1]; 1-D arrays
 * (labels) keep their values. */
typedef struct nn_idx_array {
    int ndim;
    size_t dims[4];
    size_t count; /* product of dims */
    float *data;  /* [dims[0], count / dims[0]] */
} nn_idx_array;
void nn_idx_array_free(nn_idx_array *a);

typedef struct nn_idx_parser nn_idx_parser;
nn_idx_parser *nn_idx_parser_new(const nn_limits *limits, nn_error *err);
nn_status nn_idx_parser_feed(nn_idx_parser *p, const void *buf, size_t len, nn_error *err);
nn_status nn_idx_parser_finish(nn_idx_parser *p, nn_idx_array *out, nn_error *err);
void nn_idx_parser_free(nn_idx_parser *p);
nn_status nn_idx_load_file(const char *path, const nn_limits *limits, nn_idx_array *out, nn_error *err);
/* Pair images and labels into a dataset (moves the arrays' data; both arrays are
 * emptied on success). Counts must agree. */
nn_status nn_dataset_from_idx(nn_idx_array *x, nn_idx_array *y, nn_dataset *out, nn_error *err);

/* ---------------------------------------------------------------- model */

typedef struct nn_model nn_model;

/* Build and initialize a model. `seed` drives the initializers (layers without an
 * explicit initializer seed). Returns NULL and fills err on failure. Free with
 * nn_model_free. */
nn_model *nn_model_new(const nn_model_spec *spec, uint64_t seed, nn_error *err);
void nn_model_free(nn_model *m);

/* Work split across threads that the caller provides (the core starts none).
 * run(ctx, task, arg) calls task(arg, i) for every i in [0, n), up to n of them at
 * once, and returns when all have returned. A model given one splits its matrix
 * products (OpenBLAS then best runs at 1 thread), its regularizer passes and the
 * optimizer's update into n parts; results stay deterministic for a given n.
 * NULL, n <= 1 or no run: everything on the calling thread, as before. The
 * struct is copied; ctx must outlive the model's use of it. */
typedef struct nn_parallel {
    int n;
    void (*run)(void *ctx, void (*task)(void *arg, int i), void *arg);
    void *ctx;
} nn_parallel;
void nn_model_set_parallel(nn_model *m, const nn_parallel *par);

int nn_model_input_dim(const nn_model *m);
int nn_model_output_dim(const nn_model *m);
nn_activation nn_model_output_activation(const nn_model *m);
size_t nn_model_param_count(const nn_model *m);
int nn_model_layer_count(const nn_model *m);
/* The resolved layer spec (with its final name) of layer i. */
const nn_layer_spec *nn_model_layer(const nn_model *m, int i);

/* One named weight tensor: dense kernels [in, units] and biases [units]. */
typedef struct nn_tensor_info {
    char name[NN_NAME_MAX + 8]; /* "<layer>/kernel" or "<layer>/bias" */
    int ndim;
    int64_t shape[2];
    size_t offset; /* into the flat parameter buffer, in floats */
    size_t count;
} nn_tensor_info;
int nn_model_tensor_count(const nn_model *m);
const nn_tensor_info *nn_model_tensor(const nn_model *m, int i);
/* The flat parameter buffer (nn_model_param_count floats), owned by the model. */
float *nn_model_params(nn_model *m);
const float *nn_model_params_const(const nn_model *m);

/* Outputs for n rows of x ([n, input_dim]) into out ([n, output_dim]). Dropout is
 * the identity. Works in chunks; allocates scratch internally. */
nn_status nn_model_predict(nn_model *m, const float *x, size_t n, float *out, nn_error *err);

/* Safetensors (F32, tensors named "<layer>/kernel" and "<layer>/bias", plus
 * `__metadata__` string pairs). *buf is malloc'ed, freed by the caller. */
typedef struct nn_kv {
    const char *key, *value;
} nn_kv;
nn_status nn_model_save_safetensors(const nn_model *m, const nn_kv *meta, int n_meta, void **buf,
                                    size_t *len, nn_error *err);
/* Replace the weights from a safetensors buffer: every tensor of the model must be
 * present with the same shape (NN_ERR_MISMATCH names the first that is not). */
nn_status nn_model_load_safetensors(nn_model *m, const void *buf, size_t len, nn_error *err);

/* ---------------------------------------------------------------- training */

#define NN_RECORD_MAX_METRICS NN_MAX_METRICS

/* One epoch's results, as Keras' History would hold them. */
typedef struct nn_epoch_record {
    int epoch; /* 1-based */
    double loss;
    int n_metrics;
    const char *metric_names[NN_RECORD_MAX_METRICS]; /* borrowed from the compile spec */
    double metrics[NN_RECORD_MAX_METRICS];
    int has_val;
    double val_loss;
    double val_metrics[NN_RECORD_MAX_METRICS];
    double regularization_loss; /* the penalties' share of `loss` */
    double learning_rate;       /* at the end of the epoch */
    double seconds;
} nn_epoch_record;

typedef struct nn_trainer nn_trainer;

/* Callbacks, all optional. on_epoch returns 0 to continue, non-zero to abort with
 * NN_ERR_CALLBACK (for example when a checkpoint could not be stored). should_cancel
 * is polled between batches; non-zero stops the run with NN_ERR_CANCELLED at that
 * batch boundary (the epoch in progress is not recorded). on_batch reports progress
 * after every batch. */
typedef struct nn_callbacks {
    void *user;
    int (*on_epoch)(void *user, nn_trainer *t, const nn_epoch_record *rec);
    int (*should_cancel)(void *user);
    void (*on_batch)(void *user, int epoch, int batch, int n_batches);
} nn_callbacks;

/* A trainer owns the optimizer state and the fit loop for one model. `model`,
 * `compile`, `fit`, `train` and `val` are borrowed and must outlive the trainer.
 * `val` may be NULL (then fit->validation_split applies). */
nn_trainer *nn_trainer_new(nn_model *model, const nn_compile_spec *compile, const nn_fit_spec *fit,
                           const nn_dataset *train, const nn_dataset *val, nn_error *err);
void nn_trainer_free(nn_trainer *t);

/* Train until the configured epochs end or early stopping stops it. At the end,
 * restores the best weights when early_stopping.restore_best_weights is set.
 * After NN_ERR_CANCELLED the trainer rests at a batch boundary, mid-epoch state
 * included: calling run again continues from that batch, and a checkpoint taken
 * then (nn_trainer_checkpoint) resumes there too, bit-identically. */
nn_status nn_trainer_run(nn_trainer *t, const nn_callbacks *cb, nn_error *err);

int nn_trainer_epoch(const nn_trainer *t);       /* epochs completed */
int nn_trainer_best_epoch(const nn_trainer *t);  /* 1-based; 0 if none */
int nn_trainer_stopped_early(const nn_trainer *t);
int nn_trainer_finished(const nn_trainer *t);
int nn_trainer_batches_per_epoch(const nn_trainer *t);
int nn_trainer_batch(const nn_trainer *t);       /* batches done in the epoch in progress */
size_t nn_trainer_train_samples(const nn_trainer *t); /* per epoch, after validation_split */

/* Keras' validation_split (0 < split < 1) of n samples: the first
 * floor(n * (1 - split)) train, the rest validate. Returns that count; 0 or n
 * leaves a side empty, which nn_trainer_new refuses. */
size_t nn_validation_split_at(size_t n, double split);

/* The whole training state (weights, optimizer slots, RNG, epoch and the batch
 * boundary within it, early-stopping and schedule state, best weights) as a byte
 * buffer; *buf is malloc'ed, freed by the caller. Taken between epochs (in
 * on_epoch) or after a cancel (mid-epoch). Restoring it into a trainer built from
 * the same spec and data and running on gives bit-identical results to an
 * uninterrupted run. */
nn_status nn_trainer_checkpoint(const nn_trainer *t, void **buf, size_t *len, nn_error *err);
nn_status nn_trainer_restore(nn_trainer *t, const void *buf, size_t len, nn_error *err);
/* Bytes [off, off + n) of a serialized state (len bytes in all) into dst: 0, or
 * -1 when they cannot be read. Lets a caller restore from where the bytes are
 * kept (a database blob) without a copy of the whole in memory. */
typedef int (*nn_read_at_fn)(void *src, size_t off, void *dst, size_t n);

/* Only the weights of a checkpoint, into a model built from the same spec (no
 * trainer, no data): what a run had learnt at that point. *epoch and *batch (may
 * be NULL) receive the epochs completed and the batches into the next one. The
 * _at form reads the checkpoint through `read` (header, weights, and the rest in
 * chunks for the checksum), never holding more than the weights. */
nn_status nn_model_restore_checkpoint_at(nn_model *m, nn_read_at_fn read, void *src, size_t len,
                                         int *epoch, int *batch, nn_error *err);
nn_status nn_model_restore_checkpoint(nn_model *m, const void *buf, size_t len, int *epoch,
                                      int *batch, nn_error *err);

/* Loss (with penalties) and metrics of the model on a dataset. */
typedef struct nn_eval_result {
    double loss;
    double regularization_loss;
    int n_metrics;
    double metrics[NN_MAX_METRICS];
} nn_eval_result;
nn_status nn_model_evaluate(nn_model *m, const nn_compile_spec *compile, const nn_dataset *ds,
                            int batch_size, nn_eval_result *out, nn_error *err);

/* Check that a dataset fits a model and loss (widths, label ranges). */
nn_status nn_check_data(const nn_model *m, const nn_compile_spec *compile, const nn_dataset *ds,
                        const char *what, nn_error *err);

/* ---------------------------------------------------------------- BLAS */

/* Process-wide: how many threads one GEMM may use. Call from main before work
 * starts (OpenBLAS keeps this setting globally). */
void nn_blas_set_threads(int n);
int nn_blas_threads(void);
/* The BLAS core OpenBLAS chose ("Zen", "SkylakeX", ...); "" if unknown. */
const char *nn_blas_core(void);

#endif
