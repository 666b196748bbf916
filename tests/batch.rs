//! The batch pipeline as a library: several compute workers for an engine that asks for
//! them (as the GPU engine does, one per CUDA stream), the same outputs as one worker, and
//! the occupancy report.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

mod common;

use aiaprep::batch::{self, BatchOptions, NoProgress, Status};
use aiaprep::deconvolve::DeconvolveOptions;
use aiaprep::engine::{CpuEngine, Engine, Engines};
use aiaprep::fits;
use aiaprep::lanes::LanePool;
use aiaprep::map::{AiaMap, MapView};
use aiaprep::pipeline::PrepOptions;
use aiaprep::register::RegisterOptions;
use aiaprep::Result;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("aiaprep-batch-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `n` synthetic level-1 files (128², RICE) in `dir/in`.
fn inputs(dir: &Path, n: usize) -> Vec<PathBuf> {
    common::synth_inputs(dir, n, 128, 700, 10)
}

/// An engine with `lanes` lanes in front of the CPU engine, like the GPU engine's streams:
/// it asks for that many concurrent callers and records how many it saw at once. The
/// first call waits (up to 20 s) for a second one, so a batch that ran one compute worker
/// where the engine asked for several would show `most == 1`.
struct LaneEngine {
    lanes: LanePool<usize>,
    inside: AtomicUsize,
    most: AtomicUsize,
    met: (Mutex<bool>, Condvar),
}

impl LaneEngine {
    fn new(lanes: usize) -> LaneEngine {
        LaneEngine {
            lanes: LanePool::new(0, (1..lanes).collect()),
            inside: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            met: (Mutex::new(false), Condvar::new()),
        }
    }

    fn call<T>(&self, f: impl FnOnce() -> T) -> T {
        let _lane = self.lanes.acquire();
        let n = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(n, Ordering::SeqCst);
        {
            let (m, cv) = &self.met;
            let mut met = m.lock().unwrap();
            if n >= 2 {
                *met = true;
                cv.notify_all();
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            while !*met && Instant::now() < deadline {
                met = cv.wait_timeout(met, Duration::from_millis(50)).unwrap().0;
            }
        }
        let r = f();
        self.inside.fetch_sub(1, Ordering::SeqCst);
        r
    }
}

impl Engine for LaneEngine {
    fn name(&self) -> String {
        format!("lanes x{}", self.lanes.len())
    }
    fn deconvolve(&self, map: MapView<'_>, opts: &DeconvolveOptions) -> Result<AiaMap> {
        self.call(|| CpuEngine.deconvolve(map, opts))
    }
    fn register_planned(
        &self,
        map: MapView<'_>,
        plan: &aiaprep::register::Plan,
        opts: &RegisterOptions,
    ) -> Result<AiaMap> {
        self.call(|| CpuEngine.register_planned(map, plan, opts))
    }
    fn concurrency(&self) -> usize {
        self.lanes.len()
    }
    fn device_busy(&self) -> Option<(Duration, usize)> {
        Some((self.lanes.busy(), self.lanes.len()))
    }
}

fn engines(e: Arc<dyn Engine>) -> Engines {
    Engines {
        deconvolve: e.clone(),
        register: e,
        description: "test engines".into(),
    }
}

fn bopts(compute_workers: Option<usize>) -> BatchOptions {
    BatchOptions {
        decode_threads: 2,
        encode_threads: 2,
        compute_workers,
        queue_depth: 2,
    }
}

#[test]
fn compute_workers_follow_the_engine_unless_set() {
    let lanes: Arc<dyn Engine> = Arc::new(LaneEngine::new(3));
    let cpu: Arc<dyn Engine> = Arc::new(CpuEngine);
    let opts = PrepOptions::default();
    assert_eq!(
        bopts(None).compute_workers_for(&opts, &engines(cpu.clone())),
        1
    );
    assert_eq!(
        bopts(None).compute_workers_for(&opts, &engines(lanes.clone())),
        3
    );
    assert_eq!(
        bopts(Some(5)).compute_workers_for(&opts, &engines(cpu.clone())),
        5
    );
    assert_eq!(
        bopts(Some(0)).compute_workers_for(&opts, &engines(cpu.clone())),
        1
    );
    // GPU deconvolution + CPU register: the deconvolving engine counts only when used.
    let mixed = Engines {
        deconvolve: lanes,
        register: cpu,
        description: "mixed".into(),
    };
    assert_eq!(bopts(None).compute_workers_for(&opts, &mixed), 1);
    let with_deconv = PrepOptions {
        deconvolve: Some(DeconvolveOptions::default()),
        ..PrepOptions::default()
    };
    assert_eq!(bopts(None).compute_workers_for(&with_deconv, &mixed), 3);
}

#[test]
fn several_compute_workers_give_the_same_outputs_and_report_occupancy() {
    let dir = tmpdir("lanes");
    let ins = inputs(&dir, 6);
    let opts = PrepOptions::default();
    let cancel = AtomicBool::new(false);

    // Reference: the CPU engine, one compute worker.
    let out1 = dir.join("one");
    std::fs::create_dir_all(&out1).unwrap();
    let cpu = engines(Arc::new(CpuEngine));
    let s1 = batch::run(&ins, &out1, &opts, &cpu, &bopts(None), &NoProgress, &cancel);
    assert_eq!(s1.count(Status::Done), 6, "{:?}", s1.records);
    let names: Vec<_> = s1.stages.iter().map(|s| (s.name, s.workers)).collect();
    assert_eq!(names, [("decode", 2), ("compute", 1), ("encode", 2)]);

    // Three lanes: three compute workers, and calls did overlap.
    let out3 = dir.join("three");
    std::fs::create_dir_all(&out3).unwrap();
    let lane_engine = Arc::new(LaneEngine::new(3));
    let e3 = engines(lane_engine.clone());
    let s3 = batch::run(&ins, &out3, &opts, &e3, &bopts(None), &NoProgress, &cancel);
    assert_eq!(s3.count(Status::Done), 6, "{:?}", s3.records);
    let most = lane_engine.most.load(Ordering::SeqCst);
    assert!(
        (2..=3).contains(&most),
        "at most {most} concurrent engine calls"
    );
    let names: Vec<_> = s3.stages.iter().map(|s| (s.name, s.workers)).collect();
    assert_eq!(
        names,
        [("decode", 2), ("compute", 3), ("encode", 2), ("device", 3)]
    );

    // Same pixels whichever the number of workers (records are in input order).
    for (a, b) in s1.records.iter().zip(&s3.records) {
        assert_eq!(a.input, b.input);
        let (ma, mb) = (
            fits::read(&a.output).unwrap(),
            fits::read(&b.output).unwrap(),
        );
        assert_eq!(ma.data.dim(), mb.data.dim());
        let same = ma
            .data
            .iter()
            .zip(mb.data.iter())
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()));
        assert!(same, "{} differs", b.output.display());
    }

    // Occupancy: every stage worked, none above 100 % (busy time is within the wall time
    // of each worker), and the device time is the time the lanes were held.
    for s in [&s1, &s3] {
        for st in &s.stages {
            let o = st.occupancy(s.wall);
            assert!(st.busy > Duration::ZERO, "{st:?}");
            assert!(o > 0.0 && o <= 1.0 + 1e-6, "{st:?}: {o}");
        }
        let (name, o) = s.bottleneck().unwrap();
        let top = s
            .stages
            .iter()
            .map(|st| st.occupancy(s.wall))
            .fold(0.0f64, f64::max);
        assert_eq!(o, top);
        assert!(s.occupancy_line().ends_with(&format!("limited by {name}")));
        let json = s.to_json();
        assert!(json.contains("\"bottleneck\": \""), "{json}");
        for st in &s.stages {
            assert!(json.contains(&format!("\"{}\": {{\"workers\": {}", st.name, st.workers)));
        }
    }
    let device = &s3.stages[3];
    assert_eq!(device.busy, lane_engine.lanes.busy());
    // The lanes are held inside the compute workers' calls, so never longer in total.
    assert!(device.busy <= s3.stages[1].busy, "{:?}", s3.stages);
    std::fs::remove_dir_all(&dir).unwrap();
}
