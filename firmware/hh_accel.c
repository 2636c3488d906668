/* hannah-hw accelerator driver. Every address and constant comes from the generated
   hh_regs.h (accelerator) and hh_soc.h (where the accelerator sits on the host's bus). */
#include "hh_accel.h"

#include "hh_model.h"
#include "hh_net.h"
#include "hh_soc.h"

static volatile uint32_t *region(uint32_t r) {
    return (volatile uint32_t *)(uintptr_t)HH_ACCEL_BASE + (r << HH_REGION_BITS);
}

#define REG(i) (region(HH_REGION_REGS)[i])

#if HH_N_LAYERS < 1
#error "a Program has at least one layer (its last stats row holds the totals)"
#endif

static void load_rows(uint32_t r, const uint32_t *rows, uint32_t n, uint32_t words,
                      uint32_t stride) {
    volatile uint32_t *base = region(r);
    uint32_t i, k;
    for (i = 0; i < n; i++)
        for (k = 0; k < words; k++) base[i * stride + k] = rows[i * words + k];
}

int hh_accel_init(void) {
    static const uint32_t expect[HH_N_CONST] = HH_CONST_WORDS;
    uint32_t i;
    if (REG(HH_REG_MAGIC) != HH_MAGIC) return HH_EMAGIC;
    for (i = 0; i < HH_N_CONST; i++)
        if (REG(HH_CONST_BASE + i) != expect[i]) return HH_ECONFIG;
    load_rows(HH_REGION_DESC, hh_desc_words, HH_N_LAYERS, HH_NF, HH_NF);
    load_rows(HH_REGION_PARAM, hh_param_words, HH_N_PARAM_ROWS, HH_PARAM_WORDS,
              HH_PARAM_STRIDE);
    load_rows(HH_REGION_WEIGHT, hh_weight_words, HH_N_WEIGHT_ROWS, HH_WEIGHT_WORDS,
              HH_WEIGHT_STRIDE);
    REG(HH_REG_N_LAYERS) = HH_N_LAYERS;
    REG(HH_REG_TIMEOUT) = HH_WATCHDOG_CYCLES;
    return HH_OK;
}

void hh_accel_start(const void *input) {
    REG(HH_REG_STATUS) = HH_STATUS_DONE; /* clear a previous "done" */
    REG(HH_REG_DMA_SRC) = (uint32_t)((uintptr_t)input - HH_RAM_BASE) >> 2;
    REG(HH_REG_DMA_DST) = HH_IN_ADDR;
#if HH_IN_SIGNED
    REG(HH_REG_DMA_LEN) = HH_IN_SIZE;
#else
    REG(HH_REG_DMA_LEN) = HH_IN_SIZE | HH_DMA_UNSIGNED; /* zero-extend the bytes */
#endif
    REG(HH_REG_CTRL) = HH_CTRL_START | HH_CTRL_DMA;
}

int hh_accel_wait(uint32_t poll_limit) {
    uint32_t status;
    while (!((status = REG(HH_REG_STATUS)) & HH_STATUS_DONE))
        if (poll_limit-- == 0) return HH_ETIMEOUT;
    return (status & HH_STATUS_ERROR) ? HH_EWATCHDOG : HH_OK;
}

void hh_accel_read_output(int32_t *out) {
    volatile uint32_t *act = region(HH_REGION_ACT) + HH_OUT_ADDR;
    uint32_t i;
    for (i = 0; i < HH_OUT_SIZE; i++) out[i] = (int32_t)act[i];
}

void hh_accel_layer_counters(int layer, uint32_t counters[HH_N_COUNTERS]) {
    const volatile uint32_t *row = region(HH_REGION_STATS) + (uint32_t)layer * HH_STATS_STRIDE;
    uint32_t i;
    for (i = 0; i < HH_N_COUNTERS; i++) counters[i] = row[i]; /* cumulative at layer end */
}

int hh_accel_counters(uint32_t counters[HH_N_COUNTERS]) {
    uint32_t status = REG(HH_REG_STATUS), i;
    if ((status & (HH_STATUS_DONE | HH_STATUS_ERROR)) == HH_STATUS_DONE) {
        hh_accel_layer_counters(HH_N_LAYERS - 1, counters); /* the last row: the totals */
        return HH_OK;
    }
    for (i = 0; i < HH_N_COUNTERS; i++) counters[i] = 0; /* the last row is another run's */
    return (status & HH_STATUS_ERROR) ? HH_EWATCHDOG : HH_ETIMEOUT;
}

uint32_t hh_accel_dma_cycles(void) { return REG(HH_REG_DMA_CYCLES); }
