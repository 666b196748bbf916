/* The error paths of every function of the aiaprep C ABI (include/aiaprep.h), plus one
 * success path (read -> register -> write -> read back -> free), as a test:
 *
 *     abi_errors DATA_DIR TMP_DIR
 *
 * DATA_DIR is the repository's tests/data (the real 128x128 AIA 171 level-1 file, a plain
 * non-AIA FITS image, the degradation response table); TMP_DIR an existing, writable,
 * otherwise unused directory (bad input files and outputs are made there).
 *
 * Every call's status is compared with the documented one; a failing call must leave a
 * non-empty aiaprep_last_error() message and set its `out` handle to NULL (each is preset to
 * a non-NULL sentinel first), a successful one must clear the message. Every handle is freed
 * (and *_free(NULL) is called), so that under valgrind or LeakSanitizer (scripts/memcheck.sh)
 * a leak after *_free shows. Prints one line per failed check and a summary; exits 1 when a
 * check failed, 2 on a usage or setup error, 0 otherwise.
 *
 * Built and run by tests/capi.rs (c_error_paths_return_the_documented_statuses) and, under
 * valgrind memcheck, by scripts/memcheck.sh. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "aiaprep.h"

static int checks = 0, failures = 0;

static const char *status_name(AiaprepStatus s) {
    switch (s) {
    case AIAPREP_OK: return "AIAPREP_OK";
    case AIAPREP_ERR_ARGUMENT: return "AIAPREP_ERR_ARGUMENT";
    case AIAPREP_ERR_IO: return "AIAPREP_ERR_IO";
    case AIAPREP_ERR_FORMAT: return "AIAPREP_ERR_FORMAT";
    case AIAPREP_ERR_KEYWORD: return "AIAPREP_ERR_KEYWORD";
    case AIAPREP_ERR_NOT_FULL_DISK: return "AIAPREP_ERR_NOT_FULL_DISK";
    case AIAPREP_ERR_OUTPUT_EXISTS: return "AIAPREP_ERR_OUTPUT_EXISTS";
    case AIAPREP_ERR_PSF: return "AIAPREP_ERR_PSF";
    case AIAPREP_ERR_BACKEND: return "AIAPREP_ERR_BACKEND";
    case AIAPREP_ERR_INTERNAL: return "AIAPREP_ERR_INTERNAL";
    }
    return "(not a status)";
}

static void fail_line(int line, const char *fmt, const char *a, const char *b) {
    failures++;
    fprintf(stderr, "abi_errors.c:%d: FAIL: ", line);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
}

/* A condition that must hold. */
#define CHECK(cond)                                                                         \
    do {                                                                                    \
        checks++;                                                                           \
        if (!(cond)) fail_line(__LINE__, "%s%s", #cond, "");                               \
    } while (0)

/* The status of `call` is `want`; the thread's last error is a non-empty message after a
 * failure and NULL after a success. */
static void expect(int line, const char *call, AiaprepStatus got, AiaprepStatus want) {
    checks++;
    const char *msg = aiaprep_last_error();
    if (got != want) {
        failures++;
        fprintf(stderr, "abi_errors.c:%d: FAIL: %s returned %s, expected %s (last error: %s)\n",
                line, call, status_name(got), status_name(want), msg ? msg : "NULL");
        return;
    }
    if (want != AIAPREP_OK && (msg == NULL || msg[0] == '\0'))
        fail_line(line, "%s: no aiaprep_last_error() message after %s", call, status_name(got));
    if (want == AIAPREP_OK && msg != NULL)
        fail_line(line, "%s: aiaprep_last_error() not cleared by a success: %s", call, msg);
}
#define EXPECT(call, want) expect(__LINE__, #call, (call), (want))

/* `out` handles are preset to this before calls that must fail, to see them set to NULL. */
static char sentinel_byte;
#define SENTINEL ((void *)&sentinel_byte)

/* A failed call left the handle `h` NULL; if not, free it with `free_fn` when it is a
 * handle (a call that wrongly succeeded; never the sentinel) and go on with NULL. */
#define EXPECT_NULL_HANDLE(h, free_fn)                                                      \
    do {                                                                                    \
        checks++;                                                                           \
        if ((h) != NULL) {                                                                  \
            fail_line(__LINE__, "%s%s", #h " is not NULL after a failed call", "");         \
            if ((void *)(h) != SENTINEL) free_fn(h);                                        \
            (h) = NULL;                                                                     \
        }                                                                                   \
    } while (0)
#define EXPECT_NULL_OUT(h) EXPECT_NULL_HANDLE(h, aiaprep_map_free)
#define EXPECT_NULL_CTX(h) EXPECT_NULL_HANDLE(h, aiaprep_context_free)

/* The last error contains `part` (the documented message names the bad argument or file). */
#define EXPECT_MESSAGE(part)                                                                \
    do {                                                                                    \
        checks++;                                                                           \
        const char *m_ = aiaprep_last_error();                                              \
        if (m_ == NULL || strstr(m_, (part)) == NULL)                                       \
            fail_line(__LINE__, "last error %s does not contain \"%s\"", m_ ? m_ : "NULL",  \
                      (part));                                                              \
    } while (0)

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    if (!s) {
        fprintf(stderr, "abi_errors: out of memory\n");
        exit(2);
    }
    snprintf(s, n, "%s/%s", dir, name);
    return s;
}

/* Write `n` bytes of `data` to `path`; exits 2 on failure (a setup error). */
static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "abi_errors: cannot write %s\n", path);
        exit(2);
    }
}

/* The whole of `path` (into *n bytes; free the result); exits 2 on failure. */
static unsigned char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long len;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
        !(buf = malloc((size_t)len + 1)) || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "abi_errors: cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    *n = (size_t)len;
    return buf;
}

/* A minimal valid FITS file: a 2x2 int16 image whose header has TELESCOP = `telescop`. */
static void write_small_fits(const char *path, const char *telescop) {
    static unsigned char block[2 * 2880];
    const char *cards[] = {"SIMPLE  =                    T", "BITPIX  =                   16",
                           "NAXIS   =                    2", "NAXIS1  =                    2",
                           "NAXIS2  =                    2", NULL, "END"};
    char tel[81];
    snprintf(tel, sizeof tel, "TELESCOP= '%-8s'", telescop);
    cards[5] = tel;
    memset(block, ' ', 2880);
    memset(block + 2880, 0, 2880);
    for (size_t i = 0; i < sizeof cards / sizeof cards[0]; i++)
        memcpy(block + 80 * i, cards[i], strlen(cards[i]));
    block[2880 + 1] = 1; /* pixels 1, 2, 3, 4 (big-endian int16) */
    block[2880 + 3] = 2;
    block[2880 + 5] = 3;
    block[2880 + 7] = 4;
    write_file(path, block, sizeof block);
}

/* The geometry of a synthetic full-disk 64x64 AIA 171 image (40 arcsec/pixel). */
static AiaprepGeometry synthetic_geometry(void) {
    AiaprepGeometry g;
    memset(&g, 0, sizeof g);
    g.crpix1 = 32.5;
    g.crpix2 = 32.5;
    g.cdelt1 = 40.0;
    g.cdelt2 = 40.0;
    g.rsun_obs = 975.0;
    g.rsun_ref = 0.0; /* -> 6.96e8 m */
    g.dsun_obs = 1.496e11;
    g.wavelnth = 171.0;
    g.exptime = 2.0;
    return g;
}

#define NX 64
#define NY 64

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s DATA_DIR TMP_DIR\n", argv[0]);
        return 2;
    }
    const char *data_dir = argv[1], *tmp = argv[2];
    char *input = join(data_dir, "aia_171_level1_128px.fits");
    char *plain = join(data_dir, "plain_float32_25x17.fits"); /* AIA, no WCS keywords */
    char *not_aia = join(tmp, "not_aia.fits");
    char *table = join(data_dir, "calibration/aia_V8_20171210_050627_response_table.txt");
    char *missing = join(tmp, "missing.fits");
    char *not_fits = join(tmp, "not_fits.fits");
    char *empty = join(tmp, "empty.fits");
    char *trunc_data = join(tmp, "truncated_data.fits");
    char *trunc_header = join(tmp, "truncated_header.fits");
    char *input_copy = join(tmp, "input_copy.fits");
    char *out_path = join(tmp, "out_lev15.fits");
    char *out_f32 = join(tmp, "out_f32_rice.fits");
    char *under_file = join(not_fits, "out.fits"); /* a path below a regular file */
    char *no_dir = join(tmp, "no/such/dir/out.fits");

    /* The bad inputs. */
    size_t in_len = 0;
    unsigned char *in_bytes = read_file(input, &in_len);
    const char text[] = "SIMPLE? no: this is not a FITS file\n";
    write_file(not_fits, text, sizeof text - 1);
    write_file(empty, "", 0);
    write_file(trunc_data, in_bytes, in_len / 3);  /* header complete, pixels cut */
    write_file(trunc_header, in_bytes, 1000);      /* inside the first header block */
    write_file(input_copy, in_bytes, in_len);
    write_small_fits(not_aia, "HINODE");

    AiaprepContext *ctx = NULL, *cuda = NULL;
    AiaprepMap *map = NULL, *reg = NULL, *back = NULL, *wrapped = NULL, *wrapped16 = NULL;
    AiaprepMap *x = NULL; /* the out handle of calls that must fail */
    AiaprepMap *ok = NULL; /* the out handle of other successful calls, freed at once */
    AiaprepRegisterOptions ropt;
    AiaprepDeconvolveOptions dopt;
    AiaprepWriteOptions wopt;
    AiaprepErrorOptions eopt;
    size_t nx = 0, ny = 0;
    double v = 0.0;
    char buf[64];

    /* ---- library information and defaults ---- */
    const char *version = aiaprep_version();
    CHECK(version != NULL && version[0] >= '0' && version[0] <= '9');
    ropt = aiaprep_register_options_default();
    CHECK(ropt.interpolation == AIAPREP_INTERP_SPLINE && ropt.missing_mode == 0 &&
          ropt.check_full_disk == 1);
    dopt = aiaprep_deconvolve_options_default();
    CHECK(dopt.iterations == 25 && dopt.clip_negative == 1 && dopt.preflight_core == 0);
    wopt = aiaprep_write_options_default();
    CHECK(wopt.dtype == 0 && wopt.compress == 0 && wopt.overwrite == 0);
    eopt = aiaprep_error_options_default();
    CHECK(eopt.n_sample == 1.0 && eopt.include_preflight == 0 && eopt.include_eve == 0 &&
          eopt.include_chianti == 0);

    /* ---- *_free(NULL) and map_data(NULL) ---- */
    aiaprep_context_free(NULL);
    aiaprep_map_free(NULL);
    CHECK(aiaprep_map_data(NULL) == NULL);

    /* ---- aiaprep_context_new ---- */
    EXPECT(aiaprep_context_new(AIAPREP_BACKEND_CPU, NULL), AIAPREP_ERR_ARGUMENT);
    EXPECT_MESSAGE("NULL");
    ctx = SENTINEL;
    EXPECT(aiaprep_context_new(7, &ctx), AIAPREP_ERR_ARGUMENT);
    EXPECT_MESSAGE("backend 7");
    EXPECT_NULL_CTX(ctx);
    ctx = SENTINEL;
    EXPECT(aiaprep_context_new(-1, &ctx), AIAPREP_ERR_ARGUMENT);
    EXPECT_NULL_CTX(ctx);
    /* CUDA: a context where a device is usable, else the documented backend error. */
    cuda = SENTINEL;
    AiaprepStatus s = aiaprep_context_new(AIAPREP_BACKEND_CUDA, &cuda);
    checks++;
    if (s == AIAPREP_OK) {
        CHECK(cuda != NULL && cuda != SENTINEL && aiaprep_last_error() == NULL);
        aiaprep_context_free(cuda);
    } else if (s == AIAPREP_ERR_BACKEND) {
        CHECK(aiaprep_last_error() != NULL && aiaprep_last_error()[0] != '\0');
        EXPECT_NULL_CTX(cuda);
    } else {
        fail_line(__LINE__, "aiaprep_context_new(CUDA) returned %s%s", status_name(s), "");
    }
    cuda = NULL;
    EXPECT(aiaprep_context_new(AIAPREP_BACKEND_CPU, &ctx), AIAPREP_OK);
    CHECK(ctx != NULL);

    /* ---- aiaprep_read ---- */
    x = SENTINEL;
    EXPECT(aiaprep_read(NULL, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_MESSAGE("path is NULL");
    EXPECT_NULL_OUT(x);
    EXPECT(aiaprep_read(input, NULL), AIAPREP_ERR_ARGUMENT);
    x = SENTINEL;
    EXPECT(aiaprep_read(missing, &x), AIAPREP_ERR_IO);
    EXPECT_MESSAGE("missing.fits");
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_read(tmp, &x), AIAPREP_ERR_IO); /* a directory */
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_read(not_fits, &x), AIAPREP_ERR_FORMAT);
    EXPECT_MESSAGE("not_fits.fits");
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_read(empty, &x), AIAPREP_ERR_FORMAT);
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_read(trunc_data, &x), AIAPREP_ERR_FORMAT);
    EXPECT_MESSAGE("truncated_data.fits");
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_read(trunc_header, &x), AIAPREP_ERR_FORMAT);
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_read(not_aia, &x), AIAPREP_ERR_FORMAT); /* a FITS image, not AIA */
    EXPECT_MESSAGE("HINODE");
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_read(plain, &x), AIAPREP_ERR_KEYWORD); /* AIA, but no geometry */
    EXPECT_MESSAGE("CRPIX1");
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_read("\xff\xfe.fits", &x), AIAPREP_ERR_ARGUMENT); /* not UTF-8 */
    EXPECT_MESSAGE("UTF-8");
    EXPECT_NULL_OUT(x);
    EXPECT(aiaprep_read(input, &map), AIAPREP_OK);
    CHECK(map != NULL);

    /* ---- aiaprep_read_limited: 128x128 decodes to 65536 bytes of f32 ---- */
    x = SENTINEL;
    EXPECT(aiaprep_read_limited(input, 0, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_MESSAGE("max_bytes");
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_read_limited(NULL, 65536, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_NULL_OUT(x);
    EXPECT(aiaprep_read_limited(input, 65536, NULL), AIAPREP_ERR_ARGUMENT);
    x = SENTINEL;
    EXPECT(aiaprep_read_limited(input, 65535, &x), AIAPREP_ERR_FORMAT);
    EXPECT_MESSAGE("read limit of 65535 bytes");
    EXPECT_MESSAGE("aia_171_level1_128px.fits");
    EXPECT_NULL_OUT(x);
    EXPECT(aiaprep_read_limited(input, 65536, &ok), AIAPREP_OK);
    CHECK(ok != NULL);
    aiaprep_map_free(ok);
    ok = NULL;

    /* ---- aiaprep_map_dims, aiaprep_map_data ---- */
    EXPECT(aiaprep_map_dims(NULL, &nx, &ny), AIAPREP_ERR_ARGUMENT);
    EXPECT(aiaprep_map_dims(map, NULL, &ny), AIAPREP_ERR_ARGUMENT);
    EXPECT(aiaprep_map_dims(map, &nx, NULL), AIAPREP_ERR_ARGUMENT);
    EXPECT(aiaprep_map_dims(map, &nx, &ny), AIAPREP_OK);
    CHECK(nx == 128 && ny == 128);
    CHECK(aiaprep_map_data(map) != NULL);

    /* ---- aiaprep_map_get_f64 ---- */
    EXPECT(aiaprep_map_get_f64(NULL, "CRPIX1", &v), AIAPREP_ERR_ARGUMENT);
    EXPECT(aiaprep_map_get_f64(map, NULL, &v), AIAPREP_ERR_ARGUMENT);
    EXPECT(aiaprep_map_get_f64(map, "CRPIX1", NULL), AIAPREP_ERR_ARGUMENT);
    EXPECT(aiaprep_map_get_f64(map, "NO_SUCH_KEY", &v), AIAPREP_ERR_KEYWORD);
    EXPECT_MESSAGE("NO_SUCH_KEY");
    EXPECT(aiaprep_map_get_f64(map, "TELESCOP", &v), AIAPREP_ERR_KEYWORD); /* a string */
    EXPECT(aiaprep_map_get_f64(map, "\xff", &v), AIAPREP_ERR_ARGUMENT);
    EXPECT(aiaprep_map_get_f64(map, "WAVELNTH", &v), AIAPREP_OK);
    CHECK(v == 171.0);

    /* ---- aiaprep_map_get_str ---- */
    EXPECT(aiaprep_map_get_str(NULL, "TELESCOP", buf, sizeof buf), AIAPREP_ERR_ARGUMENT);
    EXPECT(aiaprep_map_get_str(map, NULL, buf, sizeof buf), AIAPREP_ERR_ARGUMENT);
    EXPECT(aiaprep_map_get_str(map, "TELESCOP", NULL, sizeof buf), AIAPREP_ERR_ARGUMENT);
    EXPECT(aiaprep_map_get_str(map, "TELESCOP", buf, 0), AIAPREP_ERR_ARGUMENT);
    EXPECT(aiaprep_map_get_str(map, "NO_SUCH_KEY", buf, sizeof buf), AIAPREP_ERR_KEYWORD);
    EXPECT(aiaprep_map_get_str(map, "WAVELNTH", buf, sizeof buf), AIAPREP_ERR_KEYWORD);
    memset(buf, 'x', sizeof buf);
    EXPECT(aiaprep_map_get_str(map, "TELESCOP", buf, 4), AIAPREP_OK);
    CHECK(strcmp(buf, "SDO") == 0 && buf[4] == 'x'); /* len - 1 bytes and the NUL, no more */
    EXPECT(aiaprep_map_get_str(map, "TELESCOP", buf, sizeof buf), AIAPREP_OK);
    CHECK(strncmp(buf, "SDO/AIA", 7) == 0);

    /* ---- aiaprep_map_from_f32 / aiaprep_map_from_i16 ---- */
    AiaprepGeometry g = synthetic_geometry();
    static float px[NX * NY];
    static int16_t px16[NX * NY];
    for (int j = 0; j < NY; j++)
        for (int i = 0; i < NX; i++) {
            double r = hypot(i - 31.5, j - 31.5);
            px[j * NX + i] = (float)(r < 24.0 ? 1000.0 - 10.0 * r : 50.0);
            px16[j * NX + i] = (int16_t)px[j * NX + i];
        }
    px16[0] = -32768; /* one missing pixel */
    x = SENTINEL;
    EXPECT(aiaprep_map_from_f32(NULL, NX, NY, &g, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_map_from_f32(px, 0, NY, &g, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_map_from_f32(px, NX, 0, &g, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_map_from_f32(px, SIZE_MAX, 2, &g, &x), AIAPREP_ERR_ARGUMENT); /* nx*ny */
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    /* nx*ny fits a size_t, nx*ny*sizeof(float) does not: never read */
    EXPECT(aiaprep_map_from_f32(px, SIZE_MAX / 2, 1, &g, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_MESSAGE("too large");
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_map_from_f32((const float *)((const char *)px + 1), NX, NY - 1, &g, &x),
           AIAPREP_ERR_ARGUMENT); /* misaligned */
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_map_from_f32(px, NX, NY, NULL, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_MESSAGE("geometry is NULL");
    EXPECT_NULL_OUT(x);
    EXPECT(aiaprep_map_from_f32(px, NX, NY, &g, NULL), AIAPREP_ERR_ARGUMENT);
    AiaprepGeometry bad = g;
    bad.cdelt1 = 0.0;
    x = SENTINEL;
    EXPECT(aiaprep_map_from_f32(px, NX, NY, &bad, &x), AIAPREP_ERR_KEYWORD);
    EXPECT_MESSAGE("CDELT1");
    EXPECT_NULL_OUT(x);
    bad = g;
    bad.dsun_obs = NAN;
    x = SENTINEL;
    EXPECT(aiaprep_map_from_f32(px, NX, NY, &bad, &x), AIAPREP_ERR_KEYWORD);
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_map_from_i16(NULL, NX, NY, -32768, &g, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_map_from_i16(px16, NX, 0, -32768, &g, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_map_from_i16(px16, 2, SIZE_MAX, -32768, &g, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_map_from_i16(px16, SIZE_MAX / 2, 1, -32768, &g, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_map_from_i16(px16, NX, NY, -32768, NULL, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_NULL_OUT(x);
    EXPECT(aiaprep_map_from_i16(px16, NX, NY, -32768, &g, NULL), AIAPREP_ERR_ARGUMENT);
    EXPECT(aiaprep_map_from_f32(px, NX, NY, &g, &wrapped), AIAPREP_OK);
    EXPECT(aiaprep_map_from_i16(px16, NX, NY, -32768, &g, &wrapped16), AIAPREP_OK);
    EXPECT(aiaprep_map_dims(wrapped16, &nx, &ny), AIAPREP_OK);
    CHECK(nx == NX && ny == NY);
    {
        const float *w = aiaprep_map_data(wrapped16);
        CHECK(w != NULL && isnan(w[0]) && w[1] == (float)px16[1] && w[NX * NY - 1] == 50.0f);
        const float *f = aiaprep_map_data(wrapped);
        CHECK(f != NULL && f != px && memcmp(f, px, sizeof px) == 0); /* a copy */
    }

    /* ---- aiaprep_register ---- */
    x = SENTINEL;
    EXPECT(aiaprep_register(NULL, map, NULL, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_MESSAGE("context is NULL");
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_register(ctx, NULL, NULL, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_MESSAGE("map is NULL");
    EXPECT_NULL_OUT(x);
    EXPECT(aiaprep_register(ctx, map, NULL, NULL), AIAPREP_ERR_ARGUMENT);
    ropt = aiaprep_register_options_default();
    ropt.interpolation = (AiaprepInterpolation)42;
    x = SENTINEL;
    EXPECT(aiaprep_register(ctx, map, &ropt, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_MESSAGE("interpolation 42");
    EXPECT_NULL_OUT(x);
    ropt.interpolation = (AiaprepInterpolation)-1;
    x = SENTINEL;
    EXPECT(aiaprep_register(ctx, map, &ropt, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_NULL_OUT(x);
    ropt = aiaprep_register_options_default();
    ropt.missing_mode = 3;
    x = SENTINEL;
    EXPECT(aiaprep_register(ctx, map, &ropt, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_MESSAGE("missing_mode 3");
    EXPECT_NULL_OUT(x);
    ropt.missing_mode = -1;
    x = SENTINEL;
    EXPECT(aiaprep_register(ctx, map, &ropt, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_NULL_OUT(x);
    /* A field of view smaller than the disk: 64 px of 10 arcsec, a 975 arcsec radius. */
    bad = g;
    bad.cdelt1 = bad.cdelt2 = 10.0;
    AiaprepMap *small = NULL;
    EXPECT(aiaprep_map_from_f32(px, NX, NY, &bad, &small), AIAPREP_OK);
    x = SENTINEL;
    EXPECT(aiaprep_register(ctx, small, NULL, &x), AIAPREP_ERR_NOT_FULL_DISK);
    EXPECT_NULL_OUT(x);
    ropt = aiaprep_register_options_default();
    ropt.check_full_disk = 0; /* allowed when asked */
    EXPECT(aiaprep_register(ctx, small, &ropt, &ok), AIAPREP_OK);
    aiaprep_map_free(ok);
    ok = NULL;
    aiaprep_map_free(small);
    /* Every interpolation and missing mode on the caller's pixels. */
    for (int k = AIAPREP_INTERP_NEAREST; k <= AIAPREP_INTERP_KEYS; k++) {
        ropt = aiaprep_register_options_default();
        ropt.interpolation = (AiaprepInterpolation)k;
        ropt.missing_mode = k % 3;
        ropt.missing_value = -1.0;
        EXPECT(aiaprep_register(ctx, k % 2 ? wrapped : wrapped16, &ropt, &ok), AIAPREP_OK);
        EXPECT(aiaprep_map_get_f64(ok, "LVL_NUM", &v), AIAPREP_OK);
        CHECK(v == 1.5);
        aiaprep_map_free(ok);
        ok = NULL;
    }

    /* ---- aiaprep_deconvolve ---- */
    dopt = aiaprep_deconvolve_options_default();
    dopt.iterations = 1;
    x = SENTINEL;
    EXPECT(aiaprep_deconvolve(NULL, map, &dopt, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_deconvolve(ctx, NULL, &dopt, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_NULL_OUT(x);
    EXPECT(aiaprep_deconvolve(ctx, map, &dopt, NULL), AIAPREP_ERR_ARGUMENT);
    dopt.iterations = (uint32_t)-1; /* a negative int stored in the field */
    x = SENTINEL;
    EXPECT(aiaprep_deconvolve(ctx, map, &dopt, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_MESSAGE("iterations -1");
    EXPECT_NULL_OUT(x);
    {
        /* A channel without a PSF model (1600 A, UV). */
        AiaprepGeometry uv = g;
        AiaprepMap *uvmap = NULL;
        uv.wavelnth = 1600.0;
        EXPECT(aiaprep_map_from_f32(px, NX, NY, &uv, &uvmap), AIAPREP_OK);
        dopt.iterations = 1;
        x = SENTINEL;
        EXPECT(aiaprep_deconvolve(ctx, uvmap, &dopt, &x), AIAPREP_ERR_PSF);
        EXPECT_NULL_OUT(x);
        aiaprep_map_free(uvmap);
    }
    dopt.iterations = 0; /* the clipped input: the PSF path without the iterations' cost */
    EXPECT(aiaprep_deconvolve(ctx, wrapped, &dopt, &ok), AIAPREP_OK);
    aiaprep_map_free(ok);
    ok = NULL;

    /* ---- aiaprep_correct_degradation ---- */
    double factor = -1.0;
    x = SENTINEL;
    EXPECT(aiaprep_correct_degradation(NULL, table, &factor, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_correct_degradation(map, NULL, &factor, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_MESSAGE("table is NULL");
    EXPECT_NULL_OUT(x);
    EXPECT(aiaprep_correct_degradation(map, table, &factor, NULL), AIAPREP_ERR_ARGUMENT);
    x = SENTINEL;
    EXPECT(aiaprep_correct_degradation(map, missing, &factor, &x), AIAPREP_ERR_IO);
    EXPECT_NULL_OUT(x);
    x = SENTINEL;
    EXPECT(aiaprep_correct_degradation(map, not_fits, &factor, &x), AIAPREP_ERR_KEYWORD);
    EXPECT_NULL_OUT(x);
    x = SENTINEL; /* no DATE-OBS in a caller's map */
    EXPECT(aiaprep_correct_degradation(wrapped, table, &factor, &x), AIAPREP_ERR_KEYWORD);
    EXPECT_NULL_OUT(x);
    CHECK(factor == -1.0); /* not written by a failed call */
    EXPECT(aiaprep_correct_degradation(map, table, &factor, &ok), AIAPREP_OK);
    CHECK(factor > 0.0 && factor <= 1.0);
    EXPECT(aiaprep_map_get_f64(ok, "DEGRADAT", &v), AIAPREP_OK);
    CHECK(v == factor);
    aiaprep_map_free(ok);
    ok = NULL;
    EXPECT(aiaprep_correct_degradation(map, table, NULL, &ok), AIAPREP_OK); /* factor NULL */
    aiaprep_map_free(ok);
    ok = NULL;

    /* ---- aiaprep_estimate_error ---- */
    eopt = aiaprep_error_options_default();
    x = SENTINEL;
    EXPECT(aiaprep_estimate_error(NULL, NULL, &eopt, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_NULL_OUT(x);
    EXPECT(aiaprep_estimate_error(map, NULL, &eopt, NULL), AIAPREP_ERR_ARGUMENT);
    x = SENTINEL;
    EXPECT(aiaprep_estimate_error(map, missing, &eopt, &x), AIAPREP_ERR_IO);
    EXPECT_NULL_OUT(x);
    eopt.n_sample = 0.0;
    x = SENTINEL;
    EXPECT(aiaprep_estimate_error(map, NULL, &eopt, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_MESSAGE("n_sample");
    EXPECT_NULL_OUT(x);
    eopt.n_sample = NAN;
    x = SENTINEL;
    EXPECT(aiaprep_estimate_error(map, NULL, &eopt, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_NULL_OUT(x);
    eopt = aiaprep_error_options_default();
    eopt.include_eve = eopt.include_preflight = 1;
    x = SENTINEL;
    EXPECT(aiaprep_estimate_error(map, NULL, &eopt, &x), AIAPREP_ERR_ARGUMENT);
    EXPECT_NULL_OUT(x);
    EXPECT(aiaprep_estimate_error(map, NULL, NULL, &ok), AIAPREP_OK);
    EXPECT(aiaprep_map_get_str(ok, "EXTNAME", buf, sizeof buf), AIAPREP_OK);
    CHECK(strcmp(buf, "UNCERTAINTY") == 0);
    aiaprep_map_free(ok);
    ok = NULL;

    /* ---- the success path: read -> register -> write -> read back ---- */
    EXPECT(aiaprep_register(ctx, map, NULL, &reg), AIAPREP_OK);
    EXPECT(aiaprep_map_dims(reg, &nx, &ny), AIAPREP_OK);
    CHECK(nx == 128 && ny == 128);
    EXPECT(aiaprep_map_get_f64(reg, "CRPIX1", &v), AIAPREP_OK);
    CHECK(v == 64.5);
    EXPECT(aiaprep_write(reg, out_path, NULL), AIAPREP_OK);
    EXPECT(aiaprep_read(out_path, &back), AIAPREP_OK);
    EXPECT(aiaprep_map_get_f64(back, "LVL_NUM", &v), AIAPREP_OK);
    CHECK(v == 1.5);
    {
        /* int16 rounding of the registered pixels */
        const float *a = aiaprep_map_data(reg), *b = aiaprep_map_data(back);
        double worst = 0.0;
        for (size_t i = 0; i < nx * ny; i++)
            if (!isnan(a[i]) && !isnan(b[i]) && fabs((double)a[i] - b[i]) > worst)
                worst = fabs((double)a[i] - b[i]);
        CHECK(a != NULL && b != NULL && worst <= 0.5 + 1e-3);
    }

    /* ---- aiaprep_write ---- */
    EXPECT(aiaprep_write(NULL, out_path, NULL), AIAPREP_ERR_ARGUMENT);
    EXPECT(aiaprep_write(reg, NULL, NULL), AIAPREP_ERR_ARGUMENT);
    EXPECT(aiaprep_write(reg, out_path, NULL), AIAPREP_ERR_OUTPUT_EXISTS); /* no overwrite */
    EXPECT_MESSAGE("out_lev15.fits");
    wopt = aiaprep_write_options_default();
    wopt.overwrite = 1;
    wopt.dtype = 2;
    EXPECT(aiaprep_write(reg, out_path, &wopt), AIAPREP_ERR_ARGUMENT);
    EXPECT_MESSAGE("dtype 2");
    wopt.dtype = -1;
    EXPECT(aiaprep_write(reg, out_path, &wopt), AIAPREP_ERR_ARGUMENT);
    wopt.dtype = 0;
    wopt.compress = 5;
    EXPECT(aiaprep_write(reg, out_path, &wopt), AIAPREP_ERR_ARGUMENT);
    EXPECT_MESSAGE("compress 5");
    wopt.compress = 0;
    EXPECT(aiaprep_write(reg, no_dir, &wopt), AIAPREP_ERR_IO);
    EXPECT(aiaprep_write(reg, under_file, &wopt), AIAPREP_ERR_IO);
    EXPECT(aiaprep_write(reg, tmp, &wopt), AIAPREP_ERR_IO); /* a directory */
    EXPECT(aiaprep_write(reg, "\xff.fits", &wopt), AIAPREP_ERR_ARGUMENT);
    {
        /* Never over the map's own input file, even with overwrite. */
        AiaprepMap *copy = NULL;
        EXPECT(aiaprep_read(input_copy, &copy), AIAPREP_OK);
        EXPECT(aiaprep_write(copy, input_copy, &wopt), AIAPREP_ERR_OUTPUT_EXISTS);
        size_t n = 0;
        unsigned char *after = read_file(input_copy, &n);
        CHECK(n == in_len && memcmp(after, in_bytes, n) == 0);
        free(after);
        aiaprep_map_free(copy);
    }
    wopt.dtype = 1;
    wopt.compress = 1;
    EXPECT(aiaprep_write(reg, out_f32, &wopt), AIAPREP_OK);
    EXPECT(aiaprep_write(reg, out_f32, &wopt), AIAPREP_OK); /* overwrite = 1 */

    /* ---- free everything ---- */
    aiaprep_map_free(back);
    aiaprep_map_free(reg);
    aiaprep_map_free(wrapped16);
    aiaprep_map_free(wrapped);
    aiaprep_map_free(map);
    aiaprep_context_free(ctx);
    aiaprep_map_free(NULL);
    aiaprep_context_free(NULL);

    remove(out_path);
    remove(out_f32);
    remove(not_fits);
    remove(empty);
    remove(trunc_data);
    remove(trunc_header);
    remove(input_copy);
    remove(not_aia);
    free(in_bytes);
    char *paths[] = {input, plain, not_aia, table, missing, not_fits, empty, trunc_data, trunc_header,
                     input_copy, out_path, out_f32, under_file, no_dir};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) free(paths[i]);

    printf("abi_errors: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
