// Verilator harness of the SoC (hannah_hw/soc/soc.py): boots the RAM image through the
// load port, then runs the core, serving the host port: console bytes, an input word
// stream, output words and the exit code. No Python per cycle.
//   usage: soc_sim IMAGE.bin INPUT.bin OUTPUT.bin CONSOLE.txt MAX_CYCLES
// Echoes the console on stdout; prints "exit <code> <cycles> <seconds>" at the end; exits 3 on a trap, 4 on MAX_CYCLES.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "Vsoc.h"
#include "hh_soc.h"  // the host port's registers (HH_HOST_*), generated from soc/soc.py
#include "verilated.h"

static std::vector<uint32_t> read_words(const char *path) {
    std::vector<uint32_t> v;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "error: cannot open %s\n", path);
        exit(2);
    }
    uint32_t w;
    while (fread(&w, 4, 1, f) == 1) v.push_back(w);
    fclose(f);
    return v;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s IMAGE.bin INPUT.bin OUTPUT.bin CONSOLE.txt MAX_CYCLES\n",
                argv[0]);
        return 2;
    }
    std::vector<uint32_t> image = read_words(argv[1]), input = read_words(argv[2]);
    FILE *out = fopen(argv[3], "wb"), *con = fopen(argv[4], "wb");
    if (!out || !con) {
        fprintf(stderr, "error: cannot write %s or %s\n", argv[3], argv[4]);
        return 2;
    }
    uint64_t max_cycles = strtoull(argv[5], nullptr, 0), cycles = 0;
    Vsoc *top = new Vsoc;
    auto tick = [&]() {
        top->clk = 0;
        top->eval();
        top->clk = 1;
        top->eval();
    };
    top->rst = 1;
    top->load_en = 1;
    top->load_we = 1;
    for (size_t i = 0; i < image.size(); i++) {
        top->load_adr = i;
        top->load_dat = image[i];
        tick();
    }
    top->load_en = 0;
    tick();
    top->rst = 0;
    size_t in_pos = 0;
    int code = -1;
    auto t0 = std::chrono::steady_clock::now();
    while (code < 0) {
        top->clk = 0;
        top->eval();
        if (top->host_valid) {
            uint32_t r = 0;
            if (top->host_we) {
                uint32_t d = top->host_wdata;
                if (top->host_adr == HH_HOST_CONSOLE) {  // to the log and, as progress, stdout
                    fputc(d & 0xff, con);
                    putchar(d & 0xff);
                    if ((d & 0xff) == '\n') fflush(stdout);
                }
                else if (top->host_adr == HH_HOST_OUTPUT) fwrite(&d, 4, 1, out);
                else if (top->host_adr == HH_HOST_EXIT) code = d & 0xff;
            } else if (top->host_adr == HH_HOST_INPUT) {
                r = in_pos < input.size() ? input[in_pos++] : 0;
            } else if (top->host_adr == HH_HOST_INPUT_LEFT) {
                r = input.size() - in_pos;
            }
            top->host_rdata = r;
            top->eval();
        }
        top->clk = 1;
        top->eval();
        cycles++;
        if (top->trap) {
            fflush(con);
            fprintf(stderr, "error: the core trapped after %llu cycles\n",
                    (unsigned long long)cycles);
            return 3;
        }
        if (cycles >= max_cycles) {
            fflush(con);
            fprintf(stderr, "error: no exit after %llu cycles (firmware hung?)\n",
                    (unsigned long long)cycles);
            return 4;
        }
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fclose(out);
    fclose(con);
    printf("\nexit %d %llu %.6f\n", code, (unsigned long long)cycles, s);
    top->final();
    delete top;
    return 0;
}
