// Host driver for tests/kernels_emulated.rs: runs the CUDA kernels of kernels/*.cu as
// host C++ (through kernels/emulate.h) on inputs the Rust test writes, and writes the
// outputs back. Built by the test with `c++ -std=c++17 -O2 -pthread -Wall -Wextra -I kernels`.
// Launches go through aia_emu::launch (kernels/emulate.h): blocks one after the other,
// a block's threads on this thread, as fibers with a real barrier once one calls
// __syncthreads.
//
// Usage: aia_emu COMMAND IN.tape OUT.tape
// A tape is a sequence of records: u8 kind, u64 count (little endian), count values.
// kinds: 1 f32, 2 f64, 3 i32, 4 i16, 5 u8, 6 u32, 7 u64.

#include "emulate.h"

#include "convert.cu"
#include "fulldisk.cu"
#include "psf.cu"
#include "resample.cu"
#include "rl.cu"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

template <class T> struct Kind;
template <> struct Kind<float> { static const unsigned char v = 1; };
template <> struct Kind<double> { static const unsigned char v = 2; };
template <> struct Kind<int> { static const unsigned char v = 3; };
template <> struct Kind<short> { static const unsigned char v = 4; };
template <> struct Kind<unsigned char> { static const unsigned char v = 5; };
template <> struct Kind<unsigned int> { static const unsigned char v = 6; };
template <> struct Kind<unsigned long long> { static const unsigned char v = 7; };

[[noreturn]] void fail(const std::string& m) {
    std::fprintf(stderr, "aia_emu: %s\n", m.c_str());
    std::exit(2);
}

struct In {
    FILE* f;
    template <class T> std::vector<T> get() {
        unsigned char k = 0;
        unsigned long long n = 0;
        if (std::fread(&k, 1, 1, f) != 1 || std::fread(&n, 8, 1, f) != 1) fail("short tape");
        if (k != Kind<T>::v) fail("record kind " + std::to_string(k) + " != " + std::to_string(Kind<T>::v));
        std::vector<T> v(n);
        if (n && std::fread(v.data(), sizeof(T), n, f) != n) fail("short record");
        return v;
    }
};

struct Out {
    FILE* f;
    template <class T> void put(const std::vector<T>& v) {
        unsigned char k = Kind<T>::v;
        unsigned long long n = v.size();
        std::fwrite(&k, 1, 1, f);
        std::fwrite(&n, 8, 1, f);
        if (n) std::fwrite(v.data(), sizeof(T), n, f);
    }
};

aia_dim3 d3(unsigned x, unsigned y = 1, unsigned z = 1) { return aia_dim3{x, y, z}; }
unsigned cdiv(long long a, unsigned b) { return (unsigned)((a + b - 1) / b); }

AiaStats final_stats(const std::vector<AiaStats>& partial) {
    std::vector<AiaStats> out(1);
    aia_emu::launch(d3(1), d3(1), [&] { stats_finalize(partial.data(), (int)partial.size(), out.data()); });
    return out[0];
}

std::vector<double> stats_vec(AiaStats s) { return {s.sum, s.min, s.max, (double)s.count}; }

void cmd_resample(In& in, Out& out) {
    auto d = in.get<double>();
    auto iv = in.get<int>();
    auto fv = in.get<float>();
    auto src = in.get<float>();
    auto mask = in.get<unsigned char>();
    ResampleParams p;
    p.ref_x = d[0]; p.ref_y = d[1]; p.m00 = d[2]; p.m01 = d[3]; p.m10 = d[4]; p.m11 = d[5];
    p.cx = d[6]; p.cy = d[7];
    p.nx_in = iv[0]; p.ny_in = iv[1]; p.nx_out = iv[2]; p.ny_out = iv[3]; p.interp = iv[4];
    p.use_mask = iv[5]; p.clip = iv[6];
    // optional padding: src is then (nx_in + 2 pad_x) x (ny_in + 2 pad_y)
    p.pad_x = iv.size() > 7 ? iv[7] : 0;
    p.pad_y = iv.size() > 8 ? iv[8] : 0;
    p.missing = fv[0]; p.clip_lo = fv[1]; p.clip_hi = fv[2];
    std::vector<float> o((size_t)p.nx_out * p.ny_out);
    aia_emu::launch(d3(cdiv(p.nx_out, 8), cdiv(p.ny_out, 4)), d3(8, 4),
                    [&] { resample_affine(src.data(), mask.data(), o.data(), p); });
    out.put(o);
}

void cmd_prefilter(In& in, Out& out) {
    auto iv = in.get<int>();
    auto img = in.get<float>();
    int nx = iv[0], ny = iv[1], method = iv[2];
    if (method == 0) {
        std::vector<float> tmp(img.size()), res(img.size());
        aia_emu::launch(d3(cdiv(nx, 16), cdiv(ny, 4)), d3(16, 4),
                        [&] { spline_prefilter_fir(img.data(), tmp.data(), nx, ny, 0); });
        aia_emu::launch(d3(cdiv(nx, 16), cdiv(ny, 4)), d3(16, 4),
                        [&] { spline_prefilter_fir(tmp.data(), res.data(), nx, ny, 1); });
        out.put(res);
    } else {
        aia_emu::launch(d3(cdiv(ny, 8)), d3(8), [&] { spline_prefilter_recursive(img.data(), nx, ny, 0); });
        aia_emu::launch(d3(cdiv(nx, 8)), d3(8), [&] { spline_prefilter_recursive(img.data(), nx, ny, 1); });
        out.put(img);
    }
}

void cmd_mask(In& in, Out& out) {
    auto iv = in.get<int>();
    auto fill = in.get<float>();
    auto img = in.get<float>();
    int nx = iv[0], ny = iv[1], r = iv[2];
    long long n = (long long)nx * ny;
    std::vector<unsigned char> m(n), t(n), dm(n);
    aia_emu::launch(d3(3), d3(5), [&] { nan_mask_fill(img.data(), m.data(), n, fill[0]); });
    aia_emu::launch(d3(cdiv(nx, 8), cdiv(ny, 4)), d3(8, 4), [&] { mask_dilate(m.data(), t.data(), nx, ny, r, 0); });
    aia_emu::launch(d3(cdiv(nx, 8), cdiv(ny, 4)), d3(8, 4), [&] { mask_dilate(t.data(), dm.data(), nx, ny, r, 1); });
    out.put(img);
    out.put(m);
    out.put(dm);
}

void cmd_pad(In& in, Out& out) {
    auto iv = in.get<int>();
    auto val = in.get<float>();
    auto src = in.get<float>();
    int nx = iv[0], ny = iv[1], px = iv[2], py = iv.size() > 3 ? iv[3] : iv[2];
    std::vector<float> dst((size_t)(nx + 2 * px) * (ny + 2 * py));
    aia_emu::launch(d3(4), d3(3), [&] { pad_constant(src.data(), nx, ny, dst.data(), px, py, val[0]); });
    out.put(dst);
}

void cmd_rl(In& in, Out& out) {
    auto iv = in.get<int>();
    auto pf = in.get<float>();
    auto d = in.get<float>();
    auto e = in.get<float>();
    auto c = in.get<float>();
    auto spec = in.get<float>();
    auto otf = in.get<float>();
    long long n = (long long)d.size(), m = (long long)spec.size() / 2;
    std::vector<float> u(n);
    std::vector<unsigned char> mask(n);
    aia_emu::launch(d3(3), d3(4), [&] { rl_prepare(d.data(), u.data(), mask.data(), n, iv[0]); });
    out.put(d);
    out.put(u);
    out.put(mask);
    std::vector<float> s1 = spec, s2 = spec;
    aia_emu::launch(d3(2), d3(3), [&] {
        rl_mul_otf((AiaComplex32*)s1.data(), (const AiaComplex32*)otf.data(), m, pf[0], 0);
    });
    aia_emu::launch(d3(2), d3(3), [&] {
        rl_mul_otf((AiaComplex32*)s2.data(), (const AiaComplex32*)otf.data(), m, pf[0], 1);
    });
    out.put(s1);
    out.put(s2);
    aia_emu::launch(d3(3), d3(4), [&] { rl_ratio(d.data(), e.data(), n, pf[1]); });
    out.put(e);
    aia_emu::launch(d3(3), d3(4), [&] { rl_update(u.data(), c.data(), n); });
    out.put(u);
    aia_emu::launch(d3(3), d3(4), [&] { rl_restore(u.data(), mask.data(), n); });
    out.put(u);
}

void cmd_otf(In& in, Out& out) {
    auto iv = in.get<int>();
    auto psf = in.get<double>();
    int nx = iv[0], ny = iv[1];
    std::vector<double> sh(psf.size());
    aia_emu::launch(d3(3), d3(4), [&] { otf_shift_f64(psf.data(), sh.data(), nx, ny); });
    out.put(sh);
    std::vector<float> c(psf.size() / 2 * 2);
    aia_emu::launch(d3(3), d3(4), [&] {
        complex_f64_to_f32((const AiaComplex64*)psf.data(), (AiaComplex32*)c.data(), (long long)psf.size() / 2);
    });
    out.put(c);
}

void cmd_convert(In& in, Out& out) {
    auto iv = in.get<int>();
    auto dv = in.get<double>();
    auto raw = in.get<short>();
    auto vals = in.get<float>();
    long long n16 = (long long)raw.size(), nf = (long long)vals.size();
    std::vector<float> f(n16);
    aia_emu::launch(d3(3), d3(4), [&] { i16_to_f32(raw.data(), f.data(), n16, iv[0], iv[1], dv[0], dv[1]); });
    out.put(f);
    std::vector<short> s(nf);
    aia_emu::launch(d3(3), d3(4), [&] { f32_to_i16(vals.data(), s.data(), nf); });
    out.put(s);
    std::vector<AiaStats> part(5);
    aia_emu::launch(d3(5), d3(1), [&] { stats_f32_partial(vals.data(), nf, part.data()); });
    out.put(stats_vec(final_stats(part)));
    aia_emu::launch(d3(5), d3(1), [&] { stats_i16_partial(raw.data(), n16, iv[0], iv[1], part.data()); });
    out.put(stats_vec(final_stats(part)));
}

void cmd_hist(In& in, Out& out) {
    auto x = in.get<float>();
    auto uv = in.get<unsigned int>();
    auto iv = in.get<int>();
    std::vector<unsigned int> h((size_t)1 << iv[1], 0u);
    aia_emu::launch(d3(4), d3(1), [&] {
        hist_f32_keys(x.data(), (long long)x.size(), uv[0], uv[1], iv[0], iv[1], h.data());
    });
    out.put(h);
    std::vector<unsigned int> keys(x.size());
    for (size_t i = 0; i < x.size(); ++i) keys[i] = cv_f32_key(x[i]);
    out.put(keys);
}

void cmd_psf(In& in, Out& out) {
    auto iv = in.get<int>();
    auto cx = in.get<double>();
    auto cy = in.get<double>();
    auto amp = in.get<double>();
    auto dv = in.get<double>();
    auto conv = in.get<double>();
    auto ws = in.get<double>();
    int n = iv[0], radius = iv[1];
    double w = dv[0];
    std::vector<double> grid((size_t)n * n, 0.0);
    aia_emu::launch(d3((unsigned)cx.size()), d3(1), [&] {
        psf_accumulate(grid.data(), n, cx.data(), cy.data(), amp.data(), (int)cx.size(), w, radius);
    });
    out.put(grid);
    std::vector<double> partial(7), total(1);
    aia_emu::launch(d3(7), d3(1), [&] { psf_sum_partial(grid.data(), (long long)grid.size(), partial.data()); });
    aia_emu::launch(d3(1), d3(1), [&] { psf_sum_final(partial.data(), 7, total.data()); });
    out.put(total);
    aia_emu::launch(d3(5), d3(3), [&] {
        psf_combine(grid.data(), n, 1.0 / total[0], dv[1], w, radius, dv[2], dv[3]);
    });
    out.put(grid);
    std::vector<double> fin((size_t)n * n);
    aia_emu::launch(d3(5), d3(3), [&] { psf_finish(conv.data(), fin.data(), n, 1.0 / ((double)n * n)); });
    out.put(fin);
    std::vector<int> radii;
    for (double x : ws) radii.push_back(psf_window_radius(x));
    out.put(radii);
    // psf_mul_spectra on (conv as complex) x (conv as complex)
    std::vector<double> a = conv;
    aia_emu::launch(d3(2), d3(2), [&] {
        psf_mul_spectra((AiaComplex64*)a.data(), (const AiaComplex64*)conv.data(), (long long)conv.size() / 2);
    });
    out.put(a);
}

void cmd_fulldisk(In& in, Out& out) {
    auto dv = in.get<double>();
    auto iv = in.get<int>();
    auto xs = in.get<double>();
    auto ys = in.get<double>();
    FullDiskParams p;
    p.ref_x = dv[0]; p.ref_y = dv[1]; p.pc00 = dv[2]; p.pc01 = dv[3]; p.pc10 = dv[4]; p.pc11 = dv[5];
    p.cdelt_x = dv[6]; p.cdelt_y = dv[7]; p.sin_lon0 = dv[8]; p.cos_lon0 = dv[9];
    p.sin_lat0 = dv[10]; p.cos_lat0 = dv[11]; p.limit = dv[12];
    p.nx = iv[0]; p.ny = iv[1];
    std::vector<double> dist(xs.size());
    for (size_t i = 0; i < xs.size(); ++i) dist[i] = fd_center_distance(p, xs[i], ys[i]);
    out.put(dist);
    std::vector<unsigned long long> count(1, 0);
    aia_emu::launch(d3(6), d3(1), [&] { fulldisk_edge_count(p, count.data()); });
    out.put(count);
    long long ne = 2LL * p.nx + 2LL * p.ny - 4;
    std::vector<int> edge;
    for (long long k = 0; k < ne; ++k) {
        int x, y;
        fd_edge_pixel(k, p.nx, p.ny, &x, &y);
        edge.push_back(x);
        edge.push_back(y);
    }
    out.put(edge);
}

// The cooperative kernels (block reductions, shared-memory histograms, atomics) with the
// block size the GPU path launches (256 threads, aiaprep::gpu::BLOCK): __syncthreads is a
// real barrier over a block's threads (launch_coop is launch; the name marks these launches).
void cmd_coop(In& in, Out& out) {
    const unsigned B = 256;
    auto vals = in.get<float>();
    auto raw = in.get<short>();
    auto blank = in.get<int>();
    auto x = in.get<double>();
    auto piv = in.get<int>();
    auto cx = in.get<double>();
    auto cy = in.get<double>();
    auto amp = in.get<double>();
    auto pw = in.get<double>();
    auto fdv = in.get<double>();
    auto fiv = in.get<int>();
    long long nf = (long long)vals.size(), n16 = (long long)raw.size();

    auto finalize = [&](const std::vector<AiaStats>& part) {
        std::vector<AiaStats> o(1);
        aia_emu::launch_coop(d3(1), d3(B), [&] { stats_finalize(part.data(), (int)part.size(), o.data()); });
        return o[0];
    };
    std::vector<AiaStats> part(7);
    aia_emu::launch_coop(d3(7), d3(B), [&] { stats_f32_partial(vals.data(), nf, part.data()); });
    out.put(stats_vec(finalize(part)));
    aia_emu::launch_coop(d3(7), d3(B), [&] {
        stats_i16_partial(raw.data(), n16, blank[0], blank[1], part.data());
    });
    out.put(stats_vec(finalize(part)));

    std::vector<double> partial(5), total(1);
    aia_emu::launch_coop(d3(5), d3(B), [&] { psf_sum_partial(x.data(), (long long)x.size(), partial.data()); });
    aia_emu::launch_coop(d3(1), d3(B), [&] { psf_sum_final(partial.data(), 5, total.data()); });
    out.put(total);

    std::vector<unsigned int> h(2048, 0u);
    aia_emu::launch_coop(d3(4), d3(B), [&] { hist_f32_keys(vals.data(), nf, 0u, 0u, 21, 11, h.data()); });
    out.put(h);

    int n = piv[0], radius = piv[1];
    std::vector<double> grid((size_t)n * n, 0.0);
    aia_emu::launch_coop(d3((unsigned)cx.size()), d3(B), [&] {
        psf_accumulate(grid.data(), n, cx.data(), cy.data(), amp.data(), (int)cx.size(), pw[0], radius);
    });
    out.put(grid);

    FullDiskParams p;
    p.ref_x = fdv[0]; p.ref_y = fdv[1]; p.pc00 = fdv[2]; p.pc01 = fdv[3]; p.pc10 = fdv[4]; p.pc11 = fdv[5];
    p.cdelt_x = fdv[6]; p.cdelt_y = fdv[7]; p.sin_lon0 = fdv[8]; p.cos_lon0 = fdv[9];
    p.sin_lat0 = fdv[10]; p.cos_lat0 = fdv[11]; p.limit = fdv[12];
    p.nx = fiv[0]; p.ny = fiv[1];
    std::vector<unsigned long long> count(1, 0);
    aia_emu::launch_coop(d3(3), d3(B), [&] { fulldisk_edge_count(p, count.data()); });
    out.put(count);
}

// The input coordinates of every output pixel as the resample kernel computes them (rs_map),
// for the bit-compatibility test with the CPU path's RowMap.
void cmd_coords(In& in, Out& out) {
    auto d = in.get<double>();
    auto iv = in.get<int>();
    ResampleParams p{};
    p.ref_x = d[0]; p.ref_y = d[1]; p.m00 = d[2]; p.m01 = d[3]; p.m10 = d[4]; p.m11 = d[5];
    p.cx = d[6]; p.cy = d[7];
    p.nx_out = iv[0]; p.ny_out = iv[1];
    std::vector<double> xy((size_t)p.nx_out * p.ny_out * 2);
    for (int y = 0; y < p.ny_out; ++y)
        for (int x = 0; x < p.nx_out; ++x) {
            size_t k = ((size_t)y * p.nx_out + x) * 2;
            rs_map(p, x, y, &xy[k], &xy[k + 1]);
        }
    out.put(xy);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) fail("usage: aia_emu COMMAND IN OUT");
    FILE* fi = std::fopen(argv[2], "rb");
    FILE* fo = std::fopen(argv[3], "wb");
    if (!fi || !fo) fail("cannot open tapes");
    In in{fi};
    Out out{fo};
    std::string c = argv[1];
    if (c == "resample") cmd_resample(in, out);
    else if (c == "prefilter") cmd_prefilter(in, out);
    else if (c == "mask") cmd_mask(in, out);
    else if (c == "pad") cmd_pad(in, out);
    else if (c == "rl") cmd_rl(in, out);
    else if (c == "otf") cmd_otf(in, out);
    else if (c == "convert") cmd_convert(in, out);
    else if (c == "hist") cmd_hist(in, out);
    else if (c == "psf") cmd_psf(in, out);
    else if (c == "fulldisk") cmd_fulldisk(in, out);
    else if (c == "coop") cmd_coop(in, out);
    else if (c == "coords") cmd_coords(in, out);
    else fail("unknown command " + c);
    std::fclose(fi);
    if (std::fclose(fo) != 0) fail("write failed");
    return 0;
}
