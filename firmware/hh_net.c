/* hannah-hw inference API: dispatch to the accelerator driver or the reference kernels. */
#include "hh_net.h"

#include "hh_accel.h"
#ifndef HH_NO_REF
#include "hh_ref.h"
#endif

int hh_init(hh_backend backend) {
    if (backend == HH_BACKEND_ACCEL) return hh_accel_init();
#ifdef HH_NO_REF /* built for the accelerator only */
    return HH_EBACKEND;
#else
    return backend == HH_BACKEND_REF ? HH_OK : HH_EBACKEND;
#endif
}

int hh_infer(hh_backend backend, const void *input, int32_t output[HH_OUT_SIZE]) {
    int rc;
    if (((uintptr_t)input & 3u) != 0) return HH_EALIGN;
#ifndef HH_NO_REF
    if (backend == HH_BACKEND_REF) {
        hh_ref_infer(input, output);
        return HH_OK;
    }
#endif
    if (backend != HH_BACKEND_ACCEL) return HH_EBACKEND;
    hh_accel_start(input);
    rc = hh_accel_wait(HH_POLL_LIMIT);
    if (rc == HH_OK) hh_accel_read_output(output);
    return rc;
}

const char *hh_strerror(int rc) {
    switch (rc) {
        case HH_OK: return "ok";
        case HH_EMAGIC: return "no hannah-hw accelerator at HH_ACCEL_BASE";
        case HH_ECONFIG: return "the accelerator's configuration differs from the firmware's";
        case HH_ETIMEOUT: return "timed out waiting for the accelerator";
        case HH_EWATCHDOG: return "the accelerator's watchdog stopped the program";
        case HH_EALIGN: return "the input buffer is not 4-byte aligned";
        case HH_EBACKEND: return "unknown backend, or not built in (REF=0)";
        default: return "unknown error";
    }
}
