//! Naive f64 reference implementations shared by the kernel tests (obvious loops, no
//! cleverness): B-spline coefficients by a tridiagonal solve with scipy's mirror boundary,
//! resampling by summing the kernels, sunpy's missing rule, FITS TAN deprojection, a
//! seeded generator.

#![allow(dead_code)]

/// splitmix64: a tiny deterministic generator.
pub struct Rng(pub u64);
impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }
}

pub fn mirror(i: i64, n: i64) -> usize {
    if n <= 1 {
        return 0;
    }
    let p = 2 * n - 2;
    let r = i.rem_euclid(p);
    (if r < n { r } else { p - r }) as usize
}

/// Cubic B-spline coefficients of one line with scipy's mirror boundary: solves
/// (c[k-1] + 4 c[k] + c[k+1]) / 6 = s[k] with c[-1] = c[1], c[n] = c[n-2] (Thomas, f64).
pub fn bspline_coeffs_line(s: &[f64]) -> Vec<f64> {
    let n = s.len();
    if n == 1 {
        return s.to_vec();
    }
    // rows: a c[k-1] + b c[k] + c c[k+1] = 6 s[k]
    let mut a = vec![1.0; n];
    let b = vec![4.0; n];
    let mut c = vec![1.0; n];
    a[0] = 0.0;
    c[0] = 2.0;
    a[n - 1] = 2.0;
    c[n - 1] = 0.0;
    let mut cp = vec![0.0; n];
    let mut dp = vec![0.0; n];
    cp[0] = c[0] / b[0];
    dp[0] = 6.0 * s[0] / b[0];
    for k in 1..n {
        let m = b[k] - a[k] * cp[k - 1];
        cp[k] = c[k] / m;
        dp[k] = (6.0 * s[k] - a[k] * dp[k - 1]) / m;
    }
    let mut x = vec![0.0; n];
    x[n - 1] = dp[n - 1];
    for k in (0..n - 1).rev() {
        x[k] = dp[k] - cp[k] * x[k + 1];
    }
    x
}

/// 2-D coefficients (rows then columns), row-major ny x nx.
pub fn bspline_coeffs_2d(img: &[f64], nx: usize, ny: usize) -> Vec<f64> {
    let mut t = vec![0.0; nx * ny];
    for y in 0..ny {
        let row = bspline_coeffs_line(&img[y * nx..(y + 1) * nx]);
        t[y * nx..(y + 1) * nx].copy_from_slice(&row);
    }
    let mut out = vec![0.0; nx * ny];
    for x in 0..nx {
        let col: Vec<f64> = (0..ny).map(|y| t[y * nx + x]).collect();
        let c = bspline_coeffs_line(&col);
        for y in 0..ny {
            out[y * nx + x] = c[y];
        }
    }
    out
}

/// The cubic B-spline basis function.
pub fn beta3(x: f64) -> f64 {
    let a = x.abs();
    if a < 1.0 {
        2.0 / 3.0 - a * a + a * a * a / 2.0
    } else if a < 2.0 {
        (2.0 - a).powi(3) / 6.0
    } else {
        0.0
    }
}

/// Keys cubic convolution, a = -0.5.
pub fn keys(x: f64) -> f64 {
    let a = -0.5;
    let d = x.abs();
    if d < 1.0 {
        (a + 2.0) * d.powi(3) - (a + 3.0) * d * d + 1.0
    } else if d < 2.0 {
        a * d.powi(3) - 5.0 * a * d * d + 8.0 * a * d - 4.0 * a
    } else {
        0.0
    }
}

/// The geometry of a resample test (same expression order as the kernel).
#[derive(Clone, Copy)]
pub struct Geo {
    pub refp: [f64; 2],
    pub m: [[f64; 2]; 2],
    pub c: [f64; 2],
    pub nin: [usize; 2],
    pub nout: [usize; 2],
}
impl Geo {
    pub fn map(&self, x: usize, y: usize) -> (f64, f64) {
        let dx = x as f64 - self.c[0];
        let dy = y as f64 - self.c[1];
        (
            self.refp[0] + (self.m[0][0] * dx + self.m[0][1] * dy),
            self.refp[1] + (self.m[1][0] * dx + self.m[1][1] * dy),
        )
    }
}

/// Naive resample of `src` (image, or coefficients for spline) at (x, y) by summing the
/// kernel over a generous neighbourhood with mirrored indices.
pub fn naive_sample(src: &[f64], nx: usize, ny: usize, x: f64, y: f64, interp: u32) -> f64 {
    if interp == 0 {
        let ix = mirror((x + 0.5).floor() as i64, nx as i64);
        let iy = mirror((y + 0.5).floor() as i64, ny as i64);
        return src[iy * nx + ix];
    }
    let kernel = |d: f64| -> f64 {
        match interp {
            1 => (1.0 - d.abs()).max(0.0),
            2 => beta3(d),
            _ => keys(d),
        }
    };
    let (fx, fy) = (x.floor() as i64, y.floor() as i64);
    let mut acc = 0.0;
    for j in fy - 3..=fy + 3 {
        let wy = kernel(y - j as f64);
        if wy == 0.0 {
            continue;
        }
        for i in fx - 3..=fx + 3 {
            let wx = kernel(x - i as f64);
            if wx == 0.0 {
                continue;
            }
            acc += wy * wx * src[mirror(j, ny as i64) * nx + mirror(i, nx as i64)];
        }
    }
    acc
}

/// The full sunpy/scipy rule for one output image (f64 reference).
#[allow(clippy::too_many_arguments)]
pub fn naive_resample(
    img: &[f64],
    dmask: Option<&[u8]>,
    g: &Geo,
    interp: u32,
    missing: f64,
    clip: Option<(f64, f64)>,
) -> Vec<f64> {
    let (nx, ny) = (g.nin[0], g.nin[1]);
    let src = if interp == 2 {
        bspline_coeffs_2d(img, nx, ny)
    } else {
        img.to_vec()
    };
    let mf: Option<Vec<f64>> = dmask.map(|m| m.iter().map(|&v| v as f64).collect());
    let mut out = Vec::with_capacity(g.nout[0] * g.nout[1]);
    for y in 0..g.nout[1] {
        for x in 0..g.nout[0] {
            let (xi, yi) = g.map(x, y);
            let inside = xi >= 0.0 && xi <= (nx - 1) as f64 && yi >= 0.0 && yi <= (ny - 1) as f64;
            let mut v = if inside {
                naive_sample(&src, nx, ny, xi, yi, interp)
            } else {
                missing
            };
            // the kernel rounds to f32 before clipping
            v = v as f32 as f64;
            if let Some((lo, hi)) = clip {
                v = v.clamp(lo, hi);
            }
            if let (Some(m), true) = (&mf, inside) {
                let mi = if interp == 0 { 0 } else { 1 };
                if naive_sample(m, nx, ny, xi, yi, mi) > 0.0 {
                    v = f64::NAN;
                }
            }
            out.push(v);
        }
    }
    out
}

pub fn random_image(rng: &mut Rng, nx: usize, ny: usize) -> Vec<f32> {
    (0..nx * ny)
        .map(|i| {
            let (x, y) = ((i % nx) as f64, (i / nx) as f64);
            (300.0 + 200.0 * (0.3 * x).sin() * (0.2 * y).cos() + rng.range(-50.0, 150.0)) as f32
        })
        .collect()
}

pub fn rotation_geo(nin: [usize; 2], nout: [usize; 2], deg: f64, scale: f64) -> Geo {
    let (s, c) = deg.to_radians().sin_cos();
    // M = R^-1 / scale, R = [[c, -s], [s, c]]
    Geo {
        refp: [nin[0] as f64 / 2.0 - 0.7, nin[1] as f64 / 2.0 + 0.45],
        m: [[c / scale, s / scale], [-s / scale, c / scale]],
        c: [(nout[0] as f64 - 1.0) / 2.0, (nout[1] as f64 - 1.0) / 2.0],
        nin,
        nout,
    }
}

/// FITS Paper II TAN deprojection (phi_p = 180 deg) → (Tx, Ty) in radians; the
/// distance from disk centre is arccos(cos Tx cos Ty). Independent of the kernel's
/// tangent-plane vector form.
pub struct Wcs {
    pub refp: [f64; 2],
    pub pc: [[f64; 2]; 2],
    pub cdelt_arcsec: [f64; 2],
    pub crval_arcsec: [f64; 2],
}
impl Wcs {
    pub fn distance(&self, x: f64, y: f64) -> f64 {
        let (dx, dy) = (x - self.refp[0], y - self.refp[1]);
        let d2r = std::f64::consts::PI / 180.0;
        let xw = self.cdelt_arcsec[0] / 3600.0 * (self.pc[0][0] * dx + self.pc[0][1] * dy);
        let yw = self.cdelt_arcsec[1] / 3600.0 * (self.pc[1][0] * dx + self.pc[1][1] * dy);
        let r = (xw * xw + yw * yw).sqrt();
        let phi = xw.atan2(-yw);
        let theta = if r == 0.0 {
            90.0 * d2r
        } else {
            (180.0 / (std::f64::consts::PI * r)).atan()
        };
        let (a0, d0) = (
            self.crval_arcsec[0] / 3600.0 * d2r,
            self.crval_arcsec[1] / 3600.0 * d2r,
        );
        let phi_p = std::f64::consts::PI;
        let dphi = phi - phi_p;
        let num = -theta.cos() * dphi.sin();
        let den = theta.sin() * d0.cos() - theta.cos() * d0.sin() * dphi.cos();
        let alpha = a0 + num.atan2(den);
        let delta = (theta.sin() * d0.sin() + theta.cos() * d0.cos() * dphi.cos()).asin();
        (alpha.cos() * delta.cos()).clamp(-1.0, 1.0).acos()
    }
    pub fn params(&self, nx: usize, ny: usize, limit: f64) -> Vec<f64> {
        let a2r = std::f64::consts::PI / 180.0 / 3600.0;
        let (sl, cl) = (self.crval_arcsec[0] * a2r).sin_cos();
        let (sb, cb) = (self.crval_arcsec[1] * a2r).sin_cos();
        let _ = (nx, ny);
        vec![
            self.refp[0],
            self.refp[1],
            self.pc[0][0],
            self.pc[0][1],
            self.pc[1][0],
            self.pc[1][1],
            self.cdelt_arcsec[0] * a2r,
            self.cdelt_arcsec[1] * a2r,
            sl,
            cl,
            sb,
            cb,
            limit,
        ]
    }
}

/// numpy `nanmedian` (f64).
pub fn nanmedian(x: &[f32]) -> Option<f64> {
    let mut v: Vec<f64> = x
        .iter()
        .filter(|v| !v.is_nan())
        .map(|&v| v as f64)
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    Some((v[(n - 1) / 2] + v[n / 2]) / 2.0)
}

/// sunpy's NaN rule inputs: the image with NaNs replaced by `fill`, and the k x k
/// dilated NaN mask (zero outside).
pub fn fill_and_dilate(
    img: &[f32],
    nx: usize,
    ny: usize,
    fill: f32,
    k: usize,
) -> (Vec<f32>, Vec<u8>) {
    let r = (k as i64 - 1) / 2;
    let filled: Vec<f32> = img
        .iter()
        .map(|&v| if v.is_nan() { fill } else { v })
        .collect();
    let mut d = vec![0u8; nx * ny];
    for y in 0..ny as i64 {
        for x in 0..nx as i64 {
            let mut any = false;
            for dy in -r..=r {
                for dx in -r..=r {
                    let (xx, yy) = (x + dx, y + dy);
                    if xx >= 0 && yy >= 0 && (xx as usize) < nx && (yy as usize) < ny {
                        any |= img[yy as usize * nx + xx as usize].is_nan();
                    }
                }
            }
            d[y as usize * nx + x as usize] = any as u8;
        }
    }
    (filled, d)
}

/// Pads a row-major image by `pad` pixels of `value`.
pub fn pad(img: &[f32], nx: usize, ny: usize, pad: usize, value: f32) -> Vec<f32> {
    let (px, py) = (nx + 2 * pad, ny + 2 * pad);
    let mut out = vec![value; px * py];
    for y in 0..ny {
        for x in 0..nx {
            out[(y + pad) * px + x + pad] = img[y * nx + x];
        }
    }
    out
}

/// float → int16 as the pipeline writes it (round half away from zero, saturate,
/// NaN → −32768).
pub fn to_i16(v: f64) -> i16 {
    if v.is_nan() {
        return -32768;
    }
    let r = v.abs().floor() + if v.abs().fract() >= 0.5 { 1.0 } else { 0.0 };
    r.copysign(v).clamp(-32767.0, 32767.0) as i16
}

/// Richardson–Lucy by direct circular convolution (no FFT), aiapy semantics plus the
/// floor: NaN → 0 and restored, negatives clipped, u0 = d, `psf` centred at
/// `[ny/2, nx/2]`.
pub fn richardson_lucy(
    img: &[f32],
    psf: &[f64],
    nx: usize,
    ny: usize,
    iters: usize,
    floor: f64,
) -> Vec<f64> {
    let n = nx * ny;
    let d: Vec<f64> = img
        .iter()
        .map(|&v| if v.is_nan() || v < 0.0 { 0.0 } else { v as f64 })
        .collect();
    // kernel with its origin at [0, 0]
    let mut taps = Vec::new();
    for j in 0..ny {
        for i in 0..nx {
            let h = psf[((j + ny / 2) % ny) * nx + (i + nx / 2) % nx];
            if h != 0.0 {
                taps.push((j, i, h));
            }
        }
    }
    let mut u = d.clone();
    let mut e = vec![0.0; n];
    let mut c = vec![0.0; n];
    for _ in 0..iters {
        for y in 0..ny {
            for x in 0..nx {
                let mut s = 0.0;
                for &(j, i, h) in &taps {
                    s += h * u[((y + ny - j) % ny) * nx + (x + nx - i) % nx];
                }
                e[y * nx + x] = s;
            }
        }
        let r: Vec<f64> = (0..n).map(|k| d[k] / e[k].max(floor)).collect();
        for y in 0..ny {
            for x in 0..nx {
                let mut s = 0.0;
                for &(j, i, h) in &taps {
                    s += h * r[((y + j) % ny) * nx + (x + i) % nx];
                }
                c[y * nx + x] = s;
            }
        }
        for k in 0..n {
            u[k] *= c[k];
        }
    }
    for k in 0..n {
        if img[k].is_nan() {
            u[k] = f64::NAN;
        }
    }
    u
}

/// aiapy's PSF model on an `n x n` grid by full-grid evaluation and a direct circular
/// convolution (small n only). `filters` = [(spacing, angles in degrees)] for
/// (focal plane, entrance).
pub fn aia_psf(
    n: usize,
    w: f64,
    orders: &[i32],
    rho: f64,
    filters: [(f64, &[f64]); 2],
) -> Vec<f64> {
    let c = (n / 2) as f64 + 0.5;
    let gauss = |x0: f64, y0: f64| -> Vec<f64> {
        let mut g = vec![0.0; n * n];
        for j in 0..n {
            for i in 0..n {
                let (x, y) = (i as f64 + 0.5, j as f64 + 0.5);
                g[j * n + i] = (-w * (x - x0).powi(2) - w * (y - y0).powi(2)).exp();
            }
        }
        g
    };
    let sinc = |t: f64| {
        if t == 0.0 {
            1.0
        } else {
            (std::f64::consts::PI * t).sin() / (std::f64::consts::PI * t)
        }
    };
    let mut grids = Vec::new();
    for (d, angles) in filters {
        let mut s = vec![0.0; n * n];
        for &m in orders {
            if m == 0 {
                continue;
            }
            let im = sinc(m as f64 / rho).powi(2);
            for &a in angles {
                let t = a.to_radians();
                let g = gauss(c + m as f64 * d * t.cos(), c + m as f64 * d * t.sin());
                for k in 0..n * n {
                    s[k] += im * g[k];
                }
            }
        }
        let core = gauss(c, c);
        let ss: f64 = s.iter().sum();
        let sc: f64 = core.iter().sum();
        grids.push(
            (0..n * n)
                .map(|k| 0.18 * s[k] / ss + 0.82 * core[k] / sc)
                .collect::<Vec<f64>>(),
        );
    }
    let (a, b) = (&grids[0], &grids[1]);
    let mut conv = vec![0.0; n * n];
    for my in 0..n {
        for mx in 0..n {
            let av = a[my * n + mx];
            if av == 0.0 {
                continue;
            }
            for ky in 0..n {
                for kx in 0..n {
                    let by = (ky + n - my) % n;
                    let bx = (kx + n - mx) % n;
                    conv[ky * n + kx] += av * b[by * n + bx];
                }
            }
        }
    }
    let mut out = vec![0.0; n * n];
    for j in 0..n {
        for i in 0..n {
            let sj = (n / 2 + n - j) % n;
            let si = (n / 2 + n - i) % n;
            out[j * n + i] = conv[sj * n + si].abs();
        }
    }
    out
}

/// The register cases both GPU-facing tests run, as `(roll °, full-frame CDELT ″, missing,
/// interpolations)`: the default geometry (pad 1) with every interpolation, a large roll
/// with NaN padding (large pad), and no padding with `missing` below the data (sunpy's
/// output-dependent, deferred clipping).
pub fn register_case_table() -> Vec<(
    f64,
    f64,
    aiaprep::register::Missing,
    Vec<aiaprep::register::Interpolation>,
)> {
    use aiaprep::register::{Interpolation, Missing};
    let all = vec![
        Interpolation::Nearest,
        Interpolation::Linear,
        Interpolation::Spline,
        Interpolation::Keys,
    ];
    vec![
        (-0.13, 0.6007, Missing::Min, all),
        (
            25.0,
            0.6007,
            Missing::Nan,
            vec![Interpolation::Linear, Interpolation::Spline],
        ),
        (
            0.0,
            0.5994,
            Missing::Value(-50.0),
            vec![Interpolation::Nearest, Interpolation::Spline],
        ),
    ]
}
