/* hannah-hw reference kernels: a software twin of the Program's semantic descriptors
   (hannah_hw/accel/golden.py), on one flat activation memory laid out as on the
   accelerator. Integers only: int32 accumulators, int64 requantisation products. */
#include "hh_ref.h"

static int16_t act[HH_ACT_DEPTH];

int64_t hh_requant(int64_t acc, int32_t m, int32_t sh, int half_even) {
    int64_t prod = acc * m, q, rem, half;
    if (sh <= 0) return prod;
    half = (int64_t)1 << (sh - 1);
    if (!half_even) return (prod + half) >> sh;
    q = prod >> sh; /* arithmetic shift: floor */
    rem = prod - q * ((int64_t)1 << sh);
    return q + ((rem > half) || (rem == half && (q & 1)));
}

static int16_t clamp(int64_t v, int32_t lo, int32_t hi) {
    return (int16_t)(v < lo ? lo : v > hi ? hi : v);
}

#define F(name) d[HH_F_##name]

/* one output of one lane: its weights are one int8 per reduction step, HH_LANES apart */
static int32_t window_dot(const int16_t *x, const int8_t *w, int32_t cin_g, int32_t chan,
                          int32_t iy0, int32_t ix0, const int32_t *d) {
    const int32_t kh = F(K_H), kw = F(K_W), in_h = F(IN_H), in_w = F(IN_W), zp = F(ZP_IN);
    const int32_t dh = F(DIL_H), dw = F(DIL_W);
    const int inside_x = ix0 >= 0 && ix0 + (kw - 1) * dw < in_w;
    int32_t acc = 0, ci, ky, kx;
    for (ci = 0; ci < cin_g; ci++, x += chan) {
        for (ky = 0; ky < kh; ky++, w += kw * HH_LANES) {
            const int32_t iy = iy0 + ky * dh;
            if (iy < 0 || iy >= in_h) continue; /* padding: x - zp is 0 */
            if (inside_x) {
                const int16_t *row = x + iy * in_w + ix0;
                for (kx = 0; kx < kw; kx++) acc += (row[kx * dw] - zp) * w[kx * HH_LANES];
            } else {
                for (kx = 0; kx < kw; kx++) {
                    const int32_t ix = ix0 + kx * dw;
                    if (ix >= 0 && ix < in_w) acc += (x[iy * in_w + ix] - zp) * w[kx * HH_LANES];
                }
            }
        }
    }
    return acc;
}

static void conv(const int32_t *d) {
    const int32_t g = F(GROUPS), cin_g = F(CIN) / g, per_group = F(COUT) / g;
    const int32_t red = cin_g * F(K_H) * F(K_W), chan = F(IN_H) * F(IN_W);
    const int32_t out_h = F(OUT_H), out_w = F(OUT_W), sh = F(STRIDE_H), sw = F(STRIDE_W);
    int32_t word = F(W_ADDR), block = F(P_ADDR), gi, b, l, oy, ox;
    for (gi = 0; gi < g; gi++) {
        const int16_t *x = act + F(IN_ADDR) + gi * cin_g * chan;
        for (b = 0; b < per_group; b += HH_LANES, word += red, block++) {
            const int32_t n = per_group - b < HH_LANES ? per_group - b : HH_LANES;
            for (l = 0; l < n; l++) {
                const int32_t oc = gi * per_group + b + l;
                const int8_t *w = hh_ref_weights + word * HH_LANES + l;
                const int32_t *p = hh_ref_params + (block * HH_LANES + l) * 3;
                int16_t *y = act + F(OUT_ADDR) + oc * out_h * out_w;
                for (oy = 0; oy < out_h; oy++)
                    for (ox = 0; ox < out_w; ox++) {
                        const int64_t acc = (int64_t)window_dot(x, w, cin_g, chan,
                                                                oy * sh - F(PAD_H),
                                                                ox * sw - F(PAD_W), d) + p[0];
                        *y++ = clamp(hh_requant(acc, p[1], p[2], F(HALF_EVEN)) + F(ZP_OUT),
                                     F(OUT_LO), F(OUT_HI));
                    }
            }
        }
    }
}

static void pool(const int32_t *d, int is_max) {
    const int32_t in_h = F(IN_H), in_w = F(IN_W), zp = F(ZP_IN);
    int32_t c, oy, ox, ky, kx;
    int16_t *y = act + F(OUT_ADDR);
    for (c = 0; c < F(CIN); c++) {
        const int16_t *x = act + F(IN_ADDR) + c * in_h * in_w;
        for (oy = 0; oy < F(OUT_H); oy++) {
            for (ox = 0; ox < F(OUT_W); ox++) {
                int32_t s = 0, mx = INT32_MIN;
                for (ky = 0; ky < F(K_H); ky++) {
                    const int32_t iy = oy * F(STRIDE_H) - F(PAD_H) + ky * F(DIL_H);
                    for (kx = 0; kx < F(K_W); kx++) {
                        const int32_t ix = ox * F(STRIDE_W) - F(PAD_W) + kx * F(DIL_W);
                        const int inside = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
                        const int32_t v = inside ? x[iy * in_w + ix] : (is_max ? F(OUT_LO) : zp);
                        s += v - zp;
                        mx = v > mx ? v : mx;
                    }
                }
                *y++ = is_max ? (int16_t)mx
                              : clamp(hh_requant(s, F(M), F(SH), F(HALF_EVEN)) + F(ZP_OUT),
                                      F(OUT_LO), F(OUT_HI));
            }
        }
    }
}

static void add(const int32_t *d) {
    const int32_t n = F(CIN) * F(IN_H) * F(IN_W);
    const int16_t *a = act + F(IN_ADDR), *b = act + F(IN2_ADDR);
    int16_t *y = act + F(OUT_ADDR);
    int32_t i;
    for (i = 0; i < n; i++) {
        const int64_t acc = (int64_t)(a[i] - F(ZP_IN)) * F(M) + (int64_t)(b[i] - F(ZP_IN2)) * F(M_B);
        y[i] = clamp(hh_requant(acc, 1, F(SH), F(HALF_EVEN)) + F(ZP_OUT), F(OUT_LO),
                              F(OUT_HI));
    }
}

static void relu(const int32_t *d) {
    const int32_t n = F(CIN) * F(IN_H) * F(IN_W);
    const int16_t *x = act + F(IN_ADDR);
    int16_t *y = act + F(OUT_ADDR);
    int32_t i;
    for (i = 0; i < n; i++) y[i] = x[i] > F(ZP_IN) ? x[i] : (int16_t)F(ZP_IN);
}

void hh_ref_infer(const void *input, int32_t output[HH_OUT_SIZE]) {
    const uint8_t *in = (const uint8_t *)input;
    int32_t i, layer;
    for (i = 0; i < HH_IN_SIZE; i++)
        act[HH_IN_ADDR + i] = (int16_t)(HH_IN_SIGNED ? (int32_t)(int8_t)in[i] : (int32_t)in[i]);
    for (layer = 0; layer < HH_N_LAYERS; layer++) {
        const int32_t *d = hh_ref_desc[layer];
        switch (d[HH_F_OP]) {
            case HH_OP_CONV:
            case HH_OP_LINEAR: conv(d); break;
            case HH_OP_ADD: add(d); break;
            case HH_OP_AVGPOOL:
            case HH_OP_GLOBAL_AVGPOOL: pool(d, 0); break;
            case HH_OP_MAXPOOL: pool(d, 1); break;
            default: relu(d); break;
        }
    }
    for (i = 0; i < HH_OUT_SIZE; i++) output[i] = act[HH_OUT_ADDR + i];
}
