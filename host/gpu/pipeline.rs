//! A chained GPU pipeline that keeps one image on the device from the int16 upload to
//! the download: int16 → f32 (BLANK → NaN) → optional Richardson–Lucy with a cached OTF →
//! register → int16 (or f32) → statistics → download, with every stage timed by CUDA
//! events.
//!
//! The OTF cache is keyed by `(channel, ny, nx)`; the PSF is synthesised on the GPU from
//! [`PsfParams::aia`] the first time a channel is seen, or supplied by the caller with
//! [`GpuPipeline::set_psf`]. Work is issued on the device's single stream; overlapping
//! the transfers of image k+1 with the compute of image k (two handles / streams, pinned
//! buffers) is left to the batch driver.

use std::collections::HashMap;
use std::sync::Arc;

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaEvent, CudaSlice};
use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result, Source};

use super::buffer::{self, alloc, download_vec, upload};
use super::convert::{
    device_f32_to_i16, device_i16_to_f32, device_stats_f32, device_stats_i16, I16Scaling, Stats,
};
use super::deconvolve::{
    deconvolve_device, otf_from_device_psf, otf_from_psf, DeconvolveParams, Otf,
};
use super::device::{gpu_err, GpuDevice};
use super::psf::{psf_device, PsfParams};
use super::register::{register_device, RegisterParams};
use super::{DeviceImage, PinnedBuffer};

/// Output pixel type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputKind {
    /// int16, round half away from zero, saturated, NaN → −32768 (BLANK).
    #[default]
    I16,
    /// f32 with NaN = missing.
    F32,
}

/// Register settings of a pipeline job.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterJob {
    /// Geometry and interpolation; `missing` and `clip` are replaced when the flags below
    /// ask for the aiapy defaults.
    pub params: RegisterParams,
    /// Use `nanmin` of the (deconvolved) image as `missing` (aiapy default).
    pub missing_from_data: bool,
    /// Clip to the input range `[min, max]` (including `missing` when padded), as sunpy.
    pub clip_to_input: bool,
}

/// One image's work.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Channel in Å (the OTF cache key).
    pub channel: u32,
    /// How stored int16 values map to DN.
    pub scaling: I16Scaling,
    /// Deconvolve first (level 1.6) with these options.
    pub deconvolve: Option<DeconvolveParams>,
    /// Register (level 1.5).
    pub register: Option<RegisterJob>,
    /// Output pixel type.
    pub output: OutputKind,
}

/// Milliseconds per stage, measured with CUDA events on the device stream (0 for stages
/// not run). `total_ms` spans upload start to download end.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    /// Host → device copy of the int16 image.
    pub upload_ms: f32,
    /// int16 → f32.
    pub convert_in_ms: f32,
    /// Richardson–Lucy (including the first-use OTF/PSF if it had to be made).
    pub deconvolve_ms: f32,
    /// Register (statistics, NaN handling, prefilter, resample).
    pub register_ms: f32,
    /// f32 → int16 (0 for f32 output).
    pub convert_out_ms: f32,
    /// Output statistics (DATAMIN/DATAMAX/DATAMEAN).
    pub stats_ms: f32,
    /// Device → host copy.
    pub download_ms: f32,
    /// Whole job.
    pub total_ms: f32,
}

/// The pixels a job produced.
#[derive(Debug, Clone, PartialEq)]
pub enum PipelineOutput {
    /// int16 (BLANK = −32768).
    I16(Array2<i16>),
    /// f32 (NaN = missing).
    F32(Array2<f32>),
}

/// A finished job.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineResult {
    /// Output pixels, `[row, col]`.
    pub data: PipelineOutput,
    /// Statistics of the output pixels (for DATAMIN/DATAMAX/DATAMEAN).
    pub stats: Stats,
    /// Per-stage device times.
    pub times: StageTimes,
}

/// The chained GPU pipeline with its per-`(channel, ny, nx)` OTF cache.
pub struct GpuPipeline<'d> {
    dev: &'d GpuDevice,
    otfs: HashMap<(u32, usize, usize), Arc<Otf>>,
}

struct Timer<'a> {
    dev: &'a GpuDevice,
    marks: Vec<CudaEvent>,
}

impl<'a> Timer<'a> {
    fn new(dev: &'a GpuDevice) -> Timer<'a> {
        Timer {
            dev,
            marks: Vec::new(),
        }
    }
    /// Records an event now.
    fn mark(&mut self) -> Result<()> {
        let e = self
            .dev
            .ctx
            .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(|e| gpu_err("cuEventCreate", e))?;
        e.record(&self.dev.stream)
            .map_err(|e| gpu_err("cuEventRecord", e))?;
        self.marks.push(e);
        Ok(())
    }
    /// Stage times from the eight marks: start, uploaded, converted, deconvolved,
    /// registered, converted out, statistics, downloaded.
    fn stage_times(&self) -> Result<StageTimes> {
        if self.marks.len() != 8 {
            return Err(gpu_err(
                "pipeline timer",
                format!("{} marks", self.marks.len()),
            ));
        }
        Ok(StageTimes {
            upload_ms: self.ms(0, 1)?,
            convert_in_ms: self.ms(1, 2)?,
            deconvolve_ms: self.ms(2, 3)?,
            register_ms: self.ms(3, 4)?,
            convert_out_ms: self.ms(4, 5)?,
            stats_ms: self.ms(5, 6)?,
            download_ms: self.ms(6, 7)?,
            total_ms: self.ms(0, 7)?,
        })
    }
    fn ms(&self, a: usize, b: usize) -> Result<f32> {
        super::device::event_elapsed_ms(&self.marks[a], &self.marks[b])
    }
}

impl<'d> GpuPipeline<'d> {
    /// A pipeline on `dev` with an empty OTF cache.
    pub fn new(dev: &'d GpuDevice) -> GpuPipeline<'d> {
        GpuPipeline {
            dev,
            otfs: HashMap::new(),
        }
    }

    /// The device.
    pub fn device(&self) -> &GpuDevice {
        self.dev
    }

    /// Uses this centred PSF for `channel` (replacing a cached OTF of the same shape).
    pub fn set_psf(&mut self, channel: u32, psf: ArrayView2<f64>) -> Result<()> {
        let (ny, nx) = psf.dim();
        let otf = otf_from_psf(self.dev, psf)?;
        self.otfs.insert((channel, ny, nx), Arc::new(otf));
        Ok(())
    }

    /// The cached OTF for `channel` at `ny x nx`, synthesising the aiapy PSF on the GPU
    /// on first use (default core; 4096² grids only).
    pub fn otf(&mut self, channel: u32, ny: usize, nx: usize) -> Result<Arc<Otf>> {
        if let Some(o) = self.otfs.get(&(channel, ny, nx)) {
            return Ok(o.clone());
        }
        let mut p = PsfParams::aia(channel, false).ok_or_else(|| Error::NoPsfModel {
            file: Source::memory(),
            channel: channel.to_string(),
        })?;
        if ny != nx {
            return Err(Error::Shape {
                file: Source::memory(),
                reason: format!("the AIA PSF model is square; image is {ny} x {nx}"),
            });
        }
        p.n = nx;
        let psf = psf_device(self.dev, &p)?;
        let otf = Arc::new(otf_from_device_psf(self.dev, &psf, nx, ny)?);
        self.otfs.insert((channel, ny, nx), otf.clone());
        Ok(otf)
    }

    /// Convert in, deconvolve, register: marks 2, 3, 4 of `t`.
    fn process(
        &mut self,
        raw: &CudaSlice<i16>,
        nx: usize,
        ny: usize,
        job: &Job,
        t: &mut Timer,
    ) -> Result<DeviceImage> {
        let dev = self.dev;
        let n = nx * ny;
        let mut f = alloc::<f32>(dev, n, "f32 image")?;
        device_i16_to_f32(dev, raw, n, &mut f, &job.scaling)?;
        t.mark()?;
        let mut img = DeviceImage { data: f, nx, ny };
        if let Some(dp) = &job.deconvolve {
            let otf = self.otf(job.channel, ny, nx)?;
            img = deconvolve_device(dev, img, &otf, dp)?;
        }
        t.mark()?;
        if let Some(rj) = &job.register {
            let mut p = rj.params.clone();
            if rj.missing_from_data || rj.clip_to_input {
                let st = device_stats_f32(dev, &img.data, img.len())?;
                if st.count == 0 {
                    return Err(Error::InvalidOption {
                        file: Source::memory(),
                        reason: "register: every pixel is missing".into(),
                    });
                }
                if rj.missing_from_data {
                    p.missing = st.min as f32;
                }
                if rj.clip_to_input {
                    let (mut lo, mut hi) = (st.min as f32, st.max as f32);
                    if p.pad != (0, 0) {
                        lo = lo.min(p.missing);
                        hi = hi.max(p.missing);
                    }
                    p.clip = Some((lo, hi));
                }
            }
            img = register_device(dev, img, &p)?;
        }
        t.mark()?;
        Ok(img)
    }

    /// Runs `job` on an int16 level-1 image (`[row, col]`).
    pub fn run_i16(&mut self, data: ArrayView2<i16>, job: &Job) -> Result<PipelineResult> {
        let dev = self.dev;
        let (ny, nx) = data.dim();
        let host = buffer::contiguous(&data);
        let mut t = Timer::new(dev);
        t.mark()?;
        let raw = upload(dev, &host, "int16 image")?;
        t.mark()?;
        let img = self.process(&raw, nx, ny, job, &mut t)?;
        drop(raw);
        let (onx, ony, on) = (img.nx, img.ny, img.len());
        let (data, stats) = match job.output {
            OutputKind::I16 => {
                let mut o = alloc::<i16>(dev, on, "int16 output")?;
                device_f32_to_i16(dev, &img.data, on, &mut o)?;
                t.mark()?;
                let st = device_stats_i16(dev, &o, on, Some(-32768))?;
                t.mark()?;
                let v = download_vec(dev, &o, on, "int16 output")?;
                t.mark()?;
                (PipelineOutput::I16(buffer::to_array(v, onx, ony)?), st)
            }
            OutputKind::F32 => {
                t.mark()?;
                let st = device_stats_f32(dev, &img.data, on)?;
                t.mark()?;
                let v = download_vec(dev, &img.data, on, "f32 output")?;
                t.mark()?;
                (PipelineOutput::F32(buffer::to_array(v, onx, ony)?), st)
            }
        };
        let times = t.stage_times()?;
        Ok(PipelineResult { data, stats, times })
    }

    /// Like [`run_i16`](Self::run_i16) with int16 output, between page-locked host
    /// buffers (the fast path for batches: DMA transfers, no staging copies). `input`
    /// holds `nx · ny` values; `output` must hold the output image; returns the output
    /// size `(nx, ny)`, its statistics and the stage times.
    pub fn run_i16_pinned(
        &mut self,
        input: &PinnedBuffer<i16>,
        nx: usize,
        ny: usize,
        job: &Job,
        output: &mut PinnedBuffer<i16>,
    ) -> Result<((usize, usize), Stats, StageTimes)> {
        let dev = self.dev;
        let n = nx * ny;
        if n == 0 || input.len() < n {
            return Err(Error::Shape {
                file: Source::memory(),
                reason: format!("pinned input holds {} values, image has {n}", input.len()),
            });
        }
        let mut t = Timer::new(dev);
        t.mark()?;
        // as long as the pinned buffer: cudarc asserts equal-or-longer destinations
        let mut raw = alloc::<i16>(dev, input.len(), "int16 image")?;
        dev.stream
            .memcpy_htod(&input.inner, &mut raw)
            .map_err(|e| gpu_err("uploading the int16 image", e))?;
        t.mark()?;
        let img = self.process(&raw, nx, ny, job, &mut t)?;
        drop(raw);
        let on = img.len();
        if output.len() < on {
            return Err(Error::Shape {
                file: Source::memory(),
                reason: format!(
                    "pinned output holds {} values, image has {on}",
                    output.len()
                ),
            });
        }
        let mut o = alloc::<i16>(dev, output.len(), "int16 output")?;
        device_f32_to_i16(dev, &img.data, on, &mut o)?;
        t.mark()?;
        let st = device_stats_i16(dev, &o, on, Some(-32768))?;
        t.mark()?;
        dev.stream
            .memcpy_dtoh(&o, &mut output.inner)
            .map_err(|e| gpu_err("downloading the int16 image", e))?;
        t.mark()?;
        dev.synchronize()?;
        Ok(((img.nx, img.ny), st, t.stage_times()?))
    }
}
