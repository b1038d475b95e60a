#include "conv.h"

#include <string.h>

#include "conv_small.h"
#include "convx_omp.h"
#include "epilogue.h"
#include "gemm.h"
#include "pool.h"

/* Upper bound on the row groups of the weight gradient: enough to feed the
 * threads, few enough that the partial sums stay small. Fixed, so the sum
 * order never depends on the thread count. */
#define CX_WGRAD_GROUPS 16
#define CX_WGRAD_MIN_ROWS 64
/* Elements per task when the groups' partial sums are added up. */
#define CX_WGRAD_SUM_BLOCK 4096

/* cx_scratch slots: per-thread tile buffers, and the master's shared ones. */
enum { CX_SLOT_TILE, CX_SLOT_APACK, CX_SLOT_BPACK, CX_SLOT_KERNEL, CX_SLOT_PARTIAL, CX_SLOT_ZEROS,
       CX_SLOT_KT, CX_SLOT_PTRS, CX_SLOT_ROWS, CX_SLOT_DZ, CX_SLOT_OUT, CX_SLOT_DZ_FULL };

/* Depth (patch values) of the forward's K blocks: whole taps, B panels in L1. */
#define CX_KC_CONV 256

/* Winograd F(2x2, 3x3) (conv_winograd.h): tiles per block, the fewest input
 * and output channels for which its 16 products beat the direct one, and the
 * fewest tiles per call (the kernel's transform costs about 16 x C_in x C_out
 * x a few operations; batch-1 calls and the MNIST example model's 3x3 conv3 outputs stay direct). */
#define CX_WINO_TILES 48
#define CX_WINO_MIN_CHANNELS 16
#define CX_WINO_MIN_TILES 256
/* (C_in, C_out) pairs per task of the Winograd kernel transform. */
#define CX_WINO_KERNEL_CHUNK 256

/* Images per chunk of the row scans and gathers, taken dynamically: a worker that wakes late (~50 us after a
 * sleep) or runs slower takes fewer, instead of the other thread waiting for its static half. */
#define CX_ROW_SCAN_IMAGES 4

#define real float
#define FN(name) name##_f32
#ifdef CX_HAVE_X86
#define CX_WINO_INPUT_AVX2 wino_input_avx2_f32
#define CX_WINO_OUTPUT_AVX2 wino_output_avx2_f32
#endif
#include "conv_tiles_impl.h"
#include "conv_forward_impl.h"
#include "conv_backward_impl.h"
#include "conv_pool_impl.h"
#undef CX_WINO_INPUT_AVX2
#undef CX_WINO_OUTPUT_AVX2
#undef real
#undef FN

#define real double
#define FN(name) name##_f64
#include "conv_tiles_impl.h"
#include "conv_forward_impl.h"
#include "conv_backward_impl.h"
#include "conv_pool_impl.h"
#undef real
#undef FN
