/* libcuda.so of one emulated installation: the driver version and the device model, given
 * to the softcuda core before anything else runs. Everything else resolves in the core
 * (libaiaprep_softcuda.so, a dependency of this library). cuEventElapsedTime_v2 exists only
 * in drivers of CUDA 12.8 and later, so only those shims export it.
 *
 * Built by scripts/softcuda.sh with -DSOFTCUDA_DRIVER_VERSION=12020 -DSOFTCUDA_MODEL="v100". */
extern void softcuda_configure_driver(int version, const char *model);

__attribute__((constructor)) static void softcuda_shim_init(void) {
    softcuda_configure_driver(SOFTCUDA_DRIVER_VERSION, SOFTCUDA_MODEL);
}

#if SOFTCUDA_DRIVER_VERSION >= 12080
typedef void *CUevent;
extern int cuEventElapsedTime(float *ms, CUevent start, CUevent end);
int cuEventElapsedTime_v2(float *ms, CUevent start, CUevent end) {
    return cuEventElapsedTime(ms, start, end);
}
#endif
