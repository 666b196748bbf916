//! Device discovery: library probe, device selection, compute capability → NVRTC target.
//!
//! Nothing here panics when CUDA is absent: the three libraries are probed with cudarc's
//! `is_culib_present()` (a plain `dlopen` attempt) **before** any context is created, and
//! every driver call that could still panic inside cudarc (a symbol missing from an old
//! driver) runs under `catch_unwind`, so callers always get [`Error::BackendUnavailable`]
//! or [`Error::Gpu`].

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaStream};

use crate::error::{Error, Result};

use super::fft::FftCache;
use super::libraries::{Cufft, Nvrtc};
use super::module::ModuleCache;

/// NVRTC targets the GPU path compiles for (the `--gpu-architecture` value).
///
/// A fixed set because cudarc's option type wants `&'static str`, and because these are
/// the data-centre generations the project cares about: V100 (`sm_70`, CUDA ≤ 12 only),
/// T4 (`sm_75`), A100 (`sm_80`), A10/A40/RTX 30 (`sm_86`), L4/L40/RTX 40 (`sm_89`) and
/// H100/H200 (`sm_90`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    /// Volta (V100).
    Sm70,
    /// Turing (T4).
    Sm75,
    /// Ampere data centre (A100).
    Sm80,
    /// Ampere (A10, A40, RTX 30).
    Sm86,
    /// Ada (L4, L40, RTX 40).
    Sm89,
    /// Hopper (H100, H200).
    Sm90,
}

impl Arch {
    /// Every supported target, oldest first.
    pub const ALL: [Arch; 6] = [
        Arch::Sm70,
        Arch::Sm75,
        Arch::Sm80,
        Arch::Sm86,
        Arch::Sm89,
        Arch::Sm90,
    ];

    /// The NVRTC name, e.g. `"sm_90"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Sm70 => "sm_70",
            Arch::Sm75 => "sm_75",
            Arch::Sm80 => "sm_80",
            Arch::Sm86 => "sm_86",
            Arch::Sm89 => "sm_89",
            Arch::Sm90 => "sm_90",
        }
    }

    /// Compute capability `(major, minor)` of this target.
    pub fn capability(self) -> (i32, i32) {
        match self {
            Arch::Sm70 => (7, 0),
            Arch::Sm75 => (7, 5),
            Arch::Sm80 => (8, 0),
            Arch::Sm86 => (8, 6),
            Arch::Sm89 => (8, 9),
            Arch::Sm90 => (9, 0),
        }
    }

    /// The target for a device of compute capability `major.minor`: the highest target
    /// `<=` the device's, and whether it matches exactly. `None` below 7.0.
    ///
    /// Without an exact match (e.g. 7.2, 8.7, 10.0, 12.0) the GPU path loads PTX for the
    /// returned target, which the driver JIT-compiles for the actual device (PTX is
    /// forward compatible; a cubin for another major version is not).
    pub fn for_capability(major: i32, minor: i32) -> Option<(Arch, bool)> {
        let best = Arch::ALL
            .iter()
            .rev()
            .find(|a| a.capability() <= (major, minor))
            .copied()?;
        Some((best, best.capability() == (major, minor)))
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which CUDA libraries can be loaded on this machine (without touching a device), from
/// `super::libraries::found` (probed once per process and value of
/// `AIAPREP_CUDA_LIB_DIR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Libraries {
    /// The driver API, `libcuda.so` (installed with the NVIDIA driver).
    pub driver: bool,
    /// The run-time compiler, `libnvrtc.so.13` / `.12` / ... (CUDA toolkit or the PyPI
    /// wheel `nvidia-cuda-nvrtc-cu12`).
    pub nvrtc: bool,
    /// cuFFT, `libcufft.so.12` / `.11` (deconvolution and the PSF).
    pub cufft: bool,
}

impl Libraries {
    /// Which of the three libraries load.
    pub fn probe() -> Libraries {
        let f = super::libraries::found();
        Libraries {
            driver: f.driver.is_ok(),
            nvrtc: !f.nvrtc.is_empty(),
            cufft: !f.cufft.is_empty(),
        }
    }
}

pub(crate) fn unavailable(reason: String) -> Error {
    Error::BackendUnavailable { reason }
}

pub(crate) fn gpu_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Gpu {
        file: crate::error::Source::memory(),
        reason: format!("{what}: {e}"),
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Runs `f`, turning a panic inside cudarc (e.g. a driver symbol that cannot be loaded)
/// into [`Error::BackendUnavailable`].
pub(crate) fn guard<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(unavailable(format!("{what}: {}", panic_message(p)))),
    }
}

/// Milliseconds between two recorded events (`end − start`), after waiting for both.
///
/// Not cudarc's `CudaEvent::elapsed_ms`: with the `cuda-13000` bindings that calls
/// `cuEventElapsedTime_v2`, a symbol drivers export only since CUDA 12.8 (r570), so on a
/// V100 node with an older CUDA 12 driver cudarc would panic with "Missing symbol". Here
/// the `_v2` entry point is used when the driver has it, else the original
/// `cuEventElapsedTime` (same arguments, same result for two completed events).
pub(crate) fn event_elapsed_ms(
    start: &cudarc::driver::CudaEvent,
    end: &cudarc::driver::CudaEvent,
) -> Result<f32> {
    use cudarc::driver::sys::{CUevent, CUresult};
    type ElapsedFn = unsafe extern "C" fn(*mut f32, CUevent, CUevent) -> CUresult;
    start
        .synchronize()
        .and_then(|_| end.synchronize())
        .map_err(|e| gpu_err("cuEventSynchronize", e))?;
    start
        .context()
        .bind_to_thread()
        .map_err(|e| gpu_err("cuCtxSetCurrent", e))?;
    // SAFETY: the driver library is loaded (a context exists); both names have the
    // signature `CUresult (float*, CUevent, CUevent)`.
    let f: ElapsedFn = unsafe {
        let lib = cudarc::driver::sys::culib();
        match lib.get::<ElapsedFn>(ELAPSED_SYMBOLS[0]) {
            Ok(f) => *f,
            Err(_) => *lib
                .get::<ElapsedFn>(ELAPSED_SYMBOLS[1])
                .map_err(|e| unavailable(format!("cuEventElapsedTime: {e}")))?,
        }
    };
    let mut ms = 0f32;
    // SAFETY: two valid events of the current context, both recorded and complete;
    // `ms` is a valid out-pointer.
    unsafe { f(&mut ms, start.cu_event(), end.cu_event()) }
        .result()
        .map_err(|e| gpu_err("cuEventElapsedTime", e))?;
    Ok(ms)
}

/// The most freed memory the device's default pool keeps between images: an eighth of the
/// device memory, at least 256 MiB, at most 4 GiB (2 GiB on a 16 GB V100: three lanes of
/// deconvolved 4096² working sets; 4 GiB on an H100/H200).
pub fn pool_release_threshold(total: u64) -> u64 {
    (total / 8).clamp(256 << 20, 4 << 30)
}

/// The device's default memory pool, or `None` without memory pools (old drivers, or
/// `CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED` = 0: cudarc then allocates synchronously).
fn default_pool(ctx: &CudaContext) -> Result<Option<cudarc::driver::sys::CUmemoryPool>> {
    use cudarc::driver::sys;
    if !ctx.has_async_alloc() {
        return Ok(None);
    }
    ctx.bind_to_thread()
        .map_err(|e| gpu_err("cuCtxSetCurrent", e))?;
    let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
    // SAFETY: `pool` is a valid out-pointer and the device handle belongs to `ctx`.
    unsafe { sys::cuDeviceGetDefaultMemPool(&mut pool, ctx.cu_device()) }
        .result()
        .map_err(|e| gpu_err("cuDeviceGetDefaultMemPool", e))?;
    Ok(Some(pool))
}

/// Lets the device's default memory pool keep up to [`pool_release_threshold`] bytes of
/// freed memory instead of returning it to the driver at every synchronisation (the pool's
/// default release threshold is 0 bytes).
///
/// Buffers are allocated stream-ordered from that pool (`cuMemAllocAsync`), and every image
/// allocates and frees the same working set (≈ 0.6 GB for a deconvolved 4096² image): with
/// the default threshold each image maps and unmaps it again. The bound matters because the
/// pool is per device and process-wide, while cuFFT work areas and page-locked buffers are
/// allocated outside it: a pool allowed to keep everything starves them (and any host code
/// sharing the device). When an allocation still fails, [`trim_pool`] returns what the pool
/// holds and the allocation is tried once more.
fn keep_freed_memory(ctx: &CudaContext) -> Result<()> {
    use cudarc::driver::sys;
    let Some(pool) = default_pool(ctx)? else {
        return Ok(());
    };
    let total = ctx
        .mem_get_info()
        .map_err(|e| gpu_err("cuMemGetInfo", e))?
        .1 as u64;
    let mut threshold = pool_release_threshold(total);
    // SAFETY: the release threshold attribute takes a pointer to a u64 (cuuint64_t).
    unsafe {
        sys::cuMemPoolSetAttribute(
            pool,
            sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
            (&mut threshold as *mut u64).cast(),
        )
    }
    .result()
    .map_err(|e| gpu_err("cuMemPoolSetAttribute", e))
}

/// Returns the freed memory the default pool holds to the driver (before retrying an
/// allocation or a cuFFT plan that ran out of memory). Best effort.
pub(crate) fn trim_pool(ctx: &CudaContext) {
    if let Ok(Some(pool)) = default_pool(ctx) {
        // SAFETY: a valid pool handle of the current context.
        let _ = unsafe { cudarc::driver::sys::cuMemPoolTrimTo(pool, 0) };
    }
}

/// Restores the calling thread's current CUDA context when dropped: what the C ABI wraps
/// around every call, so that a host code that had its own context current (or none) finds
/// it so afterwards, whatever aiaprep bound on its thread.
pub struct ContextGuard {
    saved: Option<cudarc::driver::sys::CUcontext>,
}

impl ContextGuard {
    /// Remembers the current context (`None` when there is no usable driver).
    pub fn save() -> ContextGuard {
        use cudarc::driver::sys;
        if super::libraries::found().driver.is_err() {
            return ContextGuard { saved: None };
        }
        let saved = std::panic::catch_unwind(|| {
            let mut c: sys::CUcontext = std::ptr::null_mut();
            // SAFETY: a valid out-pointer; fails cleanly before cuInit.
            match unsafe { sys::cuCtxGetCurrent(&mut c) } {
                sys::CUresult::CUDA_SUCCESS => Some(c),
                // before cuInit no thread can have a context current
                sys::CUresult::CUDA_ERROR_NOT_INITIALIZED => Some(std::ptr::null_mut()),
                _ => None,
            }
        })
        .ok()
        .flatten();
        ContextGuard { saved }
    }
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        if let Some(c) = self.saved {
            let _ = std::panic::catch_unwind(|| {
                // SAFETY: the context that was current before (or null, which unbinds).
                let _ = unsafe { cudarc::driver::sys::cuCtxSetCurrent(c) };
            });
        }
    }
}

/// Make host threads that wait for the device (stream and event synchronisation) sleep
/// until it is done (`CU_CTX_SCHED_BLOCKING_SYNC` on the device's primary context) instead
/// of the driver's default for a process with fewer contexts than cores, which spins a
/// core per waiting thread.
///
/// Why: in a batch the compute workers spend most of their time waiting for their stream,
/// and the cores they would spin on are the ones the decode and encode stages need (RICE
/// decoding, not the GPU, limits a GPU batch's images/s). The cost is a few microseconds of
/// wake-up latency per synchronisation, against milliseconds of device work per image.
/// Left alone when the primary context is already active (another user in the process
/// chose its policy). `cuDevicePrimaryCtxSetFlags_v2` exists in every driver the GPU path
/// supports (≥ 525).
fn prefer_blocking_sync(ordinal: usize) -> Result<()> {
    use cudarc::driver::{result, sys};
    let ordinal = i32::try_from(ordinal).map_err(|_| unavailable(format!("device {ordinal}")))?;
    let dev = result::device::get(ordinal).map_err(|e| gpu_err("cuDeviceGet", e))?;
    let (mut current, mut active): (u32, i32) = (0, 0);
    // SAFETY: `dev` is a device handle from cuDeviceGet; both out-pointers are valid.
    unsafe { sys::cuDevicePrimaryCtxGetState(dev, &mut current, &mut active) }
        .result()
        .map_err(|e| gpu_err("cuDevicePrimaryCtxGetState", e))?;
    if active != 0 {
        // Somebody in this process (the HPC code around the C ABI, say) already runs on
        // the primary context: its scheduling policy is theirs to choose.
        return Ok(());
    }
    let flags = sys::CUctx_flags::CU_CTX_SCHED_BLOCKING_SYNC as u32;
    // SAFETY: as above; the call takes no pointers and only sets the scheduling flags the
    // (inactive) primary context will be created with.
    unsafe { sys::cuDevicePrimaryCtxSetFlags_v2(dev, flags) }
        .result()
        .map_err(|e| gpu_err("cuDevicePrimaryCtxSetFlags_v2", e))
}

/// Driver entry points for [`event_elapsed_ms`], preferred first (NUL-terminated).
const ELAPSED_SYMBOLS: [&[u8]; 2] = [b"cuEventElapsedTime_v2\0", b"cuEventElapsedTime\0"];

/// Number of CUDA devices visible to this process (after `CUDA_VISIBLE_DEVICES`, which
/// the driver applies). Errors when the driver library or the driver are unusable.
pub fn device_count() -> Result<usize> {
    super::libraries::found()
        .driver
        .clone()
        .map_err(unavailable)?;
    guard("cuInit / cuDeviceGetCount", || {
        CudaContext::device_count()
            .map(|n| n.max(0) as usize)
            .map_err(|e| unavailable(format!("CUDA driver: {e}")))
    })
}

/// The driver's CUDA version, e.g. 12020 for 12.2.
fn driver_version() -> Result<i32> {
    let mut v = 0;
    // SAFETY: a valid out-pointer; needs no context.
    unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut v) }
        .result()
        .map_err(|e| gpu_err("cuDriverGetVersion", e))?;
    Ok(v)
}

/// One CUDA device with its context, the stream all GPU work of this handle runs on, and
/// the per-device caches (loaded kernel modules, cuFFT plans), with the NVRTC and cuFFT
/// chosen for it at open.
///
/// All operations on one `GpuDevice` are ordered on its single stream. For concurrency,
/// [`GpuDevice::new_lane`] makes more handles on the same context, each with its own
/// stream (the GPU engine keeps one per lane). `GpuDevice` is `Send + Sync`, but its
/// operations serialise on the stream.
pub struct GpuDevice {
    pub(crate) ctx: Arc<CudaContext>,
    pub(crate) stream: Arc<CudaStream>,
    ordinal: usize,
    name: String,
    capability: (i32, i32),
    arch: Arch,
    exact_arch: bool,
    driver_version: i32,
    pub(crate) nvrtc: Arc<Nvrtc>,
    pub(crate) cufft: Arc<Cufft>,
    pub(crate) modules: Arc<ModuleCache>,
    pub(crate) ffts: FftCache,
}

impl std::fmt::Debug for GpuDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl GpuDevice {
    /// Opens visible device `ordinal` (0-based, counted after `CUDA_VISIBLE_DEVICES`) and
    /// makes sure it can do everything the GPU path needs before anything runs on it: an
    /// NVRTC that compiles for the device and whose modules this driver loads (every kernel
    /// is compiled and loaded now), and a cuFFT that creates and runs a plan on it
    /// correctly (checked with a small transform). Several installations may be visible
    /// (e.g. CUDA 12 and 13 on a V100 node): the newest that works is used
    /// (`super::libraries`).
    ///
    /// Errors: [`Error::BackendUnavailable`] when the driver, a usable NVRTC or a usable
    /// cuFFT is missing, there is no such device, its compute capability is below 7.0, or
    /// the kernels do not compile or load (the reason says which); [`Error::Gpu`] when the
    /// driver fails while creating the context. `--backend auto` falls back to the CPU on
    /// any of these, at open, with the reason.
    pub fn open(ordinal: usize) -> Result<GpuDevice> {
        let libs = super::libraries::found();
        libs.driver.clone().map_err(unavailable)?;
        guard("opening the CUDA device", || {
            Self::open_inner(ordinal, &libs)
        })
    }

    fn open_inner(ordinal: usize, libs: &super::libraries::Found) -> Result<GpuDevice> {
        let count = CudaContext::device_count()
            .map_err(|e| unavailable(format!("CUDA driver: {e}")))?
            .max(0) as usize;
        if ordinal >= count {
            return Err(unavailable(format!(
                "CUDA device {ordinal} requested but {count} visible (CUDA_VISIBLE_DEVICES={})",
                std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_else(|_| "<unset>".into())
            )));
        }
        // Best effort, before the context exists: a driver that refuses it only spins.
        let _ = guard("primary context flags", || prefer_blocking_sync(ordinal));
        let ctx = CudaContext::new(ordinal).map_err(|e| gpu_err("creating the CUDA context", e))?;
        let name = ctx.name().unwrap_or_else(|_| "<unknown>".into());
        let capability = ctx
            .compute_capability()
            .map_err(|e| gpu_err("querying the compute capability", e))?;
        let Some((arch, exact_arch)) = Arch::for_capability(capability.0, capability.1) else {
            return Err(unavailable(format!(
                "{name} has compute capability {}.{}; the GPU path needs 7.0 or newer",
                capability.0, capability.1
            )));
        };
        let driver_version = driver_version()?;
        let nvrtc = super::libraries::nvrtc_for(libs, arch, driver_version / 1000)
            .map_err(|e| unavailable(format!("{name} ({arch}): {e}")))?;
        // Every operation of a handle is ordered on its stream, and a buffer is used on the
        // stream of the handle that made it — the one exception, an OTF shared by the GPU
        // engine's lanes, is complete (its lane synchronised) before another lane reads
        // it. So cudarc's per-buffer event tracking (for multi-stream safety) is not
        // needed and only adds overhead.
        // SAFETY: no buffer of this context has been created yet; see above for the rule
        // every handle of this context ([`GpuDevice::new_lane`]) follows.
        unsafe { ctx.disable_event_tracking() };
        // Best effort: a driver without memory pools still works, only slower.
        let _ = guard("memory pool", || keep_freed_memory(&ctx));
        let stream = ctx
            .new_stream()
            .map_err(|e| gpu_err("creating a CUDA stream", e))?;
        let Some(first_cufft) = libs.cufft.first().cloned() else {
            return Err(unavailable(format!(
                "cannot load libcufft (CUDA cuFFT, needed for deconvolution and the PSF) from {}{}",
                libs.searched(),
                if libs.problems.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", libs.problems.join("; "))
                }
            )));
        };
        let mut dev = GpuDevice {
            ctx,
            stream,
            ordinal,
            name,
            capability,
            arch,
            exact_arch,
            driver_version,
            nvrtc,
            // replaced below by the cuFFT that passes its test on this device
            cufft: first_cufft,
            modules: Arc::default(),
            ffts: FftCache::default(),
        };
        dev.load_all_kernels().map_err(|e| {
            unavailable(format!(
                "{}: the kernels do not compile or load with {:?}: {e}",
                dev.name, dev.nvrtc
            ))
        })?;
        dev.cufft = dev.choose_cufft(&libs.cufft)?;
        Ok(dev)
    }

    /// The newest cuFFT (of a CUDA major version the driver supports) whose plans run
    /// correctly on this device ([`super::fft::self_test`]).
    fn choose_cufft(&self, candidates: &[Arc<Cufft>]) -> Result<Arc<Cufft>> {
        let mut why = Vec::new();
        for c in candidates {
            // cuFFT 10.x came with CUDA 11, 11.x with CUDA 12, 12.x with CUDA 13.
            let needs = c.version / 1000 + 1;
            if needs > self.driver_version / 1000 {
                why.push(format!(
                    "{c:?} needs a CUDA {needs} driver (this one is {}.{})",
                    self.driver_version / 1000,
                    self.driver_version % 1000 / 10
                ));
                continue;
            }
            match super::fft::self_test(self, c) {
                Ok(()) => return Ok(c.clone()),
                Err(e) => why.push(format!("{c:?}: {}", e.reason())),
            }
        }
        Err(unavailable(format!(
            "no cuFFT works on {} ({}): {}",
            self.name,
            self.arch,
            why.join("; ")
        )))
    }

    /// Another handle on the same device and context, with its own stream and cuFFT plans
    /// (plans are bound to a stream), sharing the loaded kernels. Work on different lanes
    /// runs concurrently (e.g. one image's transfers under another's kernels).
    ///
    /// The rule that keeps this safe with event tracking off: a device buffer is used only
    /// on the stream of the handle that allocated it, unless that handle has synchronised
    /// since its last write to it (and the buffer outlives every use).
    ///
    /// Errors: [`Error::Gpu`] when the driver cannot create the stream.
    pub fn new_lane(&self) -> Result<GpuDevice> {
        let stream = guard("creating a CUDA stream", || {
            self.ctx
                .new_stream()
                .map_err(|e| gpu_err("creating a CUDA stream", e))
        })?;
        Ok(GpuDevice {
            ctx: self.ctx.clone(),
            stream,
            ordinal: self.ordinal,
            name: self.name.clone(),
            capability: self.capability,
            arch: self.arch,
            exact_arch: self.exact_arch,
            driver_version: self.driver_version,
            nvrtc: self.nvrtc.clone(),
            cufft: self.cufft.clone(),
            modules: self.modules.clone(),
            ffts: FftCache::default(),
        })
    }

    /// The visible device index this handle was opened with.
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }

    /// Device name as the driver reports it (e.g. `NVIDIA H200`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Compute capability `(major, minor)`.
    pub fn compute_capability(&self) -> (i32, i32) {
        self.capability
    }

    /// The NVRTC target the kernels are compiled for.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// `None` when [`arch`](Self::arch) is the device's own architecture; otherwise a
    /// note saying which lower target is used (loaded as PTX and JIT-compiled).
    pub fn arch_note(&self) -> Option<String> {
        if self.exact_arch {
            None
        } else {
            Some(format!(
                "compute capability {}.{} is not in the fixed target set; using {} as PTX \
                 (JIT-compiled by the driver)",
                self.capability.0, self.capability.1, self.arch
            ))
        }
    }

    /// Whether kernels are loaded as cubin (exact target) rather than PTX.
    pub(crate) fn exact_arch(&self) -> bool {
        self.exact_arch
    }

    /// Free and total device memory in bytes.
    pub fn memory(&self) -> Result<(usize, usize)> {
        self.ctx
            .mem_get_info()
            .map_err(|e| gpu_err("cuMemGetInfo", e))
    }

    /// The driver's CUDA version (e.g. 12020 for 12.2).
    pub fn driver_version(&self) -> i32 {
        self.driver_version
    }

    /// The NVRTC the kernels are compiled with.
    pub fn nvrtc(&self) -> &Nvrtc {
        &self.nvrtc
    }

    /// The cuFFT the transforms run on.
    pub fn cufft(&self) -> &Cufft {
        &self.cufft
    }

    /// Whether this is the software device of the tests (`scripts/softcuda.sh`): its
    /// timings are not GPU timings.
    pub fn is_emulated(&self) -> bool {
        self.name.contains("softcuda")
    }

    /// One line describing the device, target and library versions.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "CUDA device {} ({}), compute capability {}.{}, target {}, driver {}.{}, NVRTC {}.{} \
             ({}), cuFFT {} ({})",
            self.ordinal,
            self.name,
            self.capability.0,
            self.capability.1,
            self.arch,
            self.driver_version / 1000,
            self.driver_version % 1000 / 10,
            self.nvrtc.version.0,
            self.nvrtc.version.1,
            self.nvrtc.path,
            self.cufft.version_string(),
            self.cufft.path
        );
        if let Some(n) = self.arch_note() {
            s.push_str("; ");
            s.push_str(&n);
        }
        s
    }

    /// Waits until all work queued on this handle's stream has finished.
    pub fn synchronize(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(|e| gpu_err("stream synchronize", e))
    }

    /// Runs `f` (which queues work on this handle's stream) between two CUDA events and
    /// returns its result with the device time in milliseconds between the events
    /// (includes any host-side gaps when `f` synchronises, e.g. to read a statistic).
    pub fn time_ms<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<(T, f32)> {
        use cudarc::driver::sys::CUevent_flags;
        let ev = || {
            self.ctx
                .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                .map_err(|e| gpu_err("cuEventCreate", e))
        };
        let (a, b) = (ev()?, ev()?);
        a.record(&self.stream)
            .map_err(|e| gpu_err("cuEventRecord", e))?;
        let out = f()?;
        b.record(&self.stream)
            .map_err(|e| gpu_err("cuEventRecord", e))?;
        let ms = event_elapsed_ms(&a, &b)?;
        Ok((out, ms))
    }

    /// The stream every operation of this handle runs on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The driver context.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_maps_to_highest_lower_target() {
        assert_eq!(Arch::for_capability(9, 0), Some((Arch::Sm90, true)));
        assert_eq!(Arch::for_capability(7, 0), Some((Arch::Sm70, true)));
        assert_eq!(Arch::for_capability(7, 2), Some((Arch::Sm70, false)));
        assert_eq!(Arch::for_capability(8, 7), Some((Arch::Sm86, false)));
        assert_eq!(Arch::for_capability(10, 0), Some((Arch::Sm90, false)));
        assert_eq!(Arch::for_capability(12, 0), Some((Arch::Sm90, false)));
        assert_eq!(Arch::for_capability(6, 1), None);
        assert_eq!(Arch::Sm86.as_str(), "sm_86");
    }

    #[test]
    fn no_call_needs_a_driver_newer_than_cuda_12_0() {
        // cudarc's CudaEvent::elapsed_ms loads cuEventElapsedTime_v2 under the cuda-13000
        // bindings (drivers >= 12.8 only) and panics on older ones: the GPU path times
        // with event_elapsed_ms instead. Scan the sources so it does not creep back.
        let sources = [
            include_str!("buffer.rs"),
            include_str!("convert.rs"),
            include_str!("deconvolve.rs"),
            include_str!("chain.rs"),
            include_str!("fft.rs"),
            include_str!("fulldisk.rs"),
            include_str!("mod.rs"),
            include_str!("libraries.rs"),
            include_str!("module.rs"),
            include_str!("psf.rs"),
            include_str!("register.rs"),
        ];
        let needle = [".elapsed", "_ms("].concat();
        for src in sources {
            assert!(!src.contains(&needle), "cudarc's elapsed_ms is used");
        }
        let own = include_str!("device.rs");
        assert_eq!(own.matches(needle.as_str()).count(), 0);
    }

    #[test]
    fn handles_can_be_shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<GpuDevice>();
        send_sync::<crate::gpu::DeviceImage>();
        send_sync::<crate::gpu::DeviceOtf>();
    }
}
