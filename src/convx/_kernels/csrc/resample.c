/* Kernel family 'resample' (being written). */
#include "convx_common.h"
