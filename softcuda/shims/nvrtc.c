/* libnvrtc.so of one emulated NVRTC version (-DNVRTC_MAJOR=12 -DNVRTC_MINOR=9): its version
 * and architecture list; compilation is done by the softcuda core. */
#include <stddef.h>

typedef int nvrtcResult;
typedef void *nvrtcProgram;

extern int softcuda_nvrtc_archs(int major, int *n, int *out);
extern int softcuda_nvrtc_create(size_t *prog, const char *src, const char *name, int n,
                                 const char *const *headers, const char *const *names);
extern int softcuda_nvrtc_destroy(size_t *prog);
extern int softcuda_nvrtc_compile(int major, int minor, size_t prog, int n, const char *const *opts);
extern int softcuda_nvrtc_ptx_size(size_t prog, size_t *size);
extern int softcuda_nvrtc_ptx(size_t prog, char *buf);
extern int softcuda_nvrtc_cubin_size(size_t prog, size_t *size);
extern int softcuda_nvrtc_cubin(size_t prog, char *buf);
extern int softcuda_nvrtc_log_size(size_t prog, size_t *size);
extern int softcuda_nvrtc_log(size_t prog, char *buf);
extern const char *softcuda_nvrtc_error_string(int code);

nvrtcResult nvrtcVersion(int *major, int *minor) {
    if (!major || !minor) return 3;
    *major = NVRTC_MAJOR;
    *minor = NVRTC_MINOR;
    return 0;
}
nvrtcResult nvrtcGetNumSupportedArchs(int *n) { return softcuda_nvrtc_archs(NVRTC_MAJOR, n, NULL); }
nvrtcResult nvrtcGetSupportedArchs(int *archs) {
    int n;
    return softcuda_nvrtc_archs(NVRTC_MAJOR, &n, archs);
}
nvrtcResult nvrtcCreateProgram(nvrtcProgram *prog, const char *src, const char *name, int n,
                               const char *const *headers, const char *const *names) {
    return softcuda_nvrtc_create((size_t *)prog, src, name, n, headers, names);
}
nvrtcResult nvrtcDestroyProgram(nvrtcProgram *prog) { return softcuda_nvrtc_destroy((size_t *)prog); }
nvrtcResult nvrtcCompileProgram(nvrtcProgram prog, int n, const char *const *opts) {
    return softcuda_nvrtc_compile(NVRTC_MAJOR, NVRTC_MINOR, (size_t)prog, n, opts);
}
nvrtcResult nvrtcGetPTXSize(nvrtcProgram prog, size_t *size) { return softcuda_nvrtc_ptx_size((size_t)prog, size); }
nvrtcResult nvrtcGetPTX(nvrtcProgram prog, char *buf) { return softcuda_nvrtc_ptx((size_t)prog, buf); }
nvrtcResult nvrtcGetCUBINSize(nvrtcProgram prog, size_t *size) { return softcuda_nvrtc_cubin_size((size_t)prog, size); }
nvrtcResult nvrtcGetCUBIN(nvrtcProgram prog, char *buf) { return softcuda_nvrtc_cubin((size_t)prog, buf); }
nvrtcResult nvrtcGetProgramLogSize(nvrtcProgram prog, size_t *size) { return softcuda_nvrtc_log_size((size_t)prog, size); }
nvrtcResult nvrtcGetProgramLog(nvrtcProgram prog, char *buf) { return softcuda_nvrtc_log((size_t)prog, buf); }
const char *nvrtcGetErrorString(nvrtcResult r) { return softcuda_nvrtc_error_string(r); }
