/* hannah-hw portable reference kernels: the layers of the Program in plain integer C, with
   the numerics of the reference interpreter, for hosts and MCUs without the accelerator. */
#ifndef HH_REF_H
#define HH_REF_H
#include <stdint.h>

#include "hh_model.h"

void hh_ref_infer(const void *input, int32_t output[HH_OUT_SIZE]);
int64_t hh_requant(int64_t acc, int32_t m, int32_t sh, int half_even);

#endif
