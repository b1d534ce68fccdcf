/*
 * blas.c — the process-wide BLAS settings. OpenBLAS keeps its thread count in a
 * global, so the program's main sets it once (workers x BLAS threads <= cores)
 * rather than each model changing it under the others' feet.
 */
#include <cblas.h>

#include "nn.h"

void nn_blas_set_threads(int n)
{
    openblas_set_num_threads(n < 1 ? 1 : n);
}

int nn_blas_threads(void)
{
    return openblas_get_num_threads();
}

const char *nn_blas_core(void)
{
    const char *name = openblas_get_corename();
    return name ? name : "";
}
