//! Archive-scale batches: an overlapped decode → compute → encode pipeline with bounded
//! queues, resumable outputs, deterministic sharding for Slurm/MPI, progress and a JSON
//! report.
//!
//! Stages: `decode_threads` workers read and check inputs; `compute_workers` run the
//! engines — by default [`Engine::concurrency`]:
//! one for the CPU engine, which parallelises inside an image with rayon, one per CUDA
//! stream for the GPU engine, so that one image's transfers overlap another's kernels —;
//! `encode_threads` workers convert and write outputs. Stages are joined by bounded
//! channels of `queue_depth` images, so memory stays bounded whatever the number of
//! inputs: at most `decode_threads + queue_depth + compute_workers + queue_depth +
//! encode_threads` images are alive at once, plus the buffers kept for reuse while the
//! batch runs (at most [`crate::buffers::IMAGE_POOL_SIZE`] `f32` and as many `i16`
//! image buffers: handing them round instead of faulting fresh pages in for each image
//! saved ≈ 10 % of a batch's time).
//!
//! Each stage's workers add up the time they spend working (not waiting on a queue); the
//! [`BatchSummary`] turns that into an **occupancy** per stage — busy time / (wall time ×
//! workers) — and, for a GPU engine, the occupancy of its streams. The stage closest to
//! 100 % is the one that limits the images/s ([`BatchSummary::bottleneck`]).
//!
//! Nothing is lost: outputs appear under their final name only when complete (the writer
//! renames a finished temporary file), a complete level-1.5 output already present is
//! skipped (unless overwriting), a failed input is recorded and the batch goes on, and a
//! cancellation flag (set by a Ctrl-C handler in the `prep` example) stops new work and lets
//! the images in flight finish or be dropped — never half-written under the output name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::engine::{Engine, Engines};
use crate::error::{Error, Source};
use crate::fits;
use crate::map::AiaMap;
use crate::pipeline::{self, PrepOptions, StageTimes};

/// One shard of a sorted input list: item `i` belongs to shard `i % count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based index of this shard.
    pub index: usize,
    /// Number of shards (≥ 1).
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    /// `K/N`, 0-based: `0/4` … `3/4`.
    fn from_str(s: &str) -> std::result::Result<Shard, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("shard '{s}' is not K/N"))?;
        let index: usize = k
            .trim()
            .parse()
            .map_err(|_| format!("shard '{s}': bad K"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("shard '{s}': bad N"))?;
        if count == 0 || index >= count {
            return Err(format!("shard '{s}': need 0 <= K < N"));
        }
        Ok(Shard { index, count })
    }
}

/// Where a shard assignment came from (for the log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSource {
    /// The shard.
    pub shard: Shard,
    /// The variables (or option) it was derived from.
    pub origin: String,
}

/// The shard of this process from the environment, in this order: Slurm job arrays
/// (`SLURM_ARRAY_TASK_ID` with `SLURM_ARRAY_TASK_COUNT`, or with
/// `SLURM_ARRAY_TASK_MIN`/`MAX`), srun/MPI ranks (`SLURM_PROCID`/`SLURM_NTASKS`,
/// `OMPI_COMM_WORLD_RANK`/`SIZE`, `PMI_RANK`/`PMI_SIZE`). `None` when none is set (or a
/// single task). `get` reads a variable (the process environment in production, a map in
/// tests).
pub fn shard_from_env(get: &dyn Fn(&str) -> Option<String>) -> Option<ShardSource> {
    let num = |k: &str| get(k).and_then(|v| v.trim().parse::<i64>().ok());
    if let Some(id) = num("SLURM_ARRAY_TASK_ID") {
        let (min, count) = match (
            num("SLURM_ARRAY_TASK_MIN"),
            num("SLURM_ARRAY_TASK_MAX"),
            num("SLURM_ARRAY_TASK_COUNT"),
        ) {
            (Some(min), Some(max), _) if max >= min => (min, max - min + 1),
            (min, _, Some(c)) => (min.unwrap_or(0), c),
            _ => (0, 0),
        };
        // With a step (1-99:2) the ids are not contiguous: the count is still the number
        // of tasks, and the ids map onto 0..count by rank among min, min+step, ...
        let step = num("SLURM_ARRAY_TASK_STEP").unwrap_or(1).max(1);
        if count > 0 {
            let idx = (id - min) / step;
            let count = if num("SLURM_ARRAY_TASK_COUNT").is_some() {
                num("SLURM_ARRAY_TASK_COUNT").unwrap_or(count)
            } else {
                (count - 1) / step + 1
            };
            if idx >= 0 && idx < count {
                return Some(ShardSource {
                    shard: Shard {
                        index: idx as usize,
                        count: count as usize,
                    },
                    origin: format!(
                        "SLURM_ARRAY_TASK_ID={id} (min {min}, step {step}, {count} tasks)"
                    ),
                });
            }
        }
    }
    for (r, s) in [
        ("SLURM_PROCID", "SLURM_NTASKS"),
        ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
        ("PMI_RANK", "PMI_SIZE"),
    ] {
        if let (Some(rank), Some(size)) = (num(r), num(s)) {
            if size > 1 && rank >= 0 && rank < size {
                return Some(ShardSource {
                    shard: Shard {
                        index: rank as usize,
                        count: size as usize,
                    },
                    origin: format!("{r}={rank}, {s}={size}"),
                });
            }
        }
    }
    None
}

/// The GPU index for this process: the node-local rank (`SLURM_LOCALID`, then
/// `OMPI_COMM_WORLD_LOCAL_RANK`, `MPI_LOCALRANKID`) modulo `n_devices`, unless
/// `CUDA_VISIBLE_DEVICES` already narrows the devices (then 0: the driver has done it).
pub fn local_device(get: &dyn Fn(&str) -> Option<String>, n_devices: usize) -> usize {
    if get("CUDA_VISIBLE_DEVICES").is_some_and(|v| !v.trim().is_empty()) || n_devices == 0 {
        return 0;
    }
    for k in [
        "SLURM_LOCALID",
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "MPI_LOCALRANKID",
    ] {
        if let Some(v) = get(k).and_then(|v| v.trim().parse::<usize>().ok()) {
            return v % n_devices;
        }
    }
    0
}

/// The inputs of one shard: sort, de-duplicate, then take every `count`-th item starting
/// at `index` (round-robin, so shards get similar mixes of dates and channels).
pub fn shard_inputs(mut inputs: Vec<PathBuf>, shard: Option<Shard>) -> Vec<PathBuf> {
    inputs.sort();
    inputs.dedup();
    match shard {
        None => inputs,
        Some(s) => inputs
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % s.count == s.index)
            .map(|(_, p)| p)
            .collect(),
    }
}

/// What happened to one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Written.
    Done,
    /// A complete level-1.5 output already existed.
    Skipped,
    /// Failed; the reason is in `error`.
    Failed,
    /// Not started or dropped because the batch was cancelled.
    Cancelled,
}

impl Status {
    fn as_str(&self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// The record of one input.
#[derive(Debug, Clone)]
pub struct Record {
    /// The input file.
    pub input: PathBuf,
    /// The output file (written, or that would have been).
    pub output: PathBuf,
    /// What happened.
    pub status: Status,
    /// Stage times (zero for stages not run).
    pub times: StageTimes,
    /// The error message, when failed.
    pub error: Option<String>,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// Batch settings.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Threads that read and decode inputs.
    pub decode_threads: usize,
    /// Threads that encode and write outputs.
    pub encode_threads: usize,
    /// Workers of the compute stage; `None` = what the engines ask for
    /// ([`Engine::concurrency`]: 1 on the CPU, the number of CUDA streams on a GPU).
    pub compute_workers: Option<usize>,
    /// Images waiting between two stages (each queue).
    pub queue_depth: usize,
}

impl BatchOptions {
    /// The compute workers for these engines: `compute_workers` if set, else the largest
    /// [`Engine::concurrency`] of the engines the options use (at least 1, at most 16).
    pub fn compute_workers_for(&self, opts: &PrepOptions, engines: &Engines) -> usize {
        let wanted = self.compute_workers.unwrap_or_else(|| {
            let reg = engines.register.concurrency();
            match opts.deconvolve {
                Some(_) => reg.max(engines.deconvolve.concurrency()),
                None => reg,
            }
        });
        wanted.clamp(1, 16)
    }
}

impl Default for BatchOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        BatchOptions {
            decode_threads: cores.clamp(1, 8),
            encode_threads: cores.clamp(1, 8),
            compute_workers: None,
            queue_depth: 2,
        }
    }
}

/// Progress events, sent as images finish (for a progress bar or log lines).
pub trait Progress: Send + Sync {
    /// One input finished (any status).
    fn finished(&self, record: &Record, done_so_far: usize, total: usize);
}

/// A progress sink that does nothing.
pub struct NoProgress;
impl Progress for NoProgress {
    fn finished(&self, _: &Record, _: usize, _: usize) {}
}

/// How busy one stage of the pipeline was.
#[derive(Debug, Clone, PartialEq)]
pub struct StageLoad {
    /// `decode`, `compute`, `encode` or `device` (the GPU engine's streams).
    pub name: &'static str,
    /// Workers (threads, or CUDA streams for `device`).
    pub workers: usize,
    /// Time spent working, summed over the workers (waiting on a queue or for a free
    /// stream is not counted).
    pub busy: Duration,
}

impl StageLoad {
    /// `busy / (wall × workers)`, in 0..=1 (up to rounding): 1 = every worker busy all
    /// the time.
    pub fn occupancy(&self, wall: Duration) -> f64 {
        self.busy.as_secs_f64() / (wall.as_secs_f64() * self.workers.max(1) as f64).max(1e-12)
    }
}

/// The batch summary.
#[derive(Debug, Clone, Default)]
pub struct BatchSummary {
    /// Records in input order.
    pub records: Vec<Record>,
    /// Wall time of the whole batch.
    pub wall: Duration,
    /// Busy time of each stage (`decode`, `compute`, `encode`, then `device` when an
    /// engine has one), for occupancy.
    pub stages: Vec<StageLoad>,
}

impl BatchSummary {
    /// Count of records with this status.
    pub fn count(&self, s: Status) -> usize {
        self.records.iter().filter(|r| r.status == s).count()
    }
    /// Images written per second of wall time.
    pub fn images_per_second(&self) -> f64 {
        self.count(Status::Done) as f64 / self.wall.as_secs_f64().max(1e-9)
    }
    /// The stage with the highest occupancy — the one that limits the throughput — and
    /// its occupancy. `None` before any work.
    pub fn bottleneck(&self) -> Option<(&'static str, f64)> {
        self.stages
            .iter()
            .map(|s| (s.name, s.occupancy(self.wall)))
            .filter(|(_, o)| *o > 0.0)
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// One line: `occupancy: decode 97% of 2, compute 41% of 1, encode 63% of 2, device
    /// 35% of 2 streams; limited by decode`.
    pub fn occupancy_line(&self) -> String {
        let parts: Vec<String> = self
            .stages
            .iter()
            .map(|s| {
                format!(
                    "{} {:.0}% of {}{}",
                    s.name,
                    100.0 * s.occupancy(self.wall),
                    s.workers,
                    if s.name == "device" { " streams" } else { "" }
                )
            })
            .collect();
        let mut line = format!("occupancy: {}", parts.join(", "));
        if let Some((name, _)) = self.bottleneck() {
            line.push_str(&format!("; limited by {name}"));
        }
        line
    }

    /// Sum of each stage's time over the written images.
    pub fn stage_totals(&self) -> Vec<(&'static str, Duration)> {
        let mut acc: Vec<(&'static str, Duration)> = Vec::new();
        for r in self.records.iter().filter(|r| r.status == Status::Done) {
            for (name, d) in r.times.stages() {
                match acc.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, t)) => *t += d,
                    None => acc.push((name, d)),
                }
            }
        }
        acc
    }
    /// `mean per image: read 74.1 ms, register 164.3 ms, ...` over the written images
    /// (stages that ran; `None` when no image was written).
    pub fn mean_stage_line(&self) -> Option<String> {
        let done = self.count(Status::Done);
        let totals = self.stage_totals();
        if done == 0 || totals.is_empty() {
            return None;
        }
        let per: Vec<String> = totals
            .iter()
            .map(|(n, d)| format!("{n} {:.1} ms", d.as_secs_f64() * 1e3 / done as f64))
            .collect();
        Some(format!("mean per image: {}", per.join(", ")))
    }

    /// The JSON report: `{"summary": {...}, "records": [{input, output, status, error,
    /// warnings, times_ms: {stage: ms}}]}`.
    pub fn to_json(&self) -> String {
        let mut s = String::from("{\n  \"summary\": {");
        s.push_str(&format!(
            "\"done\": {}, \"skipped\": {}, \"failed\": {}, \"cancelled\": {}, \"wall_s\": {:.3}, \"images_per_s\": {:.4}",
            self.count(Status::Done),
            self.count(Status::Skipped),
            self.count(Status::Failed),
            self.count(Status::Cancelled),
            self.wall.as_secs_f64(),
            self.images_per_second()
        ));
        s.push_str(", \"stages\": {");
        for (i, st) in self.stages.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&format!(
                "\"{}\": {{\"workers\": {}, \"busy_s\": {:.3}, \"occupancy\": {:.4}}}",
                st.name,
                st.workers,
                st.busy.as_secs_f64(),
                st.occupancy(self.wall)
            ));
        }
        s.push('}');
        if let Some((name, _)) = self.bottleneck() {
            s.push_str(&format!(", \"bottleneck\": \"{name}\""));
        }
        s.push_str("},\n  \"records\": [");
        for (i, r) in self.records.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!(
                "\n    {{\"input\": {}, \"output\": {}, \"status\": \"{}\", \"error\": {}, \"warnings\": [{}], \"times_ms\": {{{}}}}}",
                json_str(&r.input.to_string_lossy()),
                json_str(&r.output.to_string_lossy()),
                r.status.as_str(),
                r.error.as_deref().map_or("null".to_string(), json_str),
                r.warnings.iter().map(|w| json_str(w)).collect::<Vec<_>>().join(", "),
                r.times
                    .stages()
                    .iter()
                    .map(|(n, d)| format!("\"{n}\": {:.3}", d.as_secs_f64() * 1e3))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        s.push_str("\n  ]\n}\n");
        s
    }
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Remove temporary files left in `out_dir` by writers that no longer run (a batch killed
/// with SIGKILL, or a second Ctrl-C): names `.NAME.tmp-PID-N` whose process `PID` is gone
/// (checked through `/proc`; elsewhere nothing is removed). Returns how many were removed.
pub fn remove_stale_temporaries(out_dir: &Path) -> usize {
    if !Path::new("/proc/self").exists() {
        return 0;
    }
    let Ok(rd) = std::fs::read_dir(out_dir) else {
        return 0;
    };
    let mut n = 0;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with('.') {
            continue;
        }
        let Some((_, rest)) = name.rsplit_once(".tmp-") else {
            continue;
        };
        let Some((pid, count)) = rest.split_once('-') else {
            continue;
        };
        if pid.parse::<u32>().is_err() || count.parse::<u64>().is_err() {
            continue;
        }
        let alive = Path::new("/proc").join(pid).exists();
        if !alive && std::fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}

/// True when `path` holds a complete level-1.5 file: it opens, its image HDU says
/// `LVL_NUM = 1.5`, and the file is as long as its header says its data are.
pub fn is_complete_output(path: &Path) -> bool {
    fits::is_complete_level15(path)
}

enum Task {
    Decoded(usize, pipeline::Loaded),
    Failed(usize, Error, StageTimes),
}

/// Run a batch: `inputs` (already sharded) → outputs in `out_dir`.
///
/// Never panics on bad input; each input gets a [`Record`]. `cancel` stops the batch
/// between images (inputs not started are `Cancelled`).
pub fn run(
    inputs: &[PathBuf],
    out_dir: &Path,
    opts: &PrepOptions,
    engines: &Engines,
    bopts: &BatchOptions,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> BatchSummary {
    let t0 = Instant::now();
    // Image buffers go round decode → compute → encode → decode instead of being freed
    // and faulted in again (the pool is freed when the batch ends).
    let _recycle = crate::buffers::recycle_images();
    remove_stale_temporaries(out_dir);
    let total = inputs.len();
    let records: Mutex<Vec<Option<Record>>> = Mutex::new(vec![None; total]);
    let finished = AtomicUsize::new(0);
    let finish = |i: usize, rec: Record| {
        let n = finished.fetch_add(1, Ordering::SeqCst) + 1;
        progress.finished(&rec, n, total);
        if let Ok(mut g) = records.lock() {
            g[i] = Some(rec);
        }
    };
    let outputs: Vec<PathBuf> = inputs
        .iter()
        .map(|p| pipeline::output_path(p, out_dir))
        .collect();
    // Two inputs with the same stem would write the same output: the later ones fail.
    let mut seen: HashMap<&Path, usize> = HashMap::new();
    let mut todo: Vec<usize> = Vec::with_capacity(total);
    for i in 0..total {
        let rec = |status, error: Option<String>| Record {
            input: inputs[i].clone(),
            output: outputs[i].clone(),
            status,
            times: StageTimes::default(),
            error,
            warnings: Vec::new(),
        };
        if let Some(first) = seen.insert(outputs[i].as_path(), i) {
            finish(
                i,
                rec(
                    Status::Failed,
                    Some(format!(
                        "{}: output name {} collides with that of {}",
                        inputs[i].display(),
                        outputs[i].display(),
                        inputs[first].display()
                    )),
                ),
            );
            continue;
        }
        if !opts.write.overwrite && outputs[i].exists() {
            if is_complete_output(&outputs[i]) {
                finish(i, rec(Status::Skipped, None));
            } else {
                finish(
                    i,
                    rec(
                        Status::Failed,
                        Some(
                            Error::OutputExists {
                                file: Source::file(&outputs[i]),
                            }
                            .to_string()
                                + " (and it is not a complete level-1.5 file)",
                        ),
                    ),
                );
            }
            continue;
        }
        todo.push(i);
    }

    let next = AtomicUsize::new(0);
    let depth = bopts.queue_depth.max(1);
    let decode_threads = bopts.decode_threads.max(1);
    let compute_workers = bopts.compute_workers_for(opts, engines);
    let encode_threads = bopts.encode_threads.max(1);
    let devices = device_engines(engines, opts);
    let device_busy_before: Vec<Duration> = devices.iter().map(|d| d.0).collect();
    let busy = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
    let (dec_tx, dec_rx) = sync_channel::<Task>(depth);
    let dec_rx = Arc::new(Mutex::new(dec_rx));
    let (enc_tx, enc_rx) = sync_channel::<(usize, pipeline::Prepared, pipeline::Loaded)>(depth);
    let enc_rx = Arc::new(Mutex::new(enc_rx));
    std::thread::scope(|s| {
        for _ in 0..decode_threads {
            let dec_tx: SyncSender<Task> = dec_tx.clone();
            let (todo, next, inputs, busy) = (&todo, &next, inputs, &busy[0]);
            s.spawn(move || loop {
                if cancel.load(Ordering::SeqCst) {
                    break;
                }
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = todo.get(k) else { break };
                let t = Instant::now();
                let job = match pipeline::load(&inputs[i], opts) {
                    Ok(l) => Task::Decoded(i, l),
                    Err(e) => Task::Failed(i, e, StageTimes::default()),
                };
                add_busy(busy, t);
                if dec_tx.send(job).is_err() {
                    break;
                }
            });
        }
        drop(dec_tx);
        for _ in 0..compute_workers {
            let rx = dec_rx.clone();
            let tx = enc_tx.clone();
            let ctx = Compute {
                opts,
                engines,
                cancel,
                finish: &finish,
                inputs,
                outputs: &outputs,
                busy: &busy[1],
            };
            s.spawn(move || ctx.run(&rx, tx));
        }
        drop(enc_tx);
        for _ in 0..encode_threads {
            let rx = enc_rx.clone();
            let (outputs, inputs) = (&outputs, inputs);
            let finish = &finish;
            let busy = &busy[2];
            s.spawn(move || loop {
                let msg = match rx.lock() {
                    Ok(g) => g.recv(),
                    Err(_) => break,
                };
                let Ok((i, out, loaded)) = msg else { break };
                let t = Instant::now();
                let mut times = loaded.times;
                let warnings = loaded.warnings;
                let r = pipeline::store(out, &outputs[i], opts, engines, &mut times);
                add_busy(busy, t);
                let (status, error) = match r {
                    Ok(()) => (Status::Done, None),
                    Err(e) => (Status::Failed, Some(e.to_string())),
                };
                finish(
                    i,
                    Record {
                        input: inputs[i].clone(),
                        output: outputs[i].clone(),
                        status,
                        times,
                        error,
                        warnings,
                    },
                );
            });
        }
    });
    let mut recs: Vec<Record> = records
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| Record {
                input: inputs[i].clone(),
                output: outputs[i].clone(),
                status: Status::Cancelled,
                times: StageTimes::default(),
                error: None,
                warnings: Vec::new(),
            })
        })
        .collect();
    recs.shrink_to_fit();
    let ns = |a: &AtomicU64| Duration::from_nanos(a.load(Ordering::Relaxed));
    let mut stages = vec![
        StageLoad {
            name: "decode",
            workers: decode_threads,
            busy: ns(&busy[0]),
        },
        StageLoad {
            name: "compute",
            workers: compute_workers,
            busy: ns(&busy[1]),
        },
        StageLoad {
            name: "encode",
            workers: encode_threads,
            busy: ns(&busy[2]),
        },
    ];
    let after = device_engines(engines, opts);
    let (lanes, dbusy) = after
        .iter()
        .zip(&device_busy_before)
        .fold((0, Duration::ZERO), |(n, b), ((now, lanes), before)| {
            (n + lanes, b + now.saturating_sub(*before))
        });
    if lanes > 0 {
        stages.push(StageLoad {
            name: "device",
            workers: lanes,
            busy: dbusy,
        });
    }
    BatchSummary {
        records: recs,
        wall: t0.elapsed(),
        stages,
    }
}

/// Adds the time since `t` to a busy counter (nanoseconds).
fn add_busy(counter: &AtomicU64, t: Instant) {
    let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
    counter.fetch_add(ns, Ordering::Relaxed);
}

/// `(busy, lanes)` of each distinct engine with a device that the options use.
fn device_engines(engines: &Engines, opts: &PrepOptions) -> Vec<(Duration, usize)> {
    let mut used: Vec<&Arc<dyn Engine>> = vec![&engines.register];
    if opts.deconvolve.is_some() && !engines.one_engine() {
        used.push(&engines.deconvolve);
    }
    used.iter().filter_map(|e| e.device_busy()).collect()
}

/// What a compute worker needs.
struct Compute<'a> {
    opts: &'a PrepOptions,
    engines: &'a Engines,
    cancel: &'a AtomicBool,
    finish: &'a (dyn Fn(usize, Record) + Sync),
    inputs: &'a [PathBuf],
    outputs: &'a [PathBuf],
    busy: &'a AtomicU64,
}

impl Compute<'_> {
    /// Takes decoded images from `rx` until it is closed, runs the engines and passes the
    /// results to `tx`; failures are finished here.
    fn run(
        &self,
        rx: &Mutex<Receiver<Task>>,
        tx: SyncSender<(usize, pipeline::Prepared, pipeline::Loaded)>,
    ) {
        loop {
            let job = match rx.lock() {
                Ok(g) => g.recv(),
                Err(_) => break,
            };
            let Ok(job) = job else { break };
            let failed = |i: usize, times, error: String, warnings| {
                (self.finish)(
                    i,
                    Record {
                        input: self.inputs[i].clone(),
                        output: self.outputs[i].clone(),
                        status: Status::Failed,
                        times,
                        error: Some(error),
                        warnings,
                    },
                )
            };
            match job {
                Task::Failed(i, e, times) => failed(i, times, e.to_string(), Vec::new()),
                Task::Decoded(i, mut loaded) => {
                    if self.cancel.load(Ordering::SeqCst) {
                        continue; // recorded as cancelled
                    }
                    let t = Instant::now();
                    let map = std::mem::replace(
                        &mut loaded.map,
                        AiaMap::new(
                            ndarray::Array2::zeros((0, 0)),
                            crate::header::Header::new(),
                            Source::memory(),
                        ),
                    );
                    let mut times = loaded.times;
                    let mut warnings = std::mem::take(&mut loaded.warnings);
                    let r =
                        pipeline::prepare(map, self.opts, self.engines, &mut times, &mut warnings);
                    add_busy(self.busy, t);
                    match r {
                        Ok(out) => {
                            loaded.times = times;
                            loaded.warnings = warnings;
                            if tx.send((i, out, loaded)).is_err() {
                                break;
                            }
                        }
                        Err(e) => failed(i, times, e.to_string(), warnings),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn files(n: usize) -> Vec<PathBuf> {
        // Deliberately unsorted, with a duplicate.
        let mut v: Vec<PathBuf> = (0..n)
            .rev()
            .map(|i| PathBuf::from(format!("d/f{i:03}.fits")))
            .collect();
        v.push(PathBuf::from("d/f000.fits"));
        v
    }

    fn check_partition(shards: Vec<Vec<PathBuf>>, n: usize) {
        let mut all: Vec<PathBuf> = shards.iter().flatten().cloned().collect();
        assert_eq!(all.len(), n, "every input exactly once");
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "shards are disjoint");
        let sizes: Vec<usize> = shards.iter().map(Vec::len).collect();
        assert!(
            sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
            "{sizes:?}"
        );
    }

    #[test]
    fn slurm_array_shards_are_disjoint_and_cover() {
        let n = 23;
        let mut shards = Vec::new();
        for id in 1..=5 {
            let id = id.to_string();
            let e = env(&[
                ("SLURM_ARRAY_TASK_ID", &id),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_MAX", "5"),
            ]);
            let s = shard_from_env(&e).unwrap();
            assert_eq!(s.shard.count, 5);
            shards.push(shard_inputs(files(n), Some(s.shard)));
        }
        check_partition(shards, n);
        // COUNT without MIN/MAX: ids 0..count.
        let mut shards = Vec::new();
        for id in 0..3 {
            let id = id.to_string();
            let e = env(&[
                ("SLURM_ARRAY_TASK_ID", &id),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
            ]);
            shards.push(shard_inputs(
                files(n),
                Some(shard_from_env(&e).unwrap().shard),
            ));
        }
        check_partition(shards, n);
    }

    #[test]
    fn mpi_rank_variables_shard() {
        let n = 10;
        for (r, s) in [
            ("SLURM_PROCID", "SLURM_NTASKS"),
            ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
            ("PMI_RANK", "PMI_SIZE"),
        ] {
            let mut shards = Vec::new();
            for rank in 0..4 {
                let rank = rank.to_string();
                let e = env(&[(r, &rank), (s, "4")]);
                let sh = shard_from_env(&e).unwrap();
                assert!(sh.origin.contains(r));
                shards.push(shard_inputs(files(n), Some(sh.shard)));
            }
            check_partition(shards, n);
        }
        assert_eq!(
            shard_from_env(&env(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "1")])),
            None
        );
        assert_eq!(shard_from_env(&env(&[])), None);
    }

    #[test]
    fn explicit_shards_parse_and_partition() {
        let n = 7;
        let shards: Vec<_> = (0..3)
            .map(|k| shard_inputs(files(n), Some(format!("{k}/3").parse().unwrap())))
            .collect();
        check_partition(shards, n);
        assert!("3/3".parse::<Shard>().is_err());
        assert!("1/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
    }

    #[test]
    fn local_rank_picks_gpu_unless_visible_devices_set() {
        assert_eq!(local_device(&env(&[("SLURM_LOCALID", "3")]), 4), 3);
        assert_eq!(local_device(&env(&[("SLURM_LOCALID", "5")]), 4), 1);
        assert_eq!(
            local_device(&env(&[("OMPI_COMM_WORLD_LOCAL_RANK", "2")]), 4),
            2
        );
        assert_eq!(
            local_device(
                &env(&[("SLURM_LOCALID", "3"), ("CUDA_VISIBLE_DEVICES", "1")]),
                4
            ),
            0
        );
    }

    #[test]
    fn json_report_escapes() {
        let s = BatchSummary {
            records: vec![Record {
                input: PathBuf::from("a\"b.fits"),
                output: PathBuf::from("o.fits"),
                status: Status::Failed,
                times: StageTimes::default(),
                error: Some("x\ny".into()),
                warnings: vec![],
            }],
            wall: Duration::from_millis(1500),
            stages: Vec::new(),
        };
        let j = s.to_json();
        assert!(j.contains("\"a\\\"b.fits\""), "{j}");
        assert!(j.contains("\"x\\ny\""), "{j}");
        assert!(j.contains("\"failed\": 1"), "{j}");
    }

    /// Means over the written images only, of the stages that ran.
    #[test]
    fn mean_stage_line_averages_done_images() {
        let rec = |status, read_ms, write_ms| Record {
            input: PathBuf::from("i.fits"),
            output: PathBuf::from("o.fits"),
            status,
            times: StageTimes {
                read: Duration::from_millis(read_ms),
                write: Duration::from_millis(write_ms),
                ..StageTimes::default()
            },
            error: None,
            warnings: vec![],
        };
        let mut s = BatchSummary {
            records: vec![
                rec(Status::Done, 10, 30),
                rec(Status::Failed, 500, 0),
                rec(Status::Done, 20, 31),
            ],
            wall: Duration::from_secs(1),
            stages: Vec::new(),
        };
        assert_eq!(
            s.mean_stage_line().as_deref(),
            Some("mean per image: read 15.0 ms, write 30.5 ms")
        );
        s.records.retain(|r| r.status != Status::Done);
        assert_eq!(s.mean_stage_line(), None);
    }

    #[test]
    fn occupancy_and_bottleneck() {
        let wall = Duration::from_secs(10);
        let load = |name, workers, secs| StageLoad {
            name,
            workers,
            busy: Duration::from_secs(secs),
        };
        let s = BatchSummary {
            records: Vec::new(),
            wall,
            stages: vec![
                load("decode", 2, 19),
                load("compute", 1, 4),
                load("encode", 2, 12),
                load("device", 2, 3),
            ],
        };
        let occ: Vec<f64> = s.stages.iter().map(|st| st.occupancy(wall)).collect();
        assert_eq!(occ, [0.95, 0.4, 0.6, 0.15]);
        assert_eq!(s.bottleneck(), Some(("decode", 0.95)));
        assert_eq!(
            s.occupancy_line(),
            "occupancy: decode 95% of 2, compute 40% of 1, encode 60% of 2, \
             device 15% of 2 streams; limited by decode"
        );
        let j = s.to_json();
        assert!(
            j.contains("\"compute\": {\"workers\": 1, \"busy_s\": 4.000, \"occupancy\": 0.4000}"),
            "{j}"
        );
        assert!(j.contains("\"bottleneck\": \"decode\""), "{j}");
        // nothing ran: no bottleneck
        let idle = BatchSummary {
            stages: vec![load("decode", 2, 0)],
            ..s
        };
        assert_eq!(idle.bottleneck(), None);
    }
}
