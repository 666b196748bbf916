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

mod outputs;
mod report;
mod shard;

pub use outputs::{is_complete_output, remove_stale_temporaries};
pub use report::{BatchSummary, Record, StageLoad, Status};
pub use shard::{shard_from_env, shard_inputs, Shard, ShardSource};

use crate::engine::{Engine, Engines};
use crate::error::{Error, Source};
use crate::pipeline::{self, PrepOptions, StageTimes};

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

/// A computed image on its way to the encode stage: index, pixels, stage times, warnings.
type Computed = (usize, pipeline::Prepared, StageTimes, Vec<String>);

enum Task {
    Decoded(usize, Box<pipeline::Loaded>),
    Failed(usize, Box<(Error, StageTimes)>),
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
    let (enc_tx, enc_rx) = sync_channel::<Computed>(depth);
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
                    Ok(l) => Task::Decoded(i, Box::new(l)),
                    Err(e) => Task::Failed(i, Box::new((e, StageTimes::default()))),
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
                let Ok((i, out, mut times, warnings)) = msg else {
                    break;
                };
                let t = Instant::now();
                let r = pipeline::store(out, &outputs[i], opts, engines, &mut times);
                add_busy(busy, t);
                let (status, error) = match r {
                    Ok(()) => (Status::Done, None),
                    Err(e) => (Status::Failed, Some(input_error(&inputs[i], &e))),
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

/// The message of an input's failure, naming the input: as it is when it does (nearly
/// every error names the file it is about), else with the input in front — an input's
/// channel or time missing from a table (pointing, correction, error table) is an error
/// about the table, named after the table (or `<memory>` for a built-in one).
fn input_error(input: &Path, e: &Error) -> String {
    let msg = e.to_string();
    let shown = input.display().to_string();
    if msg.contains(&shown) {
        msg
    } else {
        format!("{shown}: {msg}")
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
    fn run(&self, rx: &Mutex<Receiver<Task>>, tx: SyncSender<Computed>) {
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
                Task::Failed(i, f) => {
                    failed(i, f.1, input_error(&self.inputs[i], &f.0), Vec::new())
                }
                Task::Decoded(i, loaded) => {
                    if self.cancel.load(Ordering::SeqCst) {
                        continue; // recorded as cancelled
                    }
                    let t = Instant::now();
                    let pipeline::Loaded {
                        map,
                        plan,
                        mut times,
                        mut warnings,
                    } = *loaded;
                    let r = pipeline::prepare_planned(
                        map,
                        Some(plan),
                        self.opts,
                        self.engines,
                        &mut times,
                        &mut warnings,
                    );
                    add_busy(self.busy, t);
                    match r {
                        Ok(out) => {
                            if tx.send((i, out, times, warnings)).is_err() {
                                break;
                            }
                        }
                        Err(e) => failed(i, times, input_error(&self.inputs[i], &e), warnings),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failure is reported with its input, also when the error is about something else
    /// (a table without the input's channel).
    #[test]
    fn failures_name_their_input() {
        let input = Path::new("in/aia_1.fits");
        let about_input = Error::MissingKeyword {
            file: Source::file(input),
            key: "CRPIX1".into(),
        };
        assert_eq!(
            input_error(input, &about_input),
            "in/aia_1.fits: missing keyword CRPIX1"
        );
        let about_table = Error::InvalidOption {
            file: Source::memory(),
            reason: "channel 195 Å is not an AIA channel".into(),
        };
        assert_eq!(
            input_error(input, &about_table),
            "in/aia_1.fits: <memory>: invalid option: channel 195 Å is not an AIA channel"
        );
    }
}
