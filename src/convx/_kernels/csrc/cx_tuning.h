/* Every tuning constant of the kernels in one place: when a call goes
 * parallel, and the GEMM's cache blocks.
 *
 * Rule for the "go parallel" thresholds: below the threshold, a call stays on
 * the calling thread, because waking the OpenMP team and the barrier at the
 * end cost more than the second core saves. The workers spin briefly before
 * they sleep (_kernels/__init__.py), so inside a training step they are
 * usually awake; the thresholds are set for that case. None of them changes a
 * result: every kernel gives the same bits for any team size. They are
 * measured, side by side with one and two threads, by
 * `python benchmarks/run.py --cases train,infer,conv,gemm,threads` (the MNIST
 * example model and the kernels' own cases); a change here must keep those
 * unchanged or better.
 */
#ifndef CONVX_CX_TUNING_H
#define CONVX_CX_TUNING_H

/* ----- work (multiply-adds, or elements) below which a call is serial ----- */

/* cx_gemm: m * n * k. A product of the MNIST example model's dense layers (128^3 at batch 128)
 * stays serial: a barrier per K block costs more than half the product. */
#define CX_GEMM_PARALLEL_MIN 8388608.0
/* Convolution passes: multiply-adds of the call. */
#define CX_CONV_PARALLEL_MIN 1048576
/* Convolution backward: dz values scanned for all-zero rows. */
#define CX_SCAN_PARALLEL_MIN 65536
/* Depthwise and transposed convolution: multiply-adds of the call. */
#define CX_DW_PARALLEL_MIN 262144
/* Pooling: input elements. Pooling is bound by memory traffic, which two cores move faster than one. */
#define CX_POOL_PARALLEL_MIN 65536
/* Bias + activation epilogue, activation backward, losses: elements. */
#define CX_EPILOGUE_PARALLEL_MIN 131072
#define CX_ACT_PARALLEL_MIN 131072
#define CX_LOSS_PARALLEL_MIN 131072
/* Merges: elements per input; concatenations: elements in all. */
#define CX_MERGE_PARALLEL_MIN 65536
#define CX_CONCAT_PARALLEL_MIN CX_MERGE_PARALLEL_MIN
/* Normalizations: elements in all. */
#define CX_NORM_PARALLEL_MIN 32768
/* Resampling: output elements (a 32x32x3 image is 3072). */
#define CX_RESAMPLE_PARALLEL_MIN 32768

/* ----- GEMM cache blocks (gemm_impl.h), GotoBLAS/BLIS-style ----- */

/* K block: rows of packed B (and columns of packed A) per pass; an A micro-panel of KC values and a
 * B micro-panel stay in L1 across the micro-kernel's loop. Part of the summation order: changing it
 * changes results in the last bits. */
#define CX_GEMM_KC 256
/* M and N blocks in bytes, the same for every dtype: the packed A block (MC rows x KC) fits in L2,
 * the packed B block (KC x NC) in L3. Rounded down to whole micro-panels per dtype and micro-kernel.
 * One value for every instruction set today (generic, AVX2, NEON); a new one with other caches gets
 * its own pair here. They change the speed only, never the bits. */
#define CX_GEMM_MC_BYTES 576
/* Calls with at most this many micro-tiles of rows (a batch of one or a few) read B in place instead of
 * packing it: packing costs a copy of B, the product only a few multiply-adds per value of B. The
 * same bits either way (gemm_ukernels.h). */
#define CX_GEMM_UNPACKED_MAX_TILES 4
#define CX_GEMM_NC_BYTES 16384

#endif
