//! The `prep` example as users run it: exit codes, failures that do not stop a batch,
//! skip/overwrite/resume, reports, sharding. Runs the example binary that `cargo test`
//! builds alongside the tests (with `--test prep_cli` alone cargo does not rebuild examples:
//! run `cargo build --example prep` first).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aiaprep::fits::{self, WriteOptions};
use aiaprep::synth::{self, SynthOptions};

use common::prep_exe;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("aiaprep-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `n` small synthetic level-1 files (256², binned geometry, RICE) in `dir/in`.
fn inputs(dir: &Path, n: usize) -> Vec<PathBuf> {
    inputs_sized(dir, n, 256)
}

/// `n` synthetic level-1 files of `size`² in `dir/in`.
fn inputs_sized(dir: &Path, n: usize, size: usize) -> Vec<PathBuf> {
    common::synth_inputs(dir, n, size, 100, 20)
}

fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = common::prep_command();
    c.args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// `prep IN --out-dir OUT --backend cpu EXTRA...` (no Slurm/MPI variables).
fn run_cpu(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![s(input), "--out-dir", s(out), "--backend", "cpu"];
    args.extend_from_slice(extra);
    run(&args, &[])
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn batch_with_a_bad_file_goes_on_and_exits_1() {
    let dir = tmpdir("bad");
    let ins = inputs(&dir, 2);
    let bad = dir.join("in").join("broken.fits");
    std::fs::write(&bad, b"SIMPLE  = this is not FITS").unwrap();
    let out = dir.join("out");
    let report = dir.join("report.json");
    let r = run_cpu(&dir.join("in"), &out, &["--report", s(&report)]);
    assert_eq!(
        r.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("broken.fits"), "{err}");
    for p in &ins {
        let o = aiaprep::pipeline::output_path(p, &out);
        let m = fits::read(&o).unwrap();
        assert_eq!(m.header.get_f64("LVL_NUM"), Some(1.5));
        assert_eq!(m.data.dim(), (256, 256));
    }
    assert!(!out.join("broken_lev15.fits").exists());
    let j = std::fs::read_to_string(&report).unwrap();
    assert!(
        j.contains("\"done\": 2") && j.contains("\"failed\": 1"),
        "{j}"
    );
    assert!(
        j.contains("broken.fits") && j.contains("\"register\""),
        "{j}"
    );
    // No temporary files left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rerun_skips_complete_outputs_and_overwrite_redoes_them() {
    let dir = tmpdir("resume");
    let ins = inputs(&dir, 2);
    let out = dir.join("out");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ins.iter().map(|p| s(p).to_string()).collect();
        v.extend([
            "--out-dir".into(),
            s(&out).into(),
            "--backend".into(),
            "cpu".into(),
        ]);
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let a = args(&[]);
    let r = run(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert_eq!(r.status.code(), Some(0));
    let o0 = aiaprep::pipeline::output_path(&ins[0], &out);
    let o1 = aiaprep::pipeline::output_path(&ins[1], &out);
    let before = std::fs::read(&o0).unwrap();
    // Simulate an interrupted earlier run: one output missing, plus a stale temporary.
    std::fs::remove_file(&o1).unwrap();
    std::fs::write(out.join(".aia_01_lev15.fits.tmp-999999999-0"), b"partial").unwrap();
    let r = run(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    let so = String::from_utf8_lossy(&r.stdout);
    assert_eq!(r.status.code(), Some(0), "{so}");
    assert!(so.contains("1 done, 1 skipped"), "{so}");
    assert_eq!(
        std::fs::read(&o0).unwrap(),
        before,
        "a complete output is kept as is"
    );
    assert!(fits::is_complete_level15(&o1));
    assert!(!out.join(".aia_01_lev15.fits.tmp-999999999-0").exists());
    // A truncated file under the output name is not complete: reported, not skipped.
    let bytes = std::fs::read(&o1).unwrap();
    std::fs::write(&o1, &bytes[..bytes.len() / 2]).unwrap();
    assert!(!fits::is_complete_level15(&o1));
    let r = run(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert_eq!(r.status.code(), Some(1));
    // --overwrite redoes everything.
    let b = args(&["--overwrite"]);
    let r = run(&b.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert_eq!(r.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&r.stdout).contains("2 done"));
    assert!(fits::is_complete_level15(&o1));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shards_from_option_and_slurm_cover_the_inputs_once() {
    let dir = tmpdir("shard");
    let ins = inputs(&dir, 5);
    let listing = dir.join("list.txt");
    std::fs::write(
        &listing,
        ins.iter()
            .map(|p| s(p).to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    let at = format!("@{}", s(&listing));
    let mut seen = Vec::new();
    for k in 0..2 {
        let out = dir.join(format!("out{k}"));
        let shard = format!("{k}/2");
        let r = run(
            &[
                &at,
                "--out-dir",
                s(&out),
                "--shard",
                &shard,
                "--backend",
                "cpu",
            ],
            &[],
        );
        assert_eq!(r.status.code(), Some(0));
        seen.extend(
            std::fs::read_dir(&out)
                .unwrap()
                .flatten()
                .map(|e| e.file_name()),
        );
    }
    for id in 1..=3 {
        let out = dir.join(format!("slurm{id}"));
        let id = id.to_string();
        let r = run(
            &[&at, "--out-dir", s(&out), "--backend", "cpu"],
            &[
                ("SLURM_ARRAY_TASK_ID", &id),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_MAX", "3"),
            ],
        );
        assert_eq!(r.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&r.stderr).contains("SLURM_ARRAY_TASK_ID"));
        seen.extend(
            std::fs::read_dir(&out)
                .unwrap()
                .flatten()
                .map(|e| e.file_name()),
        );
    }
    seen.sort();
    let mut uniq = seen.clone();
    uniq.dedup();
    assert_eq!(seen.len(), 10, "each input once per scheme: {seen:?}");
    assert_eq!(uniq.len(), 5);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn usage_errors_exit_2_and_cuda_without_gpu_is_a_clear_error() {
    assert_eq!(run(&[], &[]).status.code(), Some(2));
    assert_eq!(
        run(&["--interp", "cubic", "x.fits", "--out-dir", "/tmp"], &[])
            .status
            .code(),
        Some(2)
    );
    let dir = tmpdir("usage");
    let ins = inputs(&dir, 1);
    let r = run(
        &[
            s(&ins[0]),
            "--out-dir",
            s(&dir.join("o")),
            "--backend",
            "cuda",
        ],
        &[],
    );
    assert_ne!(r.status.code(), Some(0));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("backend unavailable"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn deconvolve_save_psf_then_reuse_it() {
    let dir = tmpdir("psf");
    let ins = inputs(&dir, 1);
    let (o1, o2, psfdir) = (dir.join("o1"), dir.join("o2"), dir.join("psf"));
    // 5 iterations, float32 output, on the CPU; `extra` names the PSF handling.
    let deconvolve = |out: &Path, extra: [&str; 2]| {
        let base = [
            s(&ins[0]),
            "--out-dir",
            s(out),
            "--backend",
            "cpu",
            "--deconvolve",
        ];
        let opts = ["--iterations", "5", "--dtype", "f32"];
        let args: Vec<&str> = base.iter().chain(&opts).chain(&extra).copied().collect();
        run(&args, &[])
    };
    let r = deconvolve(&o1, ["--save-psf", s(&psfdir)]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let psf_file = psfdir.join("aia_psf_171_256.fits");
    let (psf, h) = fits::read_image_f64(&psf_file).unwrap();
    assert_eq!(psf.dim(), (256, 256));
    assert!((psf.sum() - 1.0).abs() < 1e-5);
    assert_eq!(h.get("WAVELNTH").and_then(|v| v.as_f64()), Some(171.0));
    let peak = psf.iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(psf[[128, 128]], peak, "peak on [N/2, N/2]");
    let a = fits::read(&aiaprep::pipeline::output_path(&ins[0], &o1)).unwrap();
    assert_eq!(a.header.get("DECONV"), Some(&aiaprep::Value::Bool(true)));
    assert_eq!(a.header.get_f64("DECONVIT"), Some(5.0));
    // The saved (float32) PSF gives the same result to f32 rounding of the PSF.
    let r = deconvolve(&o2, ["--psf", s(&psf_file)]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let b = fits::read(&aiaprep::pipeline::output_path(&ins[0], &o2)).unwrap();
    let (mut num, mut den) = (0f64, 0f64);
    for (x, y) in a.data.iter().zip(b.data.iter()) {
        if x.is_finite() && y.is_finite() {
            num += ((x - y) as f64).powi(2);
            den += (*x as f64).powi(2);
        } else {
            assert_eq!(x.is_nan(), y.is_nan());
        }
    }
    assert!((num / den).sqrt() < 1e-5, "rel L2 {}", (num / den).sqrt());
    assert!(b
        .header
        .get_str("DECONPSF")
        .unwrap_or("")
        .contains("aia_psf_171_256"));
    // A PSF of the wrong size is a typed error naming the input, and the batch exit is 1.
    let small = dir.join("small_psf.fits");
    let p =
        ndarray::Array2::<f32>::from_shape_fn(
            (64, 64),
            |(j, i)| {
                if (j, i) == (32, 32) {
                    1.0
                } else {
                    0.0
                }
            },
        );
    fits::write_image_f32(&small, p.view(), &aiaprep::Header::new(), false).unwrap();
    let r = run_cpu(
        &ins[0],
        &dir.join("o3"),
        &["--deconvolve", "--psf", s(&small)],
    );
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("aia_00.fits") && err.contains("shape"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pointing_table_and_exposure_normalisation() {
    let dir = tmpdir("pnt");
    // The pointing table describes the full-resolution CCD: a full 4096² frame.
    let ins = inputs_sized(&dir, 1, 4096);
    let table = common::data("pointing_table_small.csv");
    let (o1, o2) = (dir.join("plain"), dir.join("norm"));
    let r = run_cpu(&ins[0], &o1, &["--dtype", "f32"]);
    assert_eq!(r.status.code(), Some(0));
    let r = run_cpu(
        &ins[0],
        &o2,
        &["--pointing-table", s(&table), "--normalize-exposure"],
    );
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let a = fits::read(&aiaprep::pipeline::output_path(&ins[0], &o1)).unwrap();
    let b = fits::read(&aiaprep::pipeline::output_path(&ins[0], &o2)).unwrap();
    assert_eq!(b.header.get("PNTUPD"), Some(&aiaprep::Value::Bool(true)));
    assert_eq!(b.header.get_str("BUNIT"), Some("DN/s"));
    assert_eq!(b.header.get_f64("EXPTIME"), Some(1.0));
    let exptime = b.header.get_f64("OEXPTIME").unwrap();
    assert_eq!(exptime, a.header.get_f64("EXPTIME").unwrap());
    // int16 with BSCALE = 1/EXPTIME: the stored integers are DN, read back as DN/s.
    assert!((b.header.get_f64("BSCALE").unwrap_or(0.0) - 1.0 / exptime).abs() < 1e-12);
    // The same chain through the library: pointing, register, divide by EXPTIME. The file
    // holds int16 DN with BSCALE = 1/EXPTIME, so it agrees to half a DN / EXPTIME.
    let table = aiaprep::pointing::PointingTable::read_csv(&table).unwrap();
    let level1 = fits::read(&ins[0]).unwrap();
    let upd = aiaprep::pointing::update_pointing(&level1, &table).unwrap();
    let reg = aiaprep::cpu::register(&upd.map, &Default::default()).unwrap();
    assert_eq!(reg.header.get_f64("CDELT1"), Some(0.6));
    let mut worst = 0f64;
    for (x, y) in reg.data.iter().zip(b.data.iter()) {
        assert_eq!(x.is_nan(), y.is_nan());
        if x.is_finite() {
            worst = worst.max((*x as f64 / exptime - *y as f64).abs());
        }
    }
    assert!(worst <= 0.5 / exptime + 1e-3, "{worst}");
    assert!(
        (b.header.get_f64("CRPIX1").unwrap() - 2048.5).abs() < 1e-12,
        "register re-centres after the pointing update"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn interrupted_batch_leaves_only_complete_outputs_and_resumes() {
    interrupted_batch("INT");
}

/// SIGTERM (what Slurm sends at the time limit, before SIGKILL) is handled like Ctrl-C:
/// the images in flight finish, the summary and the report are written.
#[test]
fn terminated_batch_finishes_in_flight_and_writes_the_report() {
    interrupted_batch("TERM");
}

/// Send `signal` to a batch once its first output is in place; check that only complete
/// outputs exist, that the report lists every input as done or cancelled, and that a rerun
/// does exactly the rest.
fn interrupted_batch(signal: &str) {
    let dir = tmpdir(&format!("sig{signal}"));
    let ins = inputs_sized(&dir, 6, 1024);
    let out = dir.join("out");
    let report = dir.join("report.json");
    let child = Command::new(prep_exe())
        .arg(dir.join("in"))
        .args([
            "--out-dir",
            s(&out),
            "--backend",
            "cpu",
            "--jobs",
            "1",
            "--queue-depth",
            "1",
            "--report",
            s(&report),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt as soon as the first output is in place.
    let t0 = std::time::Instant::now();
    while !aiaprep::pipeline::output_path(&ins[0], &out).exists()
        && t0.elapsed() < std::time::Duration::from_secs(60)
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let st = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let r = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&r.stdout);
    let done_first: Vec<&PathBuf> = ins
        .iter()
        .filter(|p| aiaprep::pipeline::output_path(p, &out).exists())
        .collect();
    assert!(!done_first.is_empty());
    eprintln!(
        "interrupted after {} of {} outputs",
        done_first.len(),
        ins.len()
    );
    if done_first.len() < ins.len() {
        assert_eq!(
            r.status.code(),
            Some(1),
            "cancelled inputs make the exit 1: {stdout}"
        );
        assert!(stdout.contains("cancelled"), "{stdout}");
    }
    for p in &done_first {
        assert!(fits::is_complete_level15(&aiaprep::pipeline::output_path(
            p, &out
        )));
    }
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
    // The report was written on the way out: every input, done ones as such.
    let rep = std::fs::read_to_string(&report).unwrap();
    let n_done = rep.matches("\"status\": \"done\"").count();
    let n_cancelled = rep.matches("\"status\": \"cancelled\"").count();
    assert_eq!(n_done, done_first.len(), "{rep}");
    assert_eq!(n_done + n_cancelled, ins.len(), "{rep}");
    // Rerun: the rest is done, nothing is redone.
    let r = run_cpu(&dir.join("in"), &out, &[]);
    assert_eq!(r.status.code(), Some(0));
    let so = String::from_utf8_lossy(&r.stdout);
    assert!(
        so.contains(&format!(
            "{} done, {} skipped",
            ins.len() - done_first.len(),
            done_first.len()
        )),
        "{so}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cut_outs_are_refused_unless_the_full_disk_check_is_off() {
    let dir = tmpdir("cutout");
    let m = synth::level1(&SynthOptions {
        size: 256,
        ..SynthOptions::default()
    });
    // The central 96² pixels: the limb is outside the frame.
    let sub = m.data.slice(ndarray::s![80..176, 80..176]).to_owned();
    let mut h = m.header.clone();
    h.set_f64("CRPIX1", h.get_f64("CRPIX1").unwrap() - 80.0, None);
    h.set_f64("CRPIX2", h.get_f64("CRPIX2").unwrap() - 80.0, None);
    let cut = aiaprep::AiaMap::new(sub, h, aiaprep::Source::memory());
    std::fs::create_dir_all(dir.join("in")).unwrap();
    let p = dir.join("in").join("cutout.fits");
    fits::write(&cut, &p, &WriteOptions::default()).unwrap();
    let r = run_cpu(&p, &dir.join("o1"), &[]);
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("cutout.fits") && err.contains("not a full-disk image"),
        "{err}"
    );
    let r = run_cpu(&p, &dir.join("o2"), &["--no-full-disk-check"]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let out = fits::read(&aiaprep::pipeline::output_path(&p, &dir.join("o2"))).unwrap();
    assert_eq!(out.data.dim(), (96, 96));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--jobs N` sets the decode and encode threads as given (the occupancy line names the
/// workers of each stage); without it they are the cores, at most 8.
#[test]
fn jobs_sets_the_decode_and_encode_threads() {
    let dir = tmpdir("jobs");
    inputs(&dir, 3);
    let out = dir.join("out");
    let r = run_cpu(&dir.join("in"), &out, &["--jobs", "12"]);
    let so = String::from_utf8_lossy(&r.stdout);
    assert_eq!(r.status.code(), Some(0), "{so}");
    let occ = so.lines().find(|l| l.starts_with("occupancy:")).unwrap();
    assert!(
        occ.contains("% of 12, compute") && occ.contains("encode"),
        "{occ}"
    );
    assert!(
        occ.split("encode").nth(1).unwrap().contains("of 12"),
        "{occ}"
    );
    let r = run_cpu(&dir.join("in"), &out, &["--overwrite"]);
    let so = String::from_utf8_lossy(&r.stdout);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let occ = so.lines().find(|l| l.starts_with("occupancy:")).unwrap();
    assert!(
        occ.contains(&format!("% of {}, compute", cores.clamp(1, 8))),
        "{occ}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn degradation_correction_from_a_local_table() {
    let dir = tmpdir("degr");
    let ins = inputs(&dir, 1);
    let table = common::data("calibration/aia_V8_20171210_050627_response_table.txt");
    let (plain, corr) = (dir.join("plain"), dir.join("corr"));
    assert_eq!(
        run_cpu(&ins[0], &plain, &["--dtype", "f32"]).status.code(),
        Some(0)
    );
    let r = run_cpu(
        &ins[0],
        &corr,
        &[
            "--dtype",
            "f32",
            "--correct-degradation",
            "--correction-table",
            s(&table),
        ],
    );
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let a = fits::read(&aiaprep::pipeline::output_path(&ins[0], &plain)).unwrap();
    let b = fits::read(&aiaprep::pipeline::output_path(&ins[0], &corr)).unwrap();
    // The factor of the input's channel at its DATE-OBS, from the same table.
    let t = aiaprep::degradation::CorrectionTable::read(&table).unwrap();
    let when =
        aiaprep::degradation::observation_time(&a.header, &aiaprep::Source::memory()).unwrap();
    let d = t.degradation(a.wavelength().unwrap(), when).unwrap().factor;
    assert_eq!(b.header.get_f64("DEGRADAT"), Some(d));
    assert_eq!(
        b.header.get_str("DEGRTAB"),
        Some("aia_V8_20171210_050627_response_table.txt")
    );
    for (x, y) in a.data.iter().zip(b.data.iter()) {
        assert_eq!(x.is_nan(), y.is_nan());
        if x.is_finite() {
            assert_eq!(*y, (f64::from(*x) / d) as f32);
        }
    }
    // Without a table: a usage error. A bad table: an error naming its line and column.
    let r = run_cpu(&ins[0], &dir.join("u"), &["--correct-degradation"]);
    assert_eq!(r.status.code(), Some(2));
    let bad = dir.join("bad_table.txt");
    let text = std::fs::read_to_string(&table).unwrap();
    std::fs::write(
        &bad,
        text.replacen("2011-01-27T15:00:00.000", "2011-01-27T25:00:00.000", 1),
    )
    .unwrap();
    let r = run_cpu(
        &ins[0],
        &dir.join("b"),
        &["--correct-degradation", "--correction-table", s(&bad)],
    );
    assert_ne!(r.status.code(), Some(0));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("bad_table.txt:2: correction table, column T_STOP"),
        "{err}"
    );
    assert!(!dir.join("b").exists() || std::fs::read_dir(dir.join("b")).unwrap().count() == 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
