/* Minimal C use of the aiaprep C ABI: prep INPUT OUTPUT
 * Reads a level-1 FITS file, registers it to level 1.5 with the default options (cubic
 * B-spline, missing = min, full-disk check) and writes an int16 FITS file. Prints the output
 * geometry. Exits non-zero with the library's message on failure. */
#include <stdio.h>
#include "aiaprep.h"

static int fail(const char *what) {
    const char *msg = aiaprep_last_error();
    fprintf(stderr, "prep: %s: %s\n", what, msg ? msg : "unknown error");
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s INPUT OUTPUT\n", argv[0]);
        return 2;
    }
    AiaprepContext *ctx = NULL;
    AiaprepMap *in = NULL, *out = NULL;
    int rc = 1;
    if (aiaprep_context_new(AIAPREP_BACKEND_AUTO, &ctx) != AIAPREP_OK) return fail("context");
    if (aiaprep_read(argv[1], &in) != AIAPREP_OK) { rc = fail("read"); goto done; }
    AiaprepRegisterOptions ropt = aiaprep_register_options_default();
    if (aiaprep_register(ctx, in, &ropt, &out) != AIAPREP_OK) { rc = fail("register"); goto done; }
    AiaprepWriteOptions wopt = aiaprep_write_options_default();
    wopt.overwrite = 1;
    if (aiaprep_write(out, argv[2], &wopt) != AIAPREP_OK) { rc = fail("write"); goto done; }
    size_t nx = 0, ny = 0;
    double crpix1 = 0, cdelt1 = 0, lvl = 0;
    if (aiaprep_map_dims(out, &nx, &ny) != AIAPREP_OK) { rc = fail("dims"); goto done; }
    if (aiaprep_map_get_f64(out, "CRPIX1", &crpix1) != AIAPREP_OK ||
        aiaprep_map_get_f64(out, "CDELT1", &cdelt1) != AIAPREP_OK ||
        aiaprep_map_get_f64(out, "LVL_NUM", &lvl) != AIAPREP_OK) { rc = fail("header"); goto done; }
    const float *px = aiaprep_map_data(out);
    double sum = 0;
    size_t n = 0;
    for (size_t i = 0; i < nx * ny; i++) {
        if (px[i] == px[i]) { sum += px[i]; n++; }
    }
    printf("aiaprep %s: %zux%zu CRPIX1=%.3f CDELT1=%.6f LVL_NUM=%.1f mean=%.6f\n",
           aiaprep_version(), nx, ny, crpix1, cdelt1, lvl, n ? sum / (double)n : 0.0);
    rc = 0;
done:
    aiaprep_map_free(out);
    aiaprep_map_free(in);
    aiaprep_context_free(ctx);
    return rc;
}
