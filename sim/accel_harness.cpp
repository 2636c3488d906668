// Verilator harness of the generated accelerator: executes a command stream of Wishbone
// writes, reads and runs (file of little-endian uint32 words) with no Python per cycle.
//   1 n (addr data)*n   write words        2 addr n     read n words to the output file
//   3 max_cycles        start, wait for the interrupt (exit 3 on timeout)     0   end
// Prints "run <k> <cycles>" per run (progress) and "total <cycles> <seconds>" at the end.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "Vaccel.h"
#include "verilated.h"

static Vaccel *top;
static uint64_t ticks = 0;

static void tick() {
    top->clk = 0;
    top->eval();
    top->clk = 1;
    top->eval();
    ticks++;
}

static uint32_t bus(uint32_t addr, uint32_t data, bool we) {
    top->wb_adr = addr;
    top->wb_dat_w = data;
    top->wb_we = we;
    top->wb_cyc = top->wb_stb = 1;
    for (int i = 0; !top->wb_ack; i++) {
        if (i > 16) {
            fprintf(stderr, "error: no bus acknowledge at address 0x%x\n", addr);
            exit(4);
        }
        tick();
    }
    uint32_t r = top->wb_dat_r;
    top->wb_cyc = top->wb_stb = 0;
    tick();
    return r;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s COMMANDS.bin OUTPUT.bin\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        fprintf(stderr, "error: cannot open %s\n", argv[1]);
        return 2;
    }
    std::vector<uint32_t> cmd;
    uint32_t w;
    while (fread(&w, 4, 1, f) == 1) cmd.push_back(w);
    fclose(f);
    FILE *out = fopen(argv[2], "wb");
    if (!out) {
        fprintf(stderr, "error: cannot write %s\n", argv[2]);
        return 2;
    }
    Verilated::commandArgs(1, argv);
    top = new Vaccel;
    top->rst = 1;
    tick();
    tick();
    top->rst = 0;
    auto t0 = std::chrono::steady_clock::now();
    size_t pc = 0;
    int runs = 0;
    while (pc < cmd.size() && cmd[pc] != 0) {
        uint32_t op = cmd[pc++];
        if (op == 1) {
            uint32_t n = cmd[pc++];
            for (uint32_t i = 0; i < n; i++, pc += 2) bus(cmd[pc], cmd[pc + 1], true);
        } else if (op == 2) {
            uint32_t addr = cmd[pc++], n = cmd[pc++];
            for (uint32_t i = 0; i < n; i++) {
                uint32_t r = bus(addr + i, 0, false);
                fwrite(&r, 4, 1, out);
            }
        } else if (op == 3) {
            uint64_t limit = cmd[pc++], start = ticks;
            bus(0, 3, true);  // ctrl: start | irq enable
            while (!top->irq) {
                if (ticks - start > limit) {
                    fprintf(stderr, "error: no interrupt after %llu cycles (run %d)\n",
                            (unsigned long long)limit, runs);
                    return 3;
                }
                tick();
            }
            printf("run %d %llu\n", runs++, (unsigned long long)(ticks - start));
            fflush(stdout);
            bus(1, 2, true);  // status: clear done
        } else {
            fprintf(stderr, "error: bad command %u at word %zu\n", op, pc - 1);
            return 2;
        }
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    printf("total %llu %.6f\n", (unsigned long long)ticks, s);
    fclose(out);
    top->final();
    delete top;
    return 0;
}
