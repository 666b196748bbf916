/* libcufft.so of one emulated cuFFT version (-DCUFFT_VERSION=11400 for CUDA 12's, 12000 for
 * CUDA 13's, which has no Volta kernels); the transforms are done by the softcuda core. */
typedef int cufftHandle;
typedef int cufftResult;
typedef int cufftType;

extern int softcuda_cufft_plan2d(int version, cufftHandle *plan, int nx, int ny, cufftType type);
extern int softcuda_cufft_set_stream(cufftHandle plan, unsigned long long stream);
extern int softcuda_cufft_exec(cufftHandle plan, cufftType type, unsigned long long in,
                               unsigned long long out);
extern int softcuda_cufft_destroy(cufftHandle plan);

cufftResult cufftGetVersion(int *version) {
    if (!version) return 4;
    *version = CUFFT_VERSION;
    return 0;
}
cufftResult cufftPlan2d(cufftHandle *plan, int nx, int ny, cufftType type) {
    return softcuda_cufft_plan2d(CUFFT_VERSION, plan, nx, ny, type);
}
cufftResult cufftSetStream(cufftHandle plan, void *stream) {
    return softcuda_cufft_set_stream(plan, (unsigned long long)stream);
}
cufftResult cufftDestroy(cufftHandle plan) { return softcuda_cufft_destroy(plan); }
cufftResult cufftExecR2C(cufftHandle plan, float *in, void *out) {
    return softcuda_cufft_exec(plan, 0x2a, (unsigned long long)in, (unsigned long long)out);
}
cufftResult cufftExecC2R(cufftHandle plan, void *in, float *out) {
    return softcuda_cufft_exec(plan, 0x2c, (unsigned long long)in, (unsigned long long)out);
}
cufftResult cufftExecD2Z(cufftHandle plan, double *in, void *out) {
    return softcuda_cufft_exec(plan, 0x6a, (unsigned long long)in, (unsigned long long)out);
}
cufftResult cufftExecZ2D(cufftHandle plan, void *in, double *out) {
    return softcuda_cufft_exec(plan, 0x6c, (unsigned long long)in, (unsigned long long)out);
}
