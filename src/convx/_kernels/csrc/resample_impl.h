/* Resize and projective sampling, forward and backward, written once for `real` (see resample.c). */

int FN(cx_resize_forward)(const real *x, real *y, cx_int n, cx_int h, cx_int w, cx_int c, cx_int oh, cx_int ow,
                          int interpolation, int n_threads)
{
    const cx_int rows = n * oh;
    const int bilinear = interpolation == CX_INTERP_BILINEAR;
    const cx_axis_tap *ty, *tx;
    cx_axis_tap *taps = resize_taps(h, w, oh, ow, interpolation, &ty, &tx);
    cx_int r;
    if (taps == NULL)
        return CX_ERR_NOMEM;
#pragma omp parallel for num_threads(n_threads) schedule(static) \
    if (rows > 1 && rows * ow * c >= CX_RESAMPLE_PARALLEL_MIN && n_threads > 1)
    for (r = 0; r < rows; ++r) {
        const cx_int b = r / oh, i = r % oh;
        const real *top = x + ((b * h + ty[i].lo) * w) * c;
        const real *bottom = x + ((b * h + ty[i].hi) * w) * c;
        const real ylerp = (real)ty[i].lerp;
        real *out = y + (b * oh + i) * ow * c;
        cx_int j, ch;
        for (j = 0; j < ow; ++j) {
            const real *tl = top + tx[j].lo * c, *tr = top + tx[j].hi * c;
            real *o = out + j * c;
            if (!bilinear) {
                memcpy(o, tl, (size_t)c * sizeof(real));
                continue;
            }
            {
                const real *bl = bottom + tx[j].lo * c, *br = bottom + tx[j].hi * c;
                const real xlerp = (real)tx[j].lerp;
                for (ch = 0; ch < c; ++ch) {
                    const real t = tl[ch] + (tr[ch] - tl[ch]) * xlerp;
                    const real bo = bl[ch] + (br[ch] - bl[ch]) * xlerp;
                    o[ch] = t + (bo - t) * ylerp;
                }
            }
        }
    }
    free(taps);
    return 0;
}

/* Weight with which output tap t reads input index r (the forward pass's interpolation weights). */
static inline real FN(tap_weight)(const cx_axis_tap *t, cx_int r, int bilinear)
{
    real weight = 0;
    if (!bilinear)
        return t->lo == r ? (real)1 : (real)0;
    if (t->lo == r)
        weight += (real)1 - (real)t->lerp;
    if (t->hi == r)
        weight += (real)t->lerp;
    return weight;
}

/* dst (len, c) = transposed 1-D resampling of src (out, c) along the axis of `taps` / `spans`:
 * each input index gathers the outputs that read it, in output order. */
static void FN(gather_axis)(const real *src, real *dst, cx_int len, cx_int c, const cx_axis_tap *taps,
                            const cx_span *spans, int bilinear)
{
    cx_int r, i, ch;
    for (r = 0; r < len; ++r) {
        real *d = dst + r * c;
        for (ch = 0; ch < c; ++ch)
            d[ch] = 0;
        for (i = spans[r].first; i <= spans[r].last; ++i) {
            const real weight = FN(tap_weight)(taps + i, r, bilinear);
            const real *g = src + i * c;
            if (weight == 0)
                continue;
            for (ch = 0; ch < c; ++ch)
                d[ch] += weight * g[ch];
        }
    }
}

/* The transpose of the separable resize, one axis at a time, as gathers (no scatter, so rows
 * split freely among threads): columns into scratch t (n, oh, w, c), then rows into dx. */
int FN(cx_resize_backward)(const real *dy, real *dx, cx_int n, cx_int h, cx_int w, cx_int c, cx_int oh,
                           cx_int ow, int interpolation, int n_threads)
{
    const int bilinear = interpolation == CX_INTERP_BILINEAR;
    const int parallel = n * oh * ow * c >= CX_RESAMPLE_PARALLEL_MIN && n_threads > 1;
    const cx_int out_rows = n * oh, in_rows = n * h, row = w * c;
    const cx_axis_tap *ty, *tx;
    cx_axis_tap *taps = resize_taps(h, w, oh, ow, interpolation, &ty, &tx);
    cx_span *spans = taps == NULL ? NULL : resize_spans(ty, tx, h, w, oh, ow);
    real *t = spans == NULL ? NULL : cx_scratch(0, (size_t)(out_rows * row) * sizeof(real));
    cx_int q;
    if (t == NULL) {
        free(taps);
        free(spans);
        return CX_ERR_NOMEM;
    }
#pragma omp parallel num_threads(n_threads) if (parallel)
    {
#pragma omp for schedule(static)
        for (q = 0; q < out_rows; ++q)
            FN(gather_axis)(dy + q * ow * c, t + q * row, w, c, tx, spans + h, bilinear);
#pragma omp for schedule(static)
        for (q = 0; q < in_rows; ++q) {
            const cx_int b = q / h, r = q % h;
            /* the rows of one image as a (oh, w * c) array: gather along its first axis for row r */
            const cx_span one = spans[r];
            real *d = dx + q * row;
            cx_int i, k;
            for (k = 0; k < row; ++k)
                d[k] = 0;
            for (i = one.first; i <= one.last; ++i) {
                const real weight = FN(tap_weight)(ty + i, r, bilinear);
                const real *g = t + (b * oh + i) * row;
                if (weight == 0)
                    continue;
                for (k = 0; k < row; ++k)
                    d[k] += weight * g[k];
            }
        }
    }
    free(taps);
    free(spans);
    cx_scratch_trim();
    return 0;
}

int FN(cx_transform_forward)(const real *x, real *y, const float *transforms, cx_int n, cx_int h, cx_int w,
                             cx_int c, cx_int oh, cx_int ow, int interpolation, int fill_mode, real fill_value,
                             int n_threads)
{
    const cx_int rows = n * oh;
    cx_int r;
#pragma omp parallel for num_threads(n_threads) schedule(static) \
    if (rows > 1 && rows * ow * c >= CX_RESAMPLE_PARALLEL_MIN && n_threads > 1)
    for (r = 0; r < rows; ++r) {
        const cx_int b = r / oh, i = r % oh;
        const float *t = transforms + 8 * b;
        const real *img = x + b * h * w * c;
        real *out = y + (b * oh + i) * ow * c;
        cx_int j, ch;
        for (j = 0; j < ow; ++j) {
            real *o = out + j * c;
            cx_sample s;
            sample_point(t, j, i, h, w, interpolation, fill_mode, &s);
            if (s.kind == 0 || (s.kind == 1 && s.off[0] < 0)) {
                for (ch = 0; ch < c; ++ch)
                    o[ch] = fill_value;
            } else if (s.kind == 1) {
                memcpy(o, img + s.off[0] * c, (size_t)c * sizeof(real));
            } else {
                const real wx0 = (real)s.wx0, wx1 = (real)s.wx1, wy0 = (real)s.wy0, wy1 = (real)s.wy1;
                const real *p[4];
                int k;
                for (k = 0; k < 4; ++k)
                    p[k] = s.off[k] < 0 ? NULL : img + s.off[k] * c;
                for (ch = 0; ch < c; ++ch) {
                    const real v00 = p[0] ? p[0][ch] : fill_value, v01 = p[1] ? p[1][ch] : fill_value;
                    const real v10 = p[2] ? p[2][ch] : fill_value, v11 = p[3] ? p[3][ch] : fill_value;
                    const real top = wx0 * v00 + wx1 * v01;
                    const real bottom = wx0 * v10 + wx1 * v11;
                    o[ch] = wy0 * top + wy1 * bottom;
                }
            }
        }
    }
    return 0;
}

int FN(cx_transform_backward)(const real *dy, real *dx, const float *transforms, cx_int n, cx_int h, cx_int w,
                              cx_int c, cx_int oh, cx_int ow, int interpolation, int fill_mode, int n_threads)
{
    const cx_int blocks = (c + CX_RESAMPLE_CBLOCK - 1) / CX_RESAMPLE_CBLOCK, tasks = n * blocks;
    cx_int task;
#pragma omp parallel for num_threads(n_threads) schedule(static) \
    if (tasks > 1 && n * oh * ow * c >= CX_RESAMPLE_PARALLEL_MIN && n_threads > 1)
    for (task = 0; task < tasks; ++task) {
        const cx_int b = task / blocks, c0 = (task % blocks) * CX_RESAMPLE_CBLOCK;
        const cx_int c1 = CX_MIN(c, c0 + CX_RESAMPLE_CBLOCK);
        const float *t = transforms + 8 * b;
        real *img = dx + b * h * w * c;
        cx_int p, i, j, ch;
        for (p = 0; p < h * w; ++p)
            for (ch = c0; ch < c1; ++ch)
                img[p * c + ch] = 0;
        for (i = 0; i < oh; ++i) {
            const real *g = dy + (b * oh + i) * ow * c;
            for (j = 0; j < ow; ++j) {
                const real *gj = g + j * c;
                cx_sample s;
                sample_point(t, j, i, h, w, interpolation, fill_mode, &s);
                if (s.kind == 1 && s.off[0] >= 0) {
                    real *d = img + s.off[0] * c;
                    for (ch = c0; ch < c1; ++ch)
                        d[ch] += gj[ch];
                } else if (s.kind == 2) {
                    const real wx[2] = {(real)s.wx0, (real)s.wx1}, wy[2] = {(real)s.wy0, (real)s.wy1};
                    int k;
                    for (k = 0; k < 4; ++k) {
                        real *d;
                        real wk;
                        if (s.off[k] < 0)
                            continue;
                        d = img + s.off[k] * c;
                        wk = wy[k >> 1];
                        for (ch = c0; ch < c1; ++ch)
                            d[ch] += (gj[ch] * wk) * wx[k & 1];
                    }
                }
            }
        }
    }
    return 0;
}
