//! The outcome of a batch: a record per input, the busy time of each stage, the summary
//! lines and the JSON report.

use std::path::PathBuf;
use std::time::Duration;

use crate::pipeline::StageTimes;

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

#[cfg(test)]
mod tests {
    use super::*;

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
