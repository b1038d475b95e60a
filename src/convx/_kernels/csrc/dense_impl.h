/* Dense kernels, instantiated per dtype by dense.c (see dense.h). */

cx_status FN(cx_dense_forward)(cx_int n, cx_int in, cx_int out, const real *x, const real *kernel,
                               const real *bias, int act, real *y, int n_threads)
{
    const cx_status status = FN(cx_gemm)(0, 0, n, out, in, x, in, kernel, out, 0, y, out, n_threads);
    if (status == CX_OK)
        FN(cx_bias_act)(y, n, out, bias, act, n_threads);
    return status;
}

cx_status FN(cx_dense_backward)(cx_int n, cx_int in, cx_int out, const real *x, const real *kernel,
                                const real *dz, real *dx, real *dkernel, real *dbias, int n_threads)
{
    if (FN(cx_gemm)(1, 0, in, out, n, x, in, dz, out, 0, dkernel, out, n_threads) != CX_OK)
        return CX_ERR_NOMEM;
    if (dbias) {
        /* Rows in order for every column: a fixed summation order. */
        for (cx_int j = 0; j < out; j++)
            dbias[j] = 0;
        for (cx_int i = 0; i < n; i++)
            for (cx_int j = 0; j < out; j++)
                dbias[j] += dz[i * out + j];
    }
    return dx ? FN(cx_gemm)(0, 1, n, in, out, dz, out, kernel, out, 0, dx, in, n_threads) : CX_OK;
}
