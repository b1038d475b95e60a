/* Kernel family 'depthwise' (being written). */
#include "convx_common.h"
