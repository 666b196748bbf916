//! Every kind of file `prep` writes passes NASA HEASARC's `fitsverify` with no error and no
//! warning: int16 and float32, plain and RICE, with deconvolution, pointing update,
//! degradation correction, exposure normalisation and the uncertainty HDU.
//!
//! fitsverify comes from `$FITSVERIFY`, else `fitsverify` on PATH (Debian package
//! `fitsverify`; `bash scripts/fitsverify-tool.sh` fetches it without root). Without it the
//! test says so and passes — unless `AIAPREP_REQUIRE_FITSVERIFY` is set (CI sets it), when
//! it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn fitsverify() -> Option<PathBuf> {
    let exe = std::env::var_os("FITSVERIFY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("fitsverify"));
    let ok = Command::new(&exe)
        .arg("-h")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("fitsverify") || o.status.success())
        .unwrap_or(false);
    ok.then_some(exe)
}

fn verify(exe: &Path, file: &Path) -> (String, bool) {
    let out = Command::new(exe).arg(file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let clean = text.contains("Verification found 0 warning(s) and 0 error(s)");
    (text, clean)
}

#[test]
fn every_kind_of_output_passes_fitsverify() {
    let Some(exe) = fitsverify() else {
        assert!(
            std::env::var_os("AIAPREP_REQUIRE_FITSVERIFY").is_none(),
            "fitsverify is required (AIAPREP_REQUIRE_FITSVERIFY) but not found"
        );
        eprintln!("SKIP: no fitsverify (bash scripts/fitsverify-tool.sh fetches it)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("aiaprep-fitsverify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let small = common::synth_inputs(&dir.join("small"), 1, 256, 41, 20);
    let full = common::synth_inputs(&dir.join("full"), 1, 4096, 42, 20);
    let degr = common::data("calibration/aia_V8_20171210_050627_response_table.txt");
    let pointing = common::data("pointing_table_small.csv");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let cases: Vec<(&str, &PathBuf, Vec<String>)> = vec![
        ("int16", &small[0], vec![]),
        ("float32", &small[0], vec!["--dtype".into(), "f32".into()]),
        (
            "int16 RICE",
            &small[0],
            vec!["--compress".into(), "rice".into()],
        ),
        (
            "float32 compressed",
            &small[0],
            vec![
                "--dtype".into(),
                "f32".into(),
                "--compress".into(),
                "rice".into(),
            ],
        ),
        (
            "deconvolved, normalised",
            &small[0],
            vec![
                "--deconvolve".into(),
                "--iterations".into(),
                "3".into(),
                "--normalize-exposure".into(),
            ],
        ),
        (
            "degradation, uncertainty, RICE",
            &small[0],
            vec![
                "--correct-degradation".into(),
                "--correction-table".into(),
                s(&degr),
                "--uncertainty".into(),
                "--compress".into(),
                "rice".into(),
            ],
        ),
        (
            "float32 with uncertainty",
            &small[0],
            vec![
                "--dtype".into(),
                "f32".into(),
                "--uncertainty".into(),
                "--normalize-exposure".into(),
            ],
        ),
        (
            "pointing update, full frame",
            &full[0],
            vec![
                "--pointing-table".into(),
                s(&pointing),
                "--compress".into(),
                "rice".into(),
            ],
        ),
    ];
    for (i, (what, input, extra)) in cases.iter().enumerate() {
        let out = dir.join(format!("out{i}"));
        let r = common::prep_command()
            .arg(input)
            .arg("--out-dir")
            .arg(&out)
            .args(["--backend", "cpu"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            r.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let file = aiaprep::pipeline::output_path(input, &out);
        let (text, clean) = verify(&exe, &file);
        assert!(clean, "{what}: fitsverify:\n{text}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
