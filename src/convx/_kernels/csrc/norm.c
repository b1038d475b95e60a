/* Kernel family 'norm' (being written). */
#include "convx_common.h"
