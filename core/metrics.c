/*
 * metrics.c — Keras' per-sample metrics, summed over a batch so the trainer can
 * average over an epoch with any batch split (sum, then divide by the count).
 *
 * Sources: keras/src/metrics/accuracy_metrics.py and regression_metrics.py.
 *   binary_accuracy: mean over the last axis of [y == (pred > 0.5)]. Keras applies
 *     the 0.5 threshold to the raw prediction even when the loss was built with
 *     from_logits=True (BinaryAccuracy has no from_logits argument), so fitd does
 *     too and `from_logits` is ignored here; with logits that threshold is the
 *     logit 0.5, not probability 0.5 — a Keras quirk we keep for fidelity.
 *   categorical_accuracy: [argmax pred == argmax y] (first index on ties).
 *   sparse_categorical_accuracy: [argmax pred == y] with y the label as a float.
 *   mae, mse: mean over the last axis.
 * Targets are one column (labels) or as wide as the output; a column is
 * broadcast against every output, as Keras does (mse with integer labels is the
 * mean of (p_j - label)^2 over j: odd, but what Keras reports).
 * Sums are in double: an epoch can hold millions of samples.
 */
#include <math.h>

#include "nn_int.h"

static int argmax_row(const float *v, int C)
{
    int best = 0;
    for (int j = 1; j < C; j++)
        if (v[j] > v[best]) best = j;
    return best;
}

double nn_metric_sum(nn_metric_kind m, const float *pred, const float *y, int B, int C, int yw,
                     int from_logits)
{
    (void)from_logits; /* see the binary_accuracy note above */
    if (B <= 0 || C <= 0) return 0.0;
    /* Sparse accuracy takes labels only (nn_check_data refuses wider targets). */
    if ((yw != 1 && yw != C) || (m == NN_METRIC_SPARSE_CATEGORICAL_ACCURACY && yw != 1)) return NAN;
    /* One target column (class labels) against C outputs is broadcast along the
     * row, as Keras' metrics broadcast (batch, 1) against (batch, C). */
    int step = yw == 1 ? 0 : 1;
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *p = pred + (size_t)b * (size_t)C;
        const float *t = y + (size_t)b * (size_t)yw;
        double row = 0.0;
        switch (m) {
        case NN_METRIC_BINARY_ACCURACY:
            for (int j = 0; j < C; j++) row += (double)t[j * step] == (p[j] > 0.5f ? 1.0 : 0.0);
            row /= C;
            break;
        case NN_METRIC_CATEGORICAL_ACCURACY: row = argmax_row(p, C) == argmax_row(t, yw); break;
        case NN_METRIC_SPARSE_CATEGORICAL_ACCURACY:
            row = (double)argmax_row(p, C) == (double)t[0];
            break;
        case NN_METRIC_MAE:
            for (int j = 0; j < C; j++) row += fabs((double)p[j] - (double)t[j * step]);
            row /= C;
            break;
        case NN_METRIC_MSE:
            for (int j = 0; j < C; j++) {
                double d = (double)p[j] - (double)t[j * step];
                row += d * d;
            }
            row /= C;
            break;
        case NN_METRIC_ACCURACY: /* must be resolved by the caller */
        case NN_METRIC_COUNT: return NAN;
        }
        total += row;
    }
    return total;
}
