/* hannah-hw accelerator driver: load the Program once, then per inference start the input
   DMA and the layers, wait by polling, read outputs and counters. Interrupt-driven hosts
   set HH_CTRL_IRQ_EN with the start command and wait for the irq line instead. */
#ifndef HH_ACCEL_H
#define HH_ACCEL_H
#include <stdint.h>

#include "hh_regs.h"

#ifndef HH_POLL_LIMIT
#define HH_POLL_LIMIT 100000000u /* status reads before the driver gives up */
#endif

int hh_accel_init(void);
void hh_accel_start(const void *input);
int hh_accel_wait(uint32_t poll_limit);
void hh_accel_read_output(int32_t *out);
/* the totals of the last run if it completed (HH_OK), else zeros and its error */
int hh_accel_counters(uint32_t counters[HH_N_COUNTERS]);
void hh_accel_layer_counters(int layer, uint32_t counters[HH_N_COUNTERS]);
uint32_t hh_accel_dma_cycles(void);

#endif
