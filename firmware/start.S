# hannah-hw SoC start-up: stack, zeroed .bss, main(), then its return value to the host
# port's exit register (the simulation ends there; on hardware the core parks).
#include "hh_soc.h"
    .section .text.start
    .globl _start
_start:
    la   sp, __stack_top
    la   t0, __bss_start
    la   t1, __bss_end
1:  bgeu t0, t1, 2f
    sw   zero, 0(t0)
    addi t0, t0, 4
    j    1b
2:  call main
    li   t0, HH_HOST_EXIT_ADDR
    sw   a0, 0(t0)
3:  j    3b
