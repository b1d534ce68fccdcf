/*
 * test_spec.c — core/names.c (names, aliases, Keras defaults) and server/spec
 * (job-spec JSON validation, conversion and rendering).
 *
 * Valid specs are checked field by field against the core spec they must produce;
 * invalid specs are a data table (JSON text, expected pointers and message
 * substrings) and every row must produce exactly its expected problems. Spec text
 * in this file uses ' for " (converted before parsing) to stay readable.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "spec.h"
#include "support.h"

/* ------------------------------------------------------------ helpers */

/* Copy with ' turned into " (malloc'ed). */
static char *dq(const char *s)
{
    size_t n = strlen(s);
    char *t = malloc(n + 1);
    assert_non_null(t);
    for (size_t i = 0; i <= n; i++) t[i] = s[i] == '\'' ? '"' : s[i];
    return t;
}

static void print_problems(const spec_problems *pr)
{
    for (int i = 0; i < pr->n; i++)
        print_message("  problem %d: '%s': %s\n", i, pr->items[i].pointer, pr->items[i].message);
}

/* Parse spec text written with ' quotes; returns the rc. */
static int parse_q(const char *text, int flags, spec_job *job, spec_problems *pr)
{
    char *t = dq(text);
    int rc = spec_job_parse_text(t, strlen(t), NULL, flags, job, pr);
    free(t);
    return rc;
}

static void parse_ok(const char *text, int flags, spec_job *job)
{
    spec_problems pr;
    int rc = parse_q(text, flags, job, &pr);
    if (rc != SPEC_OK) print_problems(&pr);
    assert_int_equal(rc, SPEC_OK);
    assert_int_equal(pr.n, 0);
}

#define DATA "'data':{'train':'ds_a'}"
#define MODEL(L) "'model':{'input_shape':[4],'layers':[" L "]}"
#define D3 "{'type':'dense','units':3,'activation':'softmax'}"
#define COMP "'compile':{'loss':'sparse_categorical_crossentropy'}"
#define COMPILE(X) "'compile':{" X "}"
/* A valid spec, with one part swapped. */
#define WITH_LAYERS(L) "{" DATA "," MODEL(L) "," COMP "}"
#define WITH_COMPILE(X) "{" DATA "," MODEL(D3) "," COMPILE(X) "}"
#define WITH_FIT(F) "{" DATA "," MODEL(D3) "," COMP ",'fit':{" F "}}"
#define WITH_OPT(O) WITH_COMPILE("'loss':'sparse_categorical_crossentropy','optimizer':" O)
#define SCCE "'loss':'sparse_categorical_crossentropy'"

/* ------------------------------------------------------------ names.c */

static void test_names(void **state)
{
    (void)state;
    for (int a = 0; a < NN_ACT_COUNT; a++)
        assert_int_equal(nn_activation_from_name(nn_activation_name((nn_activation)a)), a);
    assert_string_equal(nn_activation_name(NN_ACT_LEAKY_RELU), "leaky_relu");
    assert_int_equal(nn_activation_from_name("silu"), NN_ACT_SWISH);
    assert_int_equal(nn_activation_from_name("Relu"), NN_ACT_COUNT);
    assert_int_equal(nn_activation_from_name(NULL), NN_ACT_COUNT);

    for (int k = 0; k < NN_INIT_COUNT; k++)
        assert_int_equal(nn_init_from_name(nn_init_name((nn_init_kind)k)), k);
    assert_int_equal(nn_init_from_name("GlorotUniform"), NN_INIT_GLOROT_UNIFORM);
    assert_int_equal(nn_init_from_name("HeNormal"), NN_INIT_HE_NORMAL);
    assert_int_equal(nn_init_from_name("orthogonal"), NN_INIT_COUNT);

    for (int k = 0; k < NN_LOSS_COUNT; k++)
        assert_int_equal(nn_loss_from_name(nn_loss_name((nn_loss_kind)k)), k);
    assert_int_equal(nn_loss_from_name("mean_squared_error"), NN_LOSS_MSE);
    assert_int_equal(nn_loss_from_name("mean_absolute_error"), NN_LOSS_MAE);
    assert_int_equal(nn_loss_from_name("hinge"), NN_LOSS_COUNT);

    for (int k = 0; k < NN_METRIC_COUNT; k++)
        assert_int_equal(nn_metric_from_name(nn_metric_name((nn_metric_kind)k)), k);
    assert_int_equal(nn_metric_from_name("acc"), NN_METRIC_ACCURACY);
    assert_int_equal(nn_metric_from_name("auc"), NN_METRIC_COUNT);

    for (int k = 0; k < NN_OPT_COUNT; k++)
        assert_int_equal(nn_optimizer_from_name(nn_optimizer_name((nn_optimizer_kind)k)), k);
    assert_int_equal(nn_optimizer_from_name("Adam"), NN_OPT_ADAM);
    assert_int_equal(nn_optimizer_from_name("RMSprop"), NN_OPT_RMSPROP);
    assert_int_equal(nn_optimizer_from_name("nadam"), NN_OPT_COUNT);
    assert_string_equal(nn_optimizer_name(NN_OPT_COUNT), "unknown");
}

static void test_defaults(void **state)
{
    (void)state;
    nn_init_spec i = nn_init_default(NN_INIT_RANDOM_NORMAL);
    assert_true(i.a == 0.0 && i.b == 0.05 && !i.has_seed);
    i = nn_init_default(NN_INIT_RANDOM_UNIFORM);
    assert_true(i.a == -0.05 && i.b == 0.05);

    nn_layer_spec d = nn_layer_dense(7, NN_ACT_TANH);
    assert_int_equal(d.kind, NN_LAYER_DENSE);
    assert_int_equal(d.units, 7);
    assert_int_equal(d.activation, NN_ACT_TANH);
    assert_int_equal(d.use_bias, 1);
    assert_int_equal(d.kernel_init.kind, NN_INIT_GLOROT_UNIFORM);
    assert_int_equal(d.bias_init.kind, NN_INIT_ZEROS);
    assert_true(d.kernel_reg.l1 == 0 && d.kernel_reg.l2 == 0 && d.activity_reg.l2 == 0);
    assert_string_equal(d.name, "");
    nn_layer_spec dr = nn_layer_dropout(0.25);
    assert_int_equal(dr.kind, NN_LAYER_DROPOUT);
    assert_true(dr.rate == 0.25 && !dr.has_seed);

    nn_loss_spec l = nn_loss_default(NN_LOSS_HUBER);
    assert_true(l.delta == 1.0 && l.from_logits == 0 && l.label_smoothing == 0);

    nn_optimizer_spec o = nn_optimizer_default(NN_OPT_SGD);
    assert_true(o.learning_rate == 0.01 && o.momentum == 0 && !o.nesterov);
    assert_int_equal(o.schedule.kind, NN_SCHED_CONSTANT);
    o = nn_optimizer_default(NN_OPT_ADAM);
    assert_true(o.learning_rate == 0.001 && o.beta_1 == 0.9 && o.beta_2 == 0.999 &&
                o.epsilon == 1e-7 && !o.amsgrad && o.weight_decay == 0);
    o = nn_optimizer_default(NN_OPT_ADAMW);
    assert_true(o.learning_rate == 0.001 && o.beta_1 == 0.9 && o.weight_decay == 0.004);
    o = nn_optimizer_default(NN_OPT_RMSPROP);
    assert_true(o.learning_rate == 0.001 && o.rho == 0.9 && o.epsilon == 1e-7 && !o.centered);
    o = nn_optimizer_default(NN_OPT_ADAGRAD);
    assert_true(o.learning_rate == 0.001 && o.initial_accumulator == 0.1 && o.epsilon == 1e-7);
    assert_true(o.clipnorm == 0 && o.clipvalue == 0 && o.global_clipnorm == 0);

    nn_fit_spec f = nn_fit_default();
    assert_int_equal(f.epochs, 1);
    assert_int_equal(f.batch_size, 32);
    assert_int_equal(f.shuffle, 1);
    assert_true(f.seed == 0 && f.validation_split == 0);
    assert_int_equal(f.early_stopping.enabled, 0);
    assert_string_equal(f.early_stopping.monitor, "val_loss");
    assert_int_equal(f.early_stopping.mode, NN_ES_AUTO);
    assert_int_equal(f.early_stopping.patience, 0);
    assert_int_equal(f.early_stopping.restore_best_weights, 0);
}

static void test_metric_resolve(void **state)
{
    (void)state;
    nn_loss_spec bce = nn_loss_default(NN_LOSS_BINARY_CE);
    nn_loss_spec scce = nn_loss_default(NN_LOSS_SPARSE_CATEGORICAL_CE);
    nn_loss_spec cce = nn_loss_default(NN_LOSS_CATEGORICAL_CE);
    nn_loss_spec mse = nn_loss_default(NN_LOSS_MSE);
    assert_int_equal(nn_metric_resolve(NN_METRIC_ACCURACY, &bce, 1), NN_METRIC_BINARY_ACCURACY);
    assert_int_equal(nn_metric_resolve(NN_METRIC_ACCURACY, &bce, 4), NN_METRIC_CATEGORICAL_ACCURACY);
    assert_int_equal(nn_metric_resolve(NN_METRIC_ACCURACY, &mse, 1), NN_METRIC_BINARY_ACCURACY);
    assert_int_equal(nn_metric_resolve(NN_METRIC_ACCURACY, &scce, 10),
                     NN_METRIC_SPARSE_CATEGORICAL_ACCURACY);
    assert_int_equal(nn_metric_resolve(NN_METRIC_ACCURACY, &cce, 10),
                     NN_METRIC_CATEGORICAL_ACCURACY);
    assert_int_equal(nn_metric_resolve(NN_METRIC_ACCURACY, &mse, 3),
                     NN_METRIC_CATEGORICAL_ACCURACY);
    assert_int_equal(nn_metric_resolve(NN_METRIC_ACCURACY, NULL, 3),
                     NN_METRIC_CATEGORICAL_ACCURACY);
    assert_int_equal(nn_metric_resolve(NN_METRIC_MAE, &scce, 10), NN_METRIC_MAE);
}

/* ------------------------------------------------------------ valid specs */

/* What Keras accepts the spec accepts: binary crossentropy over several sigmoid
 * units (independent labels), a learning rate of 0, and a negative min_delta
 * (Keras and the core compare with its absolute value). */
static void test_keras_accepts(void **state)
{
    (void)state;
    spec_job job;
    parse_ok("{" DATA "," MODEL("{'type':'dense','units':3,'activation':'sigmoid'}") ","
             "'compile':{'loss':'binary_crossentropy','metrics':['accuracy']}}",
             0, &job);
    assert_int_equal(job.compile.loss.kind, NN_LOSS_BINARY_CE);
    spec_job_free(&job);
    parse_ok(WITH_OPT("{'name':'sgd','learning_rate':0}"), 0, &job);
    assert_true(job.compile.optimizer.learning_rate == 0.0);
    spec_job_free(&job);
    parse_ok(WITH_OPT("{'name':'sgd','learning_rate':{'schedule':'exponential_decay',"
                      "'initial_learning_rate':0,'decay_steps':5,'decay_rate':0.5}}"),
             0, &job);
    spec_job_free(&job);
    parse_ok(WITH_FIT("'early_stopping':{'monitor':'loss','min_delta':-0.5}"), 0, &job);
    assert_true(job.fit.early_stopping.min_delta == -0.5);
    spec_job_free(&job);
}

static void test_design_example(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = read_file(fixture_path("spec/design_example.json"), &len);
    assert_non_null(text);
    spec_job job;
    spec_problems pr;
    int rc = spec_job_parse_text(text, len, NULL, 0, &job, &pr);
    if (rc != SPEC_OK) print_problems(&pr);
    assert_int_equal(rc, SPEC_OK);
    free(text);

    assert_string_equal(job.name, "fmnist-l2-dropout");
    assert_string_equal(job.train, "ds_train01");
    assert_string_equal(job.validation, "ds_val01");
    assert_string_equal(job.test, "");

    assert_int_equal(job.model.input_dim, 784);
    assert_int_equal(job.model.n_layers, 3);
    const nn_layer_spec *l0 = &job.model.layers[0], *l1 = &job.model.layers[1],
                        *l2 = &job.model.layers[2];
    assert_int_equal(l0->kind, NN_LAYER_DENSE);
    assert_string_equal(l0->name, "dense");
    assert_int_equal(l0->units, 512);
    assert_int_equal(l0->activation, NN_ACT_RELU);
    assert_int_equal(l0->use_bias, 1);
    assert_int_equal(l0->kernel_init.kind, NN_INIT_GLOROT_UNIFORM);
    assert_int_equal(l0->kernel_init.has_seed, 0);
    assert_int_equal(l0->bias_init.kind, NN_INIT_ZEROS);
    assert_true(l0->kernel_reg.l2 == 0.0001 && l0->kernel_reg.l1 == 0);
    assert_true(l0->bias_reg.l1 == 0 && l0->bias_reg.l2 == 0);
    assert_true(l0->activity_reg.l1 == 0 && l0->activity_reg.l2 == 0);
    assert_int_equal(l1->kind, NN_LAYER_DROPOUT);
    assert_string_equal(l1->name, "dropout");
    assert_true(l1->rate == 0.2 && !l1->has_seed);
    assert_int_equal(l2->kind, NN_LAYER_DENSE);
    assert_string_equal(l2->name, "dense_1");
    assert_int_equal(l2->units, 10);
    assert_int_equal(l2->activation, NN_ACT_SOFTMAX);
    assert_true(l2->kernel_reg.l2 == 0);

    const nn_optimizer_spec *o = &job.compile.optimizer;
    assert_int_equal(o->kind, NN_OPT_ADAM);
    assert_true(o->learning_rate == 0.001 && o->beta_1 == 0.9 && o->beta_2 == 0.999 &&
                o->epsilon == 1e-7 && !o->amsgrad);
    assert_int_equal(o->schedule.kind, NN_SCHED_CONSTANT);
    assert_true(o->clipnorm == 0 && o->clipvalue == 0 && o->global_clipnorm == 0);
    assert_int_equal(job.compile.loss.kind, NN_LOSS_SPARSE_CATEGORICAL_CE);
    assert_int_equal(job.compile.loss.from_logits, 0);
    assert_int_equal(job.compile.n_metrics, 1);
    assert_int_equal(job.compile.metrics[0], NN_METRIC_ACCURACY);
    assert_string_equal(job.compile.metric_names[0], "accuracy");
    assert_int_equal(nn_metric_resolve(job.compile.metrics[0], &job.compile.loss, 10),
                     NN_METRIC_SPARSE_CATEGORICAL_ACCURACY);

    const nn_fit_spec *f = &job.fit;
    assert_int_equal(f->epochs, 10);
    assert_int_equal(f->batch_size, 128);
    assert_true(f->validation_split == 0.1);
    assert_int_equal(f->shuffle, 1);
    assert_true(f->seed == 42);
    assert_int_equal(f->early_stopping.enabled, 1);
    assert_string_equal(f->early_stopping.monitor, "val_loss");
    assert_int_equal(f->early_stopping.patience, 3);
    assert_int_equal(f->early_stopping.restore_best_weights, 1);
    assert_int_equal(f->early_stopping.mode, NN_ES_AUTO);
    assert_true(f->early_stopping.min_delta == 0 && !f->early_stopping.has_baseline);
    assert_int_equal(f->early_stopping.start_from_epoch, 0);
    spec_job_free(&job);
    assert_null(job.model.layers);
    spec_job_free(&job); /* idempotent */
    spec_job_free(NULL);
}

static void test_minimal_defaults(void **state)
{
    (void)state;
    spec_job job;
    parse_ok("{" DATA "," MODEL("{'type':'dense','units':1}") ",'compile':{'loss':'mse'}}", 0, &job);
    assert_string_equal(job.name, "");
    assert_int_equal(job.model.layers[0].activation, NN_ACT_LINEAR);
    assert_int_equal(job.compile.optimizer.kind, NN_OPT_RMSPROP); /* Keras compile default */
    assert_true(job.compile.optimizer.learning_rate == 0.001);
    assert_int_equal(job.compile.n_metrics, 0);
    nn_fit_spec d = nn_fit_default();
    assert_int_equal(job.fit.epochs, d.epochs);
    assert_int_equal(job.fit.batch_size, d.batch_size);
    assert_int_equal(job.fit.early_stopping.enabled, 0);
    spec_job_free(&job);

    /* null means the default; 64.0 is an integer; class names for types */
    parse_ok("{'name':null," DATA ",'model':{'input_shape':[4.0],'layers':[{'type':'Dense',"
             "'units':3.0,'activation':null,'kernel_regularizer':null,'name':null}]},"
             "'compile':{'loss':'mean_squared_error','optimizer':null,'metrics':null},"
             "'fit':{'epochs':2.0,'seed':null,'early_stopping':null}}",
             0, &job);
    assert_int_equal(job.model.input_dim, 4);
    assert_int_equal(job.model.layers[0].units, 3);
    assert_int_equal(job.compile.loss.kind, NN_LOSS_MSE);
    assert_int_equal(job.fit.epochs, 2);
    spec_job_free(&job);
}

static void test_regularizer_forms(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        double l1, l2;
    } rows[] = {
        {"null", 0, 0},
        {"{'l1':0.5}", 0.5, 0},
        {"{'l2':0.25}", 0, 0.25},
        {"{'l1':0.125,'l2':0.0625}", 0.125, 0.0625},
        {"{'l1':0,'l2':0}", 0, 0},
        {"'l1'", 0.01, 0},
        {"'l2'", 0, 0.01},
        {"'l1_l2'", 0.01, 0.01},
        {"'l1l2'", 0.01, 0.01},
        {"{'class_name':'L2','config':{'l2':0.001}}", 0, 0.001},
        {"{'class_name':'L1','config':{'l1':0.003}}", 0.003, 0},
        {"{'class_name':'L1L2','config':{'l1':0.1,'l2':0.2}}", 0.1, 0.2},
        {"{'class_name':'L2'}", 0, 0.01},
        {"{'class_name':'L1','config':{}}", 0.01, 0},
        {"{'class_name':'L1L2','config':{'l2':0.5}}", 0, 0.5},
        {"{'module':'keras.regularizers','class_name':'L2','config':{'l2':0.0010000000474974513},"
         "'registered_name':null}",
         0, 0.0010000000474974513},
        {"{'module':'keras.regularizers','class_name':'L1L2','config':{'l1':0.0,'l2':0.01},"
         "'registered_name':'L1L2'}",
         0, 0.01},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char text[1024];
        /* the same form in all three regularizer slots */
        snprintf(text, sizeof text,
                 WITH_LAYERS("{'type':'dense','units':3,'activation':'softmax',"
                             "'kernel_regularizer':%s,'bias_regularizer':%s,"
                             "'activity_regularizer':%s}"),
                 rows[i].json, rows[i].json, rows[i].json);
        spec_job job;
        spec_problems pr;
        int rc = parse_q(text, 0, &job, &pr);
        if (rc != SPEC_OK) {
            print_message("row %zu: %s\n", i, rows[i].json);
            print_problems(&pr);
        }
        assert_int_equal(rc, SPEC_OK);
        const nn_layer_spec *l = &job.model.layers[0];
        const nn_regularizer *regs[] = {&l->kernel_reg, &l->bias_reg, &l->activity_reg};
        for (int k = 0; k < 3; k++) {
            if (regs[k]->l1 != rows[i].l1 || regs[k]->l2 != rows[i].l2)
                fail_msg("row %zu (%s) slot %d: got l1 %g l2 %g", i, rows[i].json, k,
                         regs[k]->l1, regs[k]->l2);
        }
        spec_job_free(&job);
    }
}

static void test_initializer_forms(void **state)
{
    (void)state;
    spec_job job;
    parse_ok(WITH_LAYERS(
                 "{'type':'dense','units':8,'kernel_initializer':'he_normal',"
                 "'bias_initializer':'ones'},"
                 "{'type':'dense','units':8,'kernel_initializer':{'name':'random_normal',"
                 "'mean':0.5,'stddev':0.25,'seed':7},'bias_initializer':{'name':'random_uniform'}},"
                 "{'type':'dense','units':8,'kernel_initializer':{'class_name':'GlorotNormal',"
                 "'config':{'seed':3},'module':'keras.initializers','registered_name':null},"
                 "'bias_initializer':{'class_name':'RandomUniform','config':{'minval':-1,"
                 "'maxval':2,'seed':null}}},"
                 "{'type':'dense','units':3,'activation':'softmax','use_bias':false,"
                 "'kernel_initializer':'LecunUniform'}"),
             0, &job);
    const nn_layer_spec *L = job.model.layers;
    assert_int_equal(L[0].kernel_init.kind, NN_INIT_HE_NORMAL);
    assert_int_equal(L[0].bias_init.kind, NN_INIT_ONES);
    assert_int_equal(L[1].kernel_init.kind, NN_INIT_RANDOM_NORMAL);
    assert_true(L[1].kernel_init.a == 0.5 && L[1].kernel_init.b == 0.25);
    assert_true(L[1].kernel_init.has_seed && L[1].kernel_init.seed == 7);
    assert_int_equal(L[1].bias_init.kind, NN_INIT_RANDOM_UNIFORM);
    assert_true(L[1].bias_init.a == -0.05 && L[1].bias_init.b == 0.05 && !L[1].bias_init.has_seed);
    assert_int_equal(L[2].kernel_init.kind, NN_INIT_GLOROT_NORMAL);
    assert_true(L[2].kernel_init.has_seed && L[2].kernel_init.seed == 3);
    assert_int_equal(L[2].bias_init.kind, NN_INIT_RANDOM_UNIFORM);
    assert_true(L[2].bias_init.a == -1 && L[2].bias_init.b == 2 && !L[2].bias_init.has_seed);
    assert_int_equal(L[3].kernel_init.kind, NN_INIT_LECUN_UNIFORM);
    assert_int_equal(L[3].use_bias, 0);
    spec_job_free(&job);
}

static void test_default_naming(void **state)
{
    (void)state;
    spec_job job;
    parse_ok(WITH_LAYERS("{'type':'dense','units':8},{'type':'dropout','rate':0.1},"
                         "{'type':'dense','units':8},{'type':'dropout','rate':0},"
                         "{'type':'dense','units':8,'name':'hidden.3'},"
                         "{'type':'dense','units':3,'activation':'softmax'}"),
             0, &job);
    const char *want[] = {"dense", "dropout", "dense_1", "dropout_1", "hidden.3", "dense_2"};
    assert_int_equal(job.model.n_layers, 6);
    for (int i = 0; i < 6; i++) assert_string_equal(job.model.layers[i].name, want[i]);
    spec_job_free(&job);

    /* automatic names skip names the spec uses explicitly */
    parse_ok(WITH_LAYERS("{'type':'dense','units':8},{'type':'dense','units':8,'name':'dense_1'},"
                         "{'type':'dense','units':8,'name':'dense'},"
                         "{'type':'dense','units':3,'activation':'softmax'}"),
             0, &job);
    const char *want2[] = {"dense_2", "dense_1", "dense", "dense_3"};
    for (int i = 0; i < 4; i++) assert_string_equal(job.model.layers[i].name, want2[i]);
    spec_job_free(&job);
}

static void test_compile_forms(void **state)
{
    (void)state;
    spec_job job;
    parse_ok(WITH_COMPILE("'optimizer':{'name':'sgd','learning_rate':0.1,'momentum':0.9,"
                          "'nesterov':true,'clipnorm':1.5,'clipvalue':null},"
                          "'loss':{'name':'categorical_crossentropy','from_logits':false,"
                          "'label_smoothing':0.1},'metrics':['acc','mae','categorical_accuracy']"),
             0, &job);
    const nn_optimizer_spec *o = &job.compile.optimizer;
    assert_int_equal(o->kind, NN_OPT_SGD);
    assert_true(o->learning_rate == 0.1 && o->momentum == 0.9 && o->nesterov);
    assert_true(o->clipnorm == 1.5 && o->clipvalue == 0);
    assert_int_equal(job.compile.loss.kind, NN_LOSS_CATEGORICAL_CE);
    assert_true(job.compile.loss.label_smoothing == 0.1);
    assert_int_equal(job.compile.n_metrics, 3);
    assert_string_equal(job.compile.metric_names[0], "acc");
    assert_int_equal(job.compile.metrics[0], NN_METRIC_ACCURACY);
    assert_int_equal(job.compile.metrics[1], NN_METRIC_MAE);
    spec_job_free(&job);

    parse_ok(WITH_OPT("{'name':'adamw','learning_rate':{'schedule':'exponential_decay',"
                      "'initial_learning_rate':0.01,'decay_steps':100,'decay_rate':0.5,"
                      "'staircase':true},'weight_decay':0.01,'amsgrad':true,'global_clipnorm':2}"),
             0, &job);
    o = &job.compile.optimizer;
    assert_int_equal(o->kind, NN_OPT_ADAMW);
    assert_int_equal(o->schedule.kind, NN_SCHED_EXPONENTIAL_DECAY);
    assert_true(o->learning_rate == 0.01 && o->schedule.decay_steps == 100 &&
                o->schedule.decay_rate == 0.5 && o->schedule.staircase);
    assert_true(o->weight_decay == 0.01 && o->amsgrad && o->global_clipnorm == 2);
    assert_true(o->beta_1 == 0.9 && o->epsilon == 1e-7);
    spec_job_free(&job);

    parse_ok(WITH_OPT("{'name':'RMSprop','learning_rate':{'schedule':'cosine_decay',"
                      "'initial_learning_rate':0.1,'decay_steps':50,'alpha':0.1},"
                      "'rho':0.8,'centered':true,'momentum':0.5}"),
             0, &job);
    o = &job.compile.optimizer;
    assert_int_equal(o->kind, NN_OPT_RMSPROP);
    assert_int_equal(o->schedule.kind, NN_SCHED_COSINE_DECAY);
    assert_true(o->schedule.alpha == 0.1 && o->schedule.decay_steps == 50 && o->rho == 0.8);
    assert_true(o->centered && o->momentum == 0.5);
    spec_job_free(&job);

    parse_ok(WITH_OPT("'adagrad'"), 0, &job);
    assert_int_equal(job.compile.optimizer.kind, NN_OPT_ADAGRAD);
    assert_true(job.compile.optimizer.initial_accumulator == 0.1);
    spec_job_free(&job);

    parse_ok("{" DATA "," MODEL("{'type':'dense','units':1}") ","
             "'compile':{'loss':{'name':'binary_crossentropy','from_logits':true},"
             "'metrics':['accuracy','binary_accuracy']},"
             "'fit':{'validation_split':0.2,'early_stopping':{'monitor':'val_accuracy',"
             "'mode':'max','min_delta':0.001,'baseline':0.5,'start_from_epoch':2}}}",
             0, &job);
    assert_int_equal(job.compile.loss.kind, NN_LOSS_BINARY_CE);
    assert_int_equal(job.compile.loss.from_logits, 1);
    const nn_early_stopping *es = &job.fit.early_stopping;
    assert_true(es->enabled && es->mode == NN_ES_MAX && es->min_delta == 0.001);
    assert_true(es->has_baseline && es->baseline == 0.5 && es->start_from_epoch == 2);
    assert_string_equal(es->monitor, "val_accuracy");
    spec_job_free(&job);

    parse_ok(WITH_COMPILE("'loss':{'name':'huber','delta':2.5}"), 0, &job);
    assert_true(job.compile.loss.kind == NN_LOSS_HUBER && job.compile.loss.delta == 2.5);
    spec_job_free(&job);
}

static void test_data_optional(void **state)
{
    (void)state;
    spec_job job;
    spec_problems pr;
    const char *no_data = "{" MODEL(D3) "," COMP ",'fit':{'early_stopping':{}}}";
    parse_ok(no_data, SPEC_DATA_OPTIONAL, &job);
    assert_string_equal(job.train, "");
    assert_int_equal(job.fit.early_stopping.enabled, 1);
    spec_job_free(&job);
    parse_ok("{'data':{'validation':'v1'}," MODEL(D3) "," COMP "}", SPEC_DATA_OPTIONAL, &job);
    assert_string_equal(job.validation, "v1");
    spec_job_free(&job);

    /* the service requires them */
    assert_int_equal(parse_q(no_data, 0, &job, &pr), SPEC_INVALID);
    assert_int_equal(pr.n, 2);
    assert_string_equal(pr.items[0].pointer, "/data");
    assert_string_equal(pr.items[1].pointer, "/fit/early_stopping/monitor");
    assert_null(job.model.layers);
    spec_job_free(&job);
    /* the verdict without a problem list */
    assert_int_equal(parse_q(no_data, 0, &job, NULL), SPEC_INVALID);
}

static void test_limits(void **state)
{
    (void)state;
    spec_limits lim = {0};
    lim.max_layers = 2;
    lim.max_params = 100;
    lim.max_epochs = 5;
    spec_job job;
    spec_problems pr;
    char *t = dq(WITH_LAYERS(D3 "," D3 "," D3));
    assert_int_equal(spec_job_parse_text(t, strlen(t), &lim, 0, &job, &pr), SPEC_INVALID);
    free(t);
    assert_int_equal(pr.n, 1);
    assert_string_equal(pr.items[0].pointer, "/model/layers");
    assert_non_null(strstr(pr.items[0].message, "limit is 2"));

    /* 4*20+20 + 20*3+3 = 163 parameters */
    t = dq("{" DATA "," MODEL("{'type':'dense','units':20}," D3) "," COMP ",'fit':{'epochs':6}}");
    assert_int_equal(spec_job_parse_text(t, strlen(t), &lim, 0, &job, &pr), SPEC_INVALID);
    free(t);
    assert_int_equal(pr.n, 2);
    assert_string_equal(pr.items[0].pointer, "/model/layers");
    assert_non_null(strstr(pr.items[0].message, "163 parameters"));
    assert_string_equal(pr.items[1].pointer, "/fit/epochs");
    assert_non_null(strstr(pr.items[1].message, "at most 5"));

    /* zero fields take the defaults */
    spec_limits d = spec_limits_default();
    assert_int_equal(d.max_layers, 64);
    assert_int_equal(d.max_units, 65536);
    assert_true(d.max_params == 50000000);
    assert_int_equal(d.max_epochs, 10000);
    assert_int_equal(d.max_batch_size, 65536);
    t = dq(WITH_FIT("'epochs':10000,'batch_size':65536"));
    assert_int_equal(spec_job_parse_text(t, strlen(t), &(spec_limits){0}, 0, &job, &pr), SPEC_OK);
    free(t);
    spec_job_free(&job);
}

/* ------------------------------------------------------------ round trip */

static void assert_init_eq(const nn_init_spec *a, const nn_init_spec *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_true(a->a == b->a && a->b == b->b);
    assert_int_equal(a->has_seed, b->has_seed);
    assert_true(a->seed == b->seed);
}

static void assert_reg_eq(nn_regularizer a, nn_regularizer b)
{
    assert_true(a.l1 == b.l1 && a.l2 == b.l2);
}

static void assert_job_eq(const spec_job *a, const spec_job *b)
{
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->train, b->train);
    assert_string_equal(a->validation, b->validation);
    assert_string_equal(a->test, b->test);
    assert_int_equal(a->model.input_dim, b->model.input_dim);
    assert_int_equal(a->model.n_layers, b->model.n_layers);
    for (int i = 0; i < a->model.n_layers; i++) {
        const nn_layer_spec *x = &a->model.layers[i], *y = &b->model.layers[i];
        assert_int_equal(x->kind, y->kind);
        assert_string_equal(x->name, y->name);
        if (x->kind == NN_LAYER_DENSE) {
            assert_int_equal(x->units, y->units);
            assert_int_equal(x->activation, y->activation);
            assert_int_equal(x->use_bias, y->use_bias);
            assert_init_eq(&x->kernel_init, &y->kernel_init);
            assert_init_eq(&x->bias_init, &y->bias_init);
            assert_reg_eq(x->kernel_reg, y->kernel_reg);
            assert_reg_eq(x->bias_reg, y->bias_reg);
            assert_reg_eq(x->activity_reg, y->activity_reg);
        } else {
            assert_true(x->rate == y->rate);
            assert_int_equal(x->has_seed, y->has_seed);
            assert_true(x->seed == y->seed);
        }
    }
    const nn_optimizer_spec *o = &a->compile.optimizer, *p = &b->compile.optimizer;
    assert_int_equal(o->kind, p->kind);
    assert_true(o->learning_rate == p->learning_rate);
    assert_int_equal(o->schedule.kind, p->schedule.kind);
    assert_true(o->schedule.decay_steps == p->schedule.decay_steps);
    assert_true(o->schedule.decay_rate == p->schedule.decay_rate);
    assert_int_equal(o->schedule.staircase, p->schedule.staircase);
    assert_true(o->schedule.alpha == p->schedule.alpha);
    assert_int_equal(o->schedule.warmup, p->schedule.warmup);
    assert_true(o->schedule.warmup_target == p->schedule.warmup_target);
    assert_true(o->schedule.warmup_steps == p->schedule.warmup_steps);
    assert_true(o->beta_1 == p->beta_1 && o->beta_2 == p->beta_2 && o->epsilon == p->epsilon);
    assert_int_equal(o->amsgrad, p->amsgrad);
    assert_true(o->weight_decay == p->weight_decay && o->momentum == p->momentum);
    assert_int_equal(o->nesterov, p->nesterov);
    assert_true(o->rho == p->rho && o->initial_accumulator == p->initial_accumulator);
    assert_int_equal(o->centered, p->centered);
    assert_true(o->clipnorm == p->clipnorm && o->clipvalue == p->clipvalue &&
                o->global_clipnorm == p->global_clipnorm);
    const nn_loss_spec *l = &a->compile.loss, *m = &b->compile.loss;
    assert_int_equal(l->kind, m->kind);
    assert_int_equal(l->from_logits, m->from_logits);
    assert_true(l->label_smoothing == m->label_smoothing && l->delta == m->delta);
    assert_int_equal(a->compile.n_metrics, b->compile.n_metrics);
    for (int i = 0; i < a->compile.n_metrics; i++) {
        assert_int_equal(a->compile.metrics[i], b->compile.metrics[i]);
        assert_string_equal(a->compile.metric_names[i], b->compile.metric_names[i]);
    }
    const nn_fit_spec *f = &a->fit, *g = &b->fit;
    assert_int_equal(f->epochs, g->epochs);
    assert_int_equal(f->batch_size, g->batch_size);
    assert_int_equal(f->shuffle, g->shuffle);
    assert_true(f->seed == g->seed && f->validation_split == g->validation_split);
    const nn_early_stopping *e = &f->early_stopping, *h = &g->early_stopping;
    assert_int_equal(e->enabled, h->enabled);
    if (e->enabled) {
        assert_string_equal(e->monitor, h->monitor);
        assert_true(e->min_delta == h->min_delta);
        assert_int_equal(e->patience, h->patience);
        assert_int_equal(e->mode, h->mode);
        assert_int_equal(e->restore_best_weights, h->restore_best_weights);
        assert_int_equal(e->start_from_epoch, h->start_from_epoch);
        assert_int_equal(e->has_baseline, h->has_baseline);
        assert_true(!e->has_baseline || e->baseline == h->baseline);
    }
}

static void round_trip(const char *text, int flags)
{
    spec_job a, b;
    spec_problems pr;
    char *t = dq(text);
    int rc = spec_job_parse_text(t, strlen(t), NULL, flags, &a, &pr);
    free(t);
    if (rc != SPEC_OK) print_problems(&pr);
    assert_int_equal(rc, SPEC_OK);
    json_t *j1 = spec_job_to_json(&a);
    assert_non_null(j1);
    rc = spec_job_parse(j1, NULL, flags, &b, &pr);
    if (rc != SPEC_OK) {
        char *dump = json_dumps(j1, JSON_INDENT(1));
        print_message("rendered: %s\n", dump);
        free(dump);
        print_problems(&pr);
    }
    assert_int_equal(rc, SPEC_OK);
    assert_job_eq(&a, &b);
    json_t *j2 = spec_job_to_json(&b);
    assert_non_null(j2);
    assert_true(json_equal(j1, j2));
    /* and through text, as the store keeps it */
    char *s = json_dumps(j1, JSON_COMPACT);
    assert_non_null(s);
    spec_job c;
    assert_int_equal(spec_job_parse_text(s, strlen(s), NULL, flags, &c, &pr), SPEC_OK);
    assert_job_eq(&a, &c);
    free(s);
    json_decref(j1);
    json_decref(j2);
    spec_job_free(&a);
    spec_job_free(&b);
    spec_job_free(&c);
}

/* A stored spec keeps the reading it was accepted with: clipnorm beside clipvalue
 * (refused now) is clipnorm alone, as the optimizer applied it then. */
static void test_parse_stored(void **state)
{
    (void)state;
    const char *text = "{\"data\":{\"train\":\"ds\"},\"model\":{\"input_shape\":[4],"
                       "\"layers\":[{\"type\":\"dense\",\"units\":1}]},\"compile\":{\"loss\":"
                       "\"mse\",\"optimizer\":{\"name\":\"sgd\",\"clipnorm\":2,\"clipvalue\":0.5}}}";
    spec_job job;
    spec_problems pr;
    assert_int_equal(spec_job_parse_text(text, strlen(text), NULL, 0, &job, &pr), SPEC_INVALID);
    assert_string_equal(pr.items[0].pointer, "/compile/optimizer/clipvalue");
    assert_int_equal(spec_job_parse_stored(text, &job, &pr), SPEC_OK);
    assert_true(job.compile.optimizer.clipnorm == 2 && job.compile.optimizer.clipvalue == 0);
    spec_job_free(&job);
    assert_int_equal(spec_job_parse_stored(NULL, &job, &pr), SPEC_INVALID);
    spec_job_free(&job);
}

static void test_round_trip(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = read_file(fixture_path("spec/design_example.json"), &len);
    assert_non_null(text);
    round_trip(text, 0);
    free(text);
    round_trip("{" DATA "," MODEL("{'type':'dense','units':1}") ",'compile':{'loss':'mse'}}", 0);
    round_trip("{'name':'rt','data':{'train':'a','validation':'b','test':'c'},"
               "'model':{'input_shape':[5],'layers':[{'type':'dense','units':16,"
               "'activation':'gelu','use_bias':false,'kernel_initializer':{'name':'random_uniform',"
               "'minval':-0.3,'maxval':0.1,'seed':9},'kernel_regularizer':'l1_l2',"
               "'bias_regularizer':{'l1':1e-5},'activity_regularizer':{'class_name':'L2'}},"
               "{'type':'dropout','rate':0.3333333333333333,'seed':12345678901234},"
               "{'type':'dense','units':4,'name':'out','bias_initializer':'he_uniform'}]},"
               "'compile':{'optimizer':{'name':'adam','learning_rate':{'schedule':"
               "'exponential_decay','initial_learning_rate':0.1,'decay_steps':7,'decay_rate':0.9},"
               "'clipvalue':0.5,'beta_2':0.99},'loss':{'name':'categorical_crossentropy',"
               "'from_logits':true,'label_smoothing':0.2},'metrics':['categorical_accuracy','mse']},"
               "'fit':{'epochs':3,'batch_size':7,'shuffle':false,'seed':9007199254740993,"
               "'validation_split':0.3,'early_stopping':{'monitor':'val_mse','patience':2,"
               "'mode':'min','baseline':-1.5,'min_delta':0.01,'restore_best_weights':true}}}",
               0);
    round_trip(WITH_OPT("{'name':'sgd','learning_rate':{'schedule':'cosine_decay',"
                        "'initial_learning_rate':0.5,'decay_steps':3,'alpha':0.25},"
                        "'global_clipnorm':1}"),
               0);
    round_trip(WITH_OPT("'adamw'"), 0);
    round_trip(WITH_OPT("{'name':'adagrad','initial_accumulator_value':0.5,'epsilon':1e-6}"), 0);
    round_trip(WITH_OPT("'rmsprop'"), 0);
    round_trip(WITH_OPT("{'name':'adam','learning_rate':{'schedule':'cosine_decay',"
                        "'initial_learning_rate':0,'decay_steps':100,'warmup_target':0.01,"
                        "'warmup_steps':10}}"),
               0);
    /* weight_decay on any optimizer, as Keras 3's BaseOptimizer takes it */
    round_trip(WITH_OPT("{'name':'sgd','momentum':0.9,'weight_decay':0.01}"), 0);
    round_trip(WITH_OPT("{'name':'adam','weight_decay':0.05}"), 0);
    round_trip("{" MODEL("{'type':'dense','units':2,'activation':'relu'}") ","
               "'compile':{'loss':{'name':'huber','delta':0.5}}}",
               SPEC_DATA_OPTIONAL);
}

static void test_to_json_defaults(void **state)
{
    (void)state;
    spec_job job;
    parse_ok(WITH_LAYERS("{'type':'dense','units':3,'activation':'softmax'}"), 0, &job);
    json_t *j = spec_job_to_json(&job);
    assert_non_null(j);
    json_error_t err;
    const char *lname = NULL, *kinit = NULL, *opt = NULL, *mon = NULL;
    json_t *kreg = NULL, *es = NULL;
    double lr = 0, rho = 0;
    int epochs = 0, batch = 0, bias = 0;
    int rc = json_unpack_ex(j, &err, 0,
                            "{s:{s:[{s:s, s:b, s:{s:s}, s:o}]}, s:{s:{s:s, s:f, s:f}},"
                            " s:{s:i, s:i, s:o}}",
                            "model", "layers", "name", &lname, "use_bias", &bias,
                            "kernel_initializer", "name", &kinit, "kernel_regularizer", &kreg,
                            "compile", "optimizer", "name", &opt, "learning_rate", &lr, "rho",
                            &rho, "fit", "epochs", &epochs, "batch_size", &batch,
                            "early_stopping", &es);
    if (rc != 0) fail_msg("unpack: %s", err.text);
    assert_string_equal(lname, "dense");
    assert_int_equal(bias, 1);
    assert_string_equal(kinit, "glorot_uniform");
    assert_true(json_is_null(kreg));
    assert_string_equal(opt, "rmsprop");
    assert_true(lr == 0.001 && rho == 0.9);
    assert_int_equal(epochs, 1);
    assert_int_equal(batch, 32);
    assert_true(json_is_null(es));
    /* An unnamed job renders no name (the job resource shows it as null, not ""). */
    assert_null(json_object_get(j, "name"));
    (void)mon;
    json_decref(j);
    spec_job_free(&job);
}

/* ------------------------------------------------------------ invalid specs */

typedef struct expect {
    const char *pointer, *message;
} expect;

typedef struct bad_row {
    const char *text;
    expect e[6]; /* every problem expected, in order; unused entries NULL */
} bad_row;

static const bad_row bad_rows[] = {
    /* unknown keys */
    {"{" DATA "," MODEL(D3) "," COMP ",'inits':1}", {{"/inits", "unknown key 'inits'"}}},
    {"{" DATA "," MODEL(D3) "," COMP ",'init':1}", {{"/init", "must be an object"}}},
    {WITH_LAYERS("{'type':'dense','unit':3}"),
     {{"/model/layers/0/unit", "unknown key 'unit'"}, {"/model/layers/0/units", "required"}}},
    {"{" DATA "," MODEL(D3) "," COMP ",'a/b~c':1}", {{"/a~1b~0c", "unknown key 'a/b~c'"}}},
    {"{'data':{'train':'x','valid':'y'}," MODEL(D3) "," COMP "}",
     {{"/data/valid", "unknown key 'valid'"}}},
    {"{" DATA ",'model':{'input_shape':[4],'layers':[" D3 "],'name':'m'}," COMP "}",
     {{"/model/name", "unknown key"}}},
    {WITH_FIT("'verbose':1"), {{"/fit/verbose", "unknown key"}}},
    {WITH_FIT("'early_stopping':{'monitor':'loss','verbose':1}"),
     {{"/fit/early_stopping/verbose", "unknown key"}}},
    {WITH_COMPILE(SCCE ",'weighted_metrics':[]"), {{"/compile/weighted_metrics", "unknown key"}}},
    /* types and integers */
    {WITH_LAYERS("{'type':'dense','units':3.5}"), {{"/model/layers/0/units", "must be an integer, not 3.5"}}},
    {WITH_LAYERS("{'type':'dense','units':'3'}"), {{"/model/layers/0/units", "not a string"}}},
    {WITH_LAYERS("{'type':'dense','units':0}"), {{"/model/layers/0/units", "at least 1"}}},
    {WITH_LAYERS("{'type':'dense','units':70000}"), {{"/model/layers/0/units", "at most 65536"}}},
    {WITH_LAYERS("{'type':'dense','units':1e20}"), {{"/model/layers/0/units", "at most 65536"}}},
    {WITH_LAYERS("{'type':'dense','units':-9223372036854775807}"),
     {{"/model/layers/0/units", "at least 1"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'use_bias':1}"),
     {{"/model/layers/0/use_bias", "true or false"}}},
    {WITH_LAYERS("[3]"), {{"/model/layers/0", "must be an object, not an array"}}},
    {WITH_LAYERS("{'units':3}"), {{"/model/layers/0/type", "required"}}},
    {"{" DATA ",'model':[1]," COMP "}", {{"/model", "must be an object"}}},
    {"[1,2]", {{"", "must be a JSON object"}}},
    {"{" DATA ",'model':{'input_shape':[4],'layers':{}}," COMP "}", {{"/model/layers", "must be an array"}}},
    /* layers */
    {WITH_LAYERS("{'type':'conv2d','filters':3}"), {{"/model/layers/0/type", "unknown layer type 'conv2d'"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'activation':'mish'}"),
     {{"/model/layers/0/activation", "unknown activation 'mish'"}}},
    {WITH_LAYERS(D3 ",{'type':'dropout','rate':1.0}"), {{"/model/layers/1/rate", "[0, 1)"}}},
    {WITH_LAYERS(D3 ",{'type':'dropout','rate':0.99999999}"), {{"/model/layers/1/rate", "rounds to 1"}}},
    {WITH_LAYERS("{'type':'dropout','rate':-0.1}," D3), {{"/model/layers/0/rate", "[0, 1)"}}},
    {WITH_LAYERS("{'type':'dropout'}," D3), {{"/model/layers/0/rate", "required"}}},
    {WITH_LAYERS("{'type':'dropout','rate':0.5,'seed':-2}," D3), {{"/model/layers/0/seed", "at least 0"}}},
    {"{" DATA ",'model':{'input_shape':[28,28],'layers':[" D3 "]}," COMP "}",
     {{"/model/input_shape", "array of one integer"}}},
    {"{" DATA ",'model':{'input_shape':[0],'layers':[" D3 "]}," COMP "}",
     {{"/model/input_shape/0", "at least 1"}}},
    {"{" DATA ",'model':{'layers':[" D3 "]}," COMP "}", {{"/model/input_shape", "required"}}},
    {WITH_LAYERS(""), {{"/model/layers", "at least one layer"}}},
    {WITH_LAYERS("{'type':'dropout','rate':0.1}"), {{"/model/layers", "at least one dense layer"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'name':'a/b','activation':'softmax'}"),
     {{"/model/layers/0/name", "A-Z a-z 0-9"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'name':'','activation':'softmax'}"),
     {{"/model/layers/0/name", "1 to 63"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'name':"
                 "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'}"),
     {{"/model/layers/0/name", "1 to 63"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'name':'h'},{'type':'dense','units':3,'name':'h',"
                 "'activation':'softmax'}"),
     {{"/model/layers/1/name", "duplicate layer name 'h'"}}},
    {"{" DATA ",'model':{'input_shape':[1000000],'layers':[{'type':'dense','units':65536},"
     D3 "]}," COMP "}",
     {{"/model/layers", "parameters; the limit is 50000000"}}},
    {WITH_LAYERS("{'type':'dense','units':1,'activation':'softmax'}"),
     {{"/model/layers/0/activation", "softmax over 1 unit"}, {"/compile/loss", "2 or more"}}},
    /* regularizers and initializers */
    {WITH_LAYERS("{'type':'dense','units':3,'kernel_regularizer':{'l2':-1}}"),
     {{"/model/layers/0/kernel_regularizer/l2", "must be in [0, 3.40282"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'bias_regularizer':{'l1':1e39}}"), /* inf in float32 */
     {{"/model/layers/0/bias_regularizer/l1", "must be in [0, 3.40282"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'bias_regularizer':'l3'}"),
     {{"/model/layers/0/bias_regularizer", "unknown regularizer 'l3'"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'kernel_regularizer':{}}"),
     {{"/model/layers/0/kernel_regularizer", "'l1' and/or 'l2'"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'kernel_regularizer':{'l2':0.1,'l3':0.1}}"),
     {{"/model/layers/0/kernel_regularizer/l3", "unknown key 'l3'"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'kernel_regularizer':{'class_name':'L3'}}"),
     {{"/model/layers/0/kernel_regularizer/class_name", "unknown regularizer class 'L3'"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'kernel_regularizer':{'class_name':'L2',"
                 "'config':{'l1':0.1}}}"),
     {{"/model/layers/0/kernel_regularizer/config/l1", "unknown key 'l1'"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'activity_regularizer':0.01}"),
     {{"/model/layers/0/activity_regularizer", "a name, an object or null"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'kernel_regularizer':{'l1':'0.1'}}"),
     {{"/model/layers/0/kernel_regularizer/l1", "must be a number"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'kernel_initializer':'foo'}"),
     {{"/model/layers/0/kernel_initializer", "unknown initializer 'foo'"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'kernel_initializer':{'name':'random_normal',"
                 "'stddev':-1}}"),
     {{"/model/layers/0/kernel_initializer/stddev", "must be in [0, 3.40282"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'kernel_initializer':{'name':'random_uniform',"
                 "'maxval':1e300}}"),
     {{"/model/layers/0/kernel_initializer/maxval", "3.4028234663852886e+38]"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'kernel_initializer':{'class_name':'GlorotUniform',"
                 "'config':{'mean':0}}}"),
     {{"/model/layers/0/kernel_initializer/config/mean", "unknown key 'mean'"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'bias_initializer':{'name':'random_uniform',"
                 "'minval':1,'maxval':0}}"),
     {{"/model/layers/0/bias_initializer/maxval", ">= minval"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'bias_initializer':{'seed':1}}"),
     {{"/model/layers/0/bias_initializer/name", "required"}}},
    {WITH_LAYERS("{'type':'dense','units':3,'bias_initializer':{'class_name':'Orthogonal'}}"),
     {{"/model/layers/0/bias_initializer/class_name", "unknown initializer"}}},
    /* loss and output */
    {WITH_COMPILE("'loss':'hinge'"), {{"/compile/loss", "unknown loss 'hinge'"}}},
    {WITH_COMPILE("'metrics':['accuracy']"), {{"/compile/loss", "required"}}},
    {WITH_LAYERS("{'type':'dense','units':1,'activation':'sigmoid'}") /* + SCCE */,
     {{"/compile/loss", "2 or more units"}}},
    {"{" DATA "," MODEL("{'type':'dense','units':1}") ",'compile':{'loss':"
     "'categorical_crossentropy'}}",
     {{"/compile/loss", "2 or more units"}}},
    {WITH_COMPILE("'loss':{'name':'sparse_categorical_crossentropy','from_logits':true}"),
     {{"/compile/loss/from_logits", "applies softmax"}}},
    {"{" DATA "," MODEL("{'type':'dense','units':1,'activation':'sigmoid'}") ",'compile':{"
     "'loss':{'name':'binary_crossentropy','from_logits':true}}}",
     {{"/compile/loss/from_logits", "applies sigmoid"}}},
    {WITH_COMPILE("'loss':{'name':'sparse_categorical_crossentropy','label_smoothing':0.1}"),
     {{"/compile/loss/label_smoothing", "does not apply"}}},
    {WITH_COMPILE("'loss':{'name':'huber','delta':0}"), {{"/compile/loss/delta", "must be > 0"}}},
    {WITH_COMPILE("'loss':{'name':'mse','reduction':'sum'}"),
     {{"/compile/loss/reduction", "unknown key 'reduction'"}}},
    {WITH_COMPILE("'loss':{'from_logits':true}"), {{"/compile/loss/name", "required"}}},
    {WITH_COMPILE("'loss':7"), {{"/compile/loss", "must be a loss name or an object"}}},
    /* optimizer */
    {WITH_OPT("'nadam'"), {{"/compile/optimizer", "unknown optimizer 'nadam'"}}},
    {WITH_OPT("{'name':'lion'}"), {{"/compile/optimizer/name", "unknown optimizer 'lion'"}}},
    {WITH_OPT("{'learning_rate':0.1}"), {{"/compile/optimizer/name", "required"}}},
    {WITH_OPT("{'name':'adam','momentum':0.9}"),
     {{"/compile/optimizer/momentum", "not a setting of the adam optimizer"}}},
    {WITH_OPT("{'name':'sgd','lr':0.1}"), {{"/compile/optimizer/lr", "unknown key 'lr'"}}},
    {WITH_OPT("{'name':'adam','learning_rate':-1}"),
     {{"/compile/optimizer/learning_rate", "must be in [0"}}},
    {WITH_OPT("{'name':'sgd','learning_rate':{'schedule':'cosine_decay','decay_steps':10,"
              "'initial_learning_rate':-0.1}}"),
     {{"/compile/optimizer/learning_rate/initial_learning_rate", "must be in [0"}}},
    {WITH_OPT("{'name':'adam','beta_1':1.0}"), {{"/compile/optimizer/beta_1", "[0, 1)"}}},
    {WITH_OPT("{'name':'adam','learning_rate':{'schedule':'cosine_decay','initial_learning_rate':0,"
              "'decay_steps':10,'warmup_target':-1,'warmup_steps':-2}}"),
     {{"/compile/optimizer/learning_rate/warmup_target", "[0"},
      {"/compile/optimizer/learning_rate/warmup_steps", "at least 0"}}},
    {WITH_OPT("{'name':'adam','learning_rate':{'schedule':'exponential_decay',"
              "'initial_learning_rate':0.1,'decay_steps':10,'decay_rate':0.5,'warmup_steps':2}}"),
     {{"/compile/optimizer/learning_rate/warmup_steps", "unknown"}}},
    {WITH_OPT("{'name':'adam','epsilon':0}"), {{"/compile/optimizer/epsilon", "(0, 1]"}}},
    {WITH_OPT("{'name':'sgd','momentum':1.5}"), {{"/compile/optimizer/momentum", "[0, 1]"}}},
    {WITH_OPT("{'name':'rmsprop','rho':1}"), {{"/compile/optimizer/rho", "[0, 1)"}}},
    {WITH_OPT("{'name':'adamw','weight_decay':-0.1}"), {{"/compile/optimizer/weight_decay", ">= 0"}}},
    {WITH_OPT("{'name':'rmsprop','weight_decay':'big'}"),
     {{"/compile/optimizer/weight_decay", "must be a number"}}},
    {WITH_OPT("{'name':'adam','clipnorm':0}"), {{"/compile/optimizer/clipnorm", "must be > 0"}}},
    {WITH_OPT("{'name':'adam','clipvalue':-1}"), {{"/compile/optimizer/clipvalue", "must be > 0"}}},
    {WITH_OPT("{'name':'adam','clipnorm':1,'global_clipnorm':1}"),
     {{"/compile/optimizer/global_clipnorm", "only one of clipnorm, clipvalue and global_clipnorm"}}},
    {WITH_OPT("{'name':'sgd','clipnorm':1,'clipvalue':0.5}"),
     {{"/compile/optimizer/clipvalue", "only one of clipnorm, clipvalue and global_clipnorm"}}},
    {WITH_OPT("{'name':'sgd','clipvalue':0.5,'global_clipnorm':2,'clipnorm':1}"),
     {{"/compile/optimizer/clipvalue", "only one of"},
      {"/compile/optimizer/global_clipnorm", "only one of"}}},
    {WITH_OPT("{'name':'adam','amsgrad':'yes'}"), {{"/compile/optimizer/amsgrad", "true or false"}}},
    {WITH_OPT("{'name':'adam','learning_rate':{'schedule':'polynomial_decay'}}"),
     {{"/compile/optimizer/learning_rate/schedule", "unknown schedule 'polynomial_decay'"}}},
    {WITH_OPT("{'name':'adam','learning_rate':{'schedule':'exponential_decay',"
              "'initial_learning_rate':0.1,'decay_rate':0.9}}"),
     {{"/compile/optimizer/learning_rate/decay_steps", "required"}}},
    {WITH_OPT("{'name':'adam','learning_rate':{'schedule':'cosine_decay',"
              "'initial_learning_rate':0.1,'decay_steps':10,'alpha':2,'decay_rate':0.5}}"),
     {{"/compile/optimizer/learning_rate/decay_rate", "unknown key"},
      {"/compile/optimizer/learning_rate/alpha", "[0, 1]"}}},
    {WITH_OPT("{'name':'adam','learning_rate':{'schedule':'exponential_decay',"
              "'initial_learning_rate':0.1,'decay_steps':2.5,'decay_rate':0.9}}"),
     {{"/compile/optimizer/learning_rate/decay_steps", "must be an integer, not 2.5"}}},
    {WITH_OPT("{'name':'adam','learning_rate':'fast'}"),
     {{"/compile/optimizer/learning_rate", "must be a number, not a string"}}},
    {WITH_OPT("true"), {{"/compile/optimizer", "optimizer name or an object"}}},
    /* metrics */
    {WITH_COMPILE(SCCE ",'metrics':['f1']"), {{"/compile/metrics/0", "unknown metric 'f1'"}}},
    {WITH_COMPILE(SCCE ",'metrics':['mae','mae']"), {{"/compile/metrics/1", "duplicate metric 'mae'"}}},
    {WITH_COMPILE(SCCE ",'metrics':'accuracy'"), {{"/compile/metrics", "must be an array"}}},
    {WITH_COMPILE(SCCE ",'metrics':[1]"), {{"/compile/metrics/0", "must be a name"}}},
    {WITH_COMPILE(SCCE ",'metrics':['mae','mse','acc','accuracy','binary_accuracy',"
                  "'categorical_accuracy','sparse_categorical_accuracy','mean_absolute_error',"
                  "'mean_squared_error']"),
     {{"/compile/metrics", "at most 8"}}},
    /* fit */
    {WITH_FIT("'epochs':0"), {{"/fit/epochs", "at least 1"}}},
    {WITH_FIT("'epochs':100000"), {{"/fit/epochs", "at most 10000"}}},
    {WITH_FIT("'batch_size':1e300"), {{"/fit/batch_size", "at most 65536"}}},
    {WITH_FIT("'batch_size':32.5"), {{"/fit/batch_size", "must be an integer, not 32.5"}}},
    {WITH_FIT("'batch_size':0"), {{"/fit/batch_size", "at least 1"}}},
    {WITH_FIT("'validation_split':1"), {{"/fit/validation_split", "[0, 1)"}}},
    {WITH_FIT("'shuffle':1"), {{"/fit/shuffle", "true or false"}}},
    {WITH_FIT("'seed':-1"), {{"/fit/seed", "at least 0"}}},
    {WITH_FIT("'early_stopping':true"), {{"/fit/early_stopping", "must be an object"}}},
    {WITH_FIT("'early_stopping':{'monitor':'loss','mode':'up'}"),
     {{"/fit/early_stopping/mode", "auto, min or max"}}},
    {WITH_FIT("'early_stopping':{'monitor':'loss','patience':-1}"),
     {{"/fit/early_stopping/patience", "at least 0"}}},
    {WITH_FIT("'validation_split':0.1,'early_stopping':{'monitor':'val_auc'}"),
     {{"/fit/early_stopping/monitor", "monitor 'val_auc' is neither"}}},
    {WITH_FIT("'early_stopping':{}"),
     {{"/fit/early_stopping/monitor", "needs validation data"}}},
    /* data and name */
    {"{" MODEL(D3) "," COMP "}", {{"/data", "required"}}},
    {"{'data':{}," MODEL(D3) "," COMP "}", {{"/data/train", "required"}}},
    {"{'data':{'train':'ds a'}," MODEL(D3) "," COMP "}", {{"/data/train", "a dataset id must be"}}},
    {"{'data':{'train':5}," MODEL(D3) "," COMP "}", {{"/data/train", "must be a string, not a number"}}},
    {"{'name':'a\\nb'," DATA "," MODEL(D3) "," COMP "}", {{"/name", "control characters"}}},
    {"{'name':'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'," DATA ","
     MODEL(D3) "," COMP "}",
     {{"/name", "longer than 127 bytes"}}},
    {"{'name':['x']," DATA "," MODEL(D3) "," COMP "}", {{"/name", "must be a string"}}},
    /* malformed JSON */
    {"{", {{"", "invalid JSON at line"}}},
    {"", {{"", "invalid JSON"}}},
    {"{" DATA "," MODEL(D3) "," COMP "} x", {{"", "invalid JSON"}}},
    {"{" DATA "," DATA "," MODEL(D3) "," COMP "}", {{"", "duplicate object key"}}},
    {WITH_FIT("'seed':99999999999999999999"), {{"/fit/seed", "too big integer"}}},
    {WITH_FIT("'validation_split':1e400"), {{"/fit/validation_split", "real number overflow"}}},
    {"{'name':'caf\xff'," DATA "," MODEL(D3) "," COMP "}", {{"", "invalid JSON"}}},
    {"{'name':'a\\u0000b'," DATA "," MODEL(D3) "," COMP "}", {{"", "invalid JSON"}}},
    {WITH_FIT("'epochs':NaN"), {{"", "invalid JSON"}}},
    /* several problems at once, every one reported in document order */
    {"{'nme':'x','data':{'train':'ds a'},'model':{'input_shape':[4],'layers':["
     "{'type':'dense','units':3.5},{'type':'dropout','rate':2}]},'compile':{'loss':'hinge'},"
     "'fit':{'epochs':0}}",
     {{"/nme", "unknown key"},
      {"/data/train", "dataset id"},
      {"/model/layers/0/units", "integer"},
      {"/model/layers/1/rate", "[0, 1)"},
      {"/compile/loss", "unknown loss 'hinge'"},
      {"/fit/epochs", "at least 1"}}},
    {WITH_COMPILE("'optimizer':{'name':'sgd','beta_1':0.9,'learning_rate':-3},"
                  "'loss':'binary_crossentropy','metrics':['bogus']"),
     {{"/compile/optimizer/beta_1", "not a setting of the sgd"},
      {"/compile/optimizer/learning_rate", "[0"},
      {"/compile/metrics/0", "unknown metric"}}},
};

static void test_invalid_table(void **state)
{
    (void)state;
    size_t n_rows = sizeof bad_rows / sizeof bad_rows[0];
    assert_true(n_rows >= 40);
    for (size_t r = 0; r < n_rows; r++) {
        const bad_row *row = &bad_rows[r];
        spec_job job;
        spec_problems pr;
        memset(&pr, 0x5a, sizeof pr);
        int rc = parse_q(row->text, 0, &job, &pr);
        int n_exp = 0;
        while (n_exp < 6 && row->e[n_exp].pointer) n_exp++;
        int ok = rc == SPEC_INVALID && pr.n == n_exp && !pr.truncated;
        for (int i = 0; ok && i < n_exp; i++)
            ok = strcmp(pr.items[i].pointer, row->e[i].pointer) == 0 &&
                 strstr(pr.items[i].message, row->e[i].message) != NULL;
        if (!ok) {
            print_message("row %zu: rc %d, %d problems; expected %d:\n  %s\n", r, rc,
                          rc == SPEC_OK ? 0 : pr.n, n_exp, row->text);
            for (int i = 0; i < n_exp; i++)
                print_message("  want '%s': ...%s...\n", row->e[i].pointer, row->e[i].message);
            if (rc != SPEC_OK) print_problems(&pr);
            spec_job_free(&job);
            fail_msg("invalid-spec row %zu", r);
        }
        /* a failed parse leaves nothing to free */
        assert_null(job.model.layers);
        assert_int_equal(job.model.n_layers, 0);
    }
}

static void test_deep_nesting(void **state)
{
    (void)state;
    const size_t depth = 10000;
    const char *pre = "{\"name\":";
    size_t n = strlen(pre) + 2 * depth + 2;
    char *t = malloc(n + 1);
    assert_non_null(t);
    size_t k = 0;
    memcpy(t, pre, strlen(pre));
    k = strlen(pre);
    for (size_t i = 0; i < depth; i++) t[k++] = '[';
    for (size_t i = 0; i < depth; i++) t[k++] = ']';
    t[k++] = '}';
    t[k] = 0;
    spec_job job;
    spec_problems pr;
    assert_int_equal(spec_job_parse_text(t, k, NULL, 0, &job, &pr), SPEC_INVALID);
    assert_int_equal(pr.n, 1);
    assert_string_equal(pr.items[0].pointer, "");
    assert_non_null(strstr(pr.items[0].message, "depth"));

    /* nesting Jansson accepts (below its limit) in an unknown key or a wrongly typed
     * field is reported without descending into it */
    size_t d2 = 1000;
    k = 0;
    k += (size_t)sprintf(t + k, "{\"data\":{\"train\":\"a\"},\"model\":{\"input_shape\":");
    for (size_t i = 0; i < d2; i++) t[k++] = '[';
    for (size_t i = 0; i < d2; i++) t[k++] = ']';
    k += (size_t)sprintf(t + k, ",\"layers\":[{\"type\":\"dense\",\"units\":1}]},"
                                "\"compile\":{\"loss\":\"mse\"}}");
    assert_int_equal(spec_job_parse_text(t, k, NULL, 0, &job, &pr), SPEC_INVALID);
    assert_int_equal(pr.n, 1);
    assert_string_equal(pr.items[0].pointer, "/model/input_shape/0");
    assert_non_null(strstr(pr.items[0].message, "not an array"));
    free(t);
}

static void test_many_problems(void **state)
{
    (void)state;
    /* 100 unknown keys: the first SPEC_MAX_PROBLEMS are kept, the rest flagged */
    char *t = malloc(8192);
    assert_non_null(t);
    size_t k = (size_t)sprintf(t, "{");
    for (int i = 0; i < 100; i++) k += (size_t)sprintf(t + k, "\"k%d\":%d,", i, i);
    k += (size_t)sprintf(t + k, "\"data\":{\"train\":\"a\"},\"model\":{\"input_shape\":[1],"
                                "\"layers\":[{\"type\":\"dense\",\"units\":1}]},"
                                "\"compile\":{\"loss\":\"mse\"}}");
    spec_job job;
    spec_problems pr;
    assert_int_equal(spec_job_parse_text(t, k, NULL, 0, &job, &pr), SPEC_INVALID);
    assert_int_equal(pr.n, SPEC_MAX_PROBLEMS);
    assert_int_equal(pr.truncated, 1);
    assert_string_equal(pr.items[0].pointer, "/k0");
    assert_string_equal(pr.items[63].pointer, "/k63");

    /* a key too long for the pointer record is named (shortened) at its parent */
    k = (size_t)sprintf(t, "{\"fit\":{\"");
    for (int i = 0; i < 300; i++) t[k++] = 'z';
    k += (size_t)sprintf(t + k, "\":1},\"data\":{\"train\":\"a\"},\"model\":{\"input_shape\":[1],"
                                "\"layers\":[{\"type\":\"dense\",\"units\":1}]},"
                                "\"compile\":{\"loss\":\"mse\"}}");
    assert_int_equal(spec_job_parse_text(t, k, NULL, 0, &job, &pr), SPEC_INVALID);
    assert_int_equal(pr.n, 1);
    assert_string_equal(pr.items[0].pointer, "/fit");
    assert_non_null(strstr(pr.items[0].message, "unknown key 'zzzz"));
    assert_non_null(strstr(pr.items[0].message, "..."));
    assert_true(strlen(pr.items[0].message) < 80);
    free(t);
}

static void test_parse_json_values(void **state)
{
    (void)state;
    spec_job job;
    spec_problems pr;
    assert_int_equal(spec_job_parse(NULL, NULL, 0, &job, &pr), SPEC_INVALID);
    assert_string_equal(pr.items[0].pointer, "");
    json_t *s = json_string("x");
    assert_int_equal(spec_job_parse(s, NULL, 0, &job, &pr), SPEC_INVALID);
    assert_non_null(strstr(pr.items[0].message, "not a string"));
    json_decref(s);

    /* a document built in memory (reals are accepted where integers are due only
     * when integral) */
    json_t *root = json_pack("{s:{s:s}, s:{s:[f], s:[{s:s, s:i}]}, s:{s:s}, s:{s:f}}", "data",
                             "train", "d", "model", "input_shape", 3.0, "layers", "type",
                             "dense", "units", 2, "compile", "loss", "mae", "fit",
                             "validation_split", 0.25);
    assert_non_null(root);
    assert_int_equal(spec_job_parse(root, NULL, 0, &job, &pr), SPEC_OK);
    assert_int_equal(job.model.input_dim, 3);
    assert_true(job.fit.validation_split == 0.25);
    spec_job_free(&job);
    json_decref(root);
}

/* spec_pointer_before: the pointer of the last value that starts before a
 * position, as Jansson reports an out-of-range number; where the whole pointer
 * cannot be given, the deepest parent that can (never another value). */
static void test_pointer_before(void **state)
{
    (void)state;
    char deep[300], deep64[300], longkey[400], small[16];
    size_t n = (size_t)snprintf(deep, sizeof deep, "{\"name\": 1, \"b\": ");
    for (int i = 0; i < 70; i++) deep[n++] = '[';
    snprintf(deep + n, sizeof deep - n, "1e999");
    n = (size_t)snprintf(deep64, sizeof deep64, "/b");
    for (int i = 0; i < 63; i++) n += (size_t)snprintf(deep64 + n, sizeof deep64 - n, "/0");
    n = (size_t)snprintf(longkey, sizeof longkey, "{\"a\": {\"");
    memset(longkey + n, 'k', 300);
    snprintf(longkey + n + 300, sizeof longkey - n - 300, "\": [true, 1e400");
    const struct {
        const char *text, *want;
    } cases[] = {
        {"{\"fit\": {\"epochs\": 1e400", "/fit/epochs"},
        {"{\"a\": [1, {\"b\": true}, [2, -1e999", "/a/2/1"},
        {"{\"x\": {}, \"y\": [[], \"s,]}\", 7", "/y/2"},
        {"{\"a\\\"b\": {\"c~/d\": 9e999", "/a\"b/c~0~1d"},
        {"{\"caf\\u00e9\\n\": 1e999", "/caf\xc3\xa9\n"}, /* Jansson decodes the key */
        {"1e999", ""},
        {deep, deep64},   /* 64 levels held: the value's parent there, not /name */
        {longkey, "/a"},  /* a 300-byte key: its parent */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[256];
        spec_pointer_before(cases[i].text, strlen(cases[i].text), out, sizeof out);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("case %zu: got '%s', want '%s'", i, out, cases[i].want);
    }
    const char *nested = "{\"abc\": {\"defghijklmnop\": 1e999";
    spec_pointer_before(nested, strlen(nested), small, sizeof small);
    assert_string_equal(small, "/abc"); /* the whole pointer does not fit in 16 bytes */
    char with_nul[] = "{\"a\": 1\0, \"b\": 2";
    char out[64];
    spec_pointer_before(with_nul, sizeof with_nul - 1, out, sizeof out); /* ends, at the NUL */
    assert_string_equal(out, "/a");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_metric_resolve),
        cmocka_unit_test(test_keras_accepts),
        cmocka_unit_test(test_design_example),
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_regularizer_forms),
        cmocka_unit_test(test_initializer_forms),
        cmocka_unit_test(test_default_naming),
        cmocka_unit_test(test_compile_forms),
        cmocka_unit_test(test_data_optional),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_parse_stored),
        cmocka_unit_test(test_to_json_defaults),
        cmocka_unit_test(test_invalid_table),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_many_problems),
        cmocka_unit_test(test_parse_json_values),
        cmocka_unit_test(test_pointer_before),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
