/* hannah-hw inference API: one call per inference, on the accelerator or on the portable
   reference kernels (same integers). The input is the network's input tensor as bytes
   (int8, or uint8 for unsigned inputs), C-order, in a 4-byte-aligned buffer. */
#ifndef HH_NET_H
#define HH_NET_H
#include <stdint.h>

#include "hh_model.h"

enum {
    HH_OK = 0,
    HH_EMAGIC = -1,    /* no hannah-hw accelerator at HH_ACCEL_BASE */
    HH_ECONFIG = -2,   /* the accelerator's configuration differs from the firmware's */
    HH_ETIMEOUT = -3,  /* the driver stopped waiting for "done" */
    HH_EWATCHDOG = -4, /* the accelerator's watchdog stopped the Program */
    HH_EALIGN = -5,    /* the input buffer is not 4-byte aligned */
    HH_EBACKEND = -6   /* unknown backend, or not built in (REF=0) */
};

typedef enum { HH_BACKEND_ACCEL = 0, HH_BACKEND_REF = 1 } hh_backend;

int hh_init(hh_backend backend);
int hh_infer(hh_backend backend, const void *input, int32_t output[HH_OUT_SIZE]);
const char *hh_strerror(int rc);

#endif
