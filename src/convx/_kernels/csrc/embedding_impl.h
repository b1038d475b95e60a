/* Embedding kernels over `real` (included by embedding.c once per dtype). */

void FN(cx_embedding_forward)(const real *table, cx_int dim, const int64_t *idx, cx_int n, real *out, int n_threads)
{
    cx_int i;
#pragma omp parallel for num_threads(n_threads) schedule(static) \
    if (n_threads > 1 && n * dim >= CX_EMBEDDING_PARALLEL_MIN)
    for (i = 0; i < n; ++i)
        memcpy(out + i * dim, table + idx[i] * dim, (size_t)dim * sizeof(real));
}

int FN(cx_embedding_backward)(const real *dy, const int64_t *idx, cx_int n, cx_int dim, cx_int vocab, int dense,
                              real *out, int64_t *rows, cx_int *n_rows, int n_threads)
{
    int64_t *order, *starts;
    cx_int r, count;
    if (group_rows(idx, n, vocab, &order, &starts, rows, n_rows))
        return -1;
    count = *n_rows;
    if (dense) {
        cx_int v;
#pragma omp parallel for num_threads(n_threads) schedule(static) \
    if (n_threads > 1 && vocab * dim >= CX_EMBEDDING_PARALLEL_MIN)
        for (v = 0; v < vocab; ++v)
            memset(out + v * dim, 0, (size_t)dim * sizeof(real));
    }
    /* one thread sums a row, its positions in order: the same bits on any team */
#pragma omp parallel for num_threads(n_threads) schedule(static) \
    if (n_threads > 1 && n * dim >= CX_EMBEDDING_PARALLEL_MIN)
    for (r = 0; r < count; ++r) {
        real *CX_RESTRICT g = out + (dense ? rows[r] : r) * dim;
        const real *first = dy + order[starts[r]] * dim;
        memcpy(g, first, (size_t)dim * sizeof(real));
        for (int64_t p = starts[r] + 1; p < starts[r + 1]; ++p) {
            const real *CX_RESTRICT d = dy + order[p] * dim;
            for (cx_int j = 0; j < dim; ++j)
                g[j] += d[j];
        }
    }
    free(order);
    free(starts);
    return 0;
}
