/* hannah-hw host program: the network on the reference kernels, for bit-exact tests.
   usage: hh_host INPUT.bin OUTPUT.bin   (int32 little-endian values, HH_IN_SIZE per
   input in; HH_OUT_SIZE per input out) */
#include <stdio.h>
#include <stdlib.h>

#include "hh_net.h"

int main(int argc, char **argv) {
    static uint32_t packed[(HH_IN_SIZE + 3) / 4];
    static int32_t values[HH_IN_SIZE], out[HH_OUT_SIZE];
    FILE *in, *res;
    long n = 0;
    if (argc != 3) {
        fprintf(stderr, "usage: %s INPUT.bin OUTPUT.bin\n", argv[0]);
        return 2;
    }
    in = fopen(argv[1], "rb");
    res = fopen(argv[2], "wb");
    if (!in || !res) {
        fprintf(stderr, "error: cannot open %s or %s\n", argv[1], argv[2]);
        return 2;
    }
    while (fread(values, sizeof values[0], HH_IN_SIZE, in) == HH_IN_SIZE) {
        uint8_t *bytes = (uint8_t *)packed;
        int i;
        for (i = 0; i < HH_IN_SIZE; i++) bytes[i] = (uint8_t)values[i];
        int rc = hh_infer(HH_BACKEND_REF, packed, out);
        if (rc != HH_OK) {
            fprintf(stderr, "error: input %ld: %s\n", n, hh_strerror(rc));
            return 1;
        }
        if (fwrite(out, sizeof out[0], HH_OUT_SIZE, res) != HH_OUT_SIZE) {
            fprintf(stderr, "error: cannot write %s\n", argv[2]);
            return 1;
        }
        n++;
    }
    fclose(in);
    fclose(res);
    printf("%ld inputs\n", n);
    return 0;
}
