/* hannah-hw SoC application: reads the backend and the inputs from the simulation host
   port, runs each inference timed by the SoC's cycle timer, and writes back per input:
   the return code, the outputs, end-to-end cycles, the accelerator's compute cycles (its
   own counter) and its input-DMA cycles. The program load at start-up is timed too. */
#include "hh_accel.h"
#include "hh_net.h"
#include "hh_soc.h"

#if HH_RAM_BASE != 0
#error "link.ld links the image at address 0: the SoC's RAM (soc/soc.py MAP) must start there"
#endif

#define HOST(r) (((volatile uint32_t *)(uintptr_t)HH_HOST_BASE)[r])
#define TIMER(r) (((volatile uint32_t *)(uintptr_t)HH_TIMER_BASE)[r])

static void put_str(const char *s) {
    while (*s) HOST(HH_HOST_CONSOLE) = (uint32_t)(uint8_t)*s++;
}

static void put_dec(int32_t v) {
    char buf[12];
    int i = 0;
    uint32_t u = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
    if (v < 0) HOST(HH_HOST_CONSOLE) = '-';
    do buf[i++] = (char)('0' + u % 10u); while ((u /= 10u) != 0);
    while (i) HOST(HH_HOST_CONSOLE) = (uint32_t)buf[--i];
}

static uint32_t now(void) { return TIMER(HH_TIMER_CYCLES); }

int main(void) {
    static uint32_t input[(HH_IN_SIZE + 3) / 4];
    static int32_t out[HH_OUT_SIZE];
    hh_backend backend = (hh_backend)HOST(HH_HOST_INPUT);
    uint32_t n = HOST(HH_HOST_INPUT), s, i, t0;
    uint32_t counters[HH_N_COUNTERS];
    int rc;
    put_str("hannah-hw " HH_NETWORK_NAME " on ");
    put_str(backend == HH_BACKEND_ACCEL ? "the accelerator\n" : "the reference kernels\n");
    t0 = now();
    rc = hh_init(backend);
    HOST(HH_HOST_OUTPUT) = now() - t0;
    if (rc != HH_OK) {
        put_str("init failed: ");
        put_str(hh_strerror(rc));
        put_str("\n");
        return 1;
    }
    for (s = 0; s < n; s++) {
        uint32_t t1, dt;
        for (i = 0; i < (HH_IN_SIZE + 3) / 4; i++) input[i] = HOST(HH_HOST_INPUT);
        t1 = now();
        rc = hh_infer(backend, input, out);
        dt = now() - t1;
        HOST(HH_HOST_OUTPUT) = (uint32_t)rc;
        for (i = 0; i < HH_OUT_SIZE; i++) HOST(HH_HOST_OUTPUT) = (uint32_t)out[i];
        HOST(HH_HOST_OUTPUT) = dt;
        if (backend == HH_BACKEND_ACCEL) (void)hh_accel_counters(counters); /* 0 on errors */
        HOST(HH_HOST_OUTPUT) = backend == HH_BACKEND_ACCEL ? counters[HH_COUNTER_CYCLES] : 0u;
        HOST(HH_HOST_OUTPUT) = backend == HH_BACKEND_ACCEL ? hh_accel_dma_cycles() : 0u;
        put_str("input ");
        put_dec((int32_t)s);
        put_str(": ");
        put_dec((int32_t)dt);
        put_str(" cycles");
        if (rc != HH_OK) {
            put_str(", error: ");
            put_str(hh_strerror(rc));
        }
        put_str("\n");
    }
    put_str("done\n");
    return 0;
}
