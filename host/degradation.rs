//! Degradation correction (aiapy `correct_degradation`): the time-dependent loss of
//! sensitivity of each channel, divided out with a factor from a SolarSoft response table
//! (`aia_V*_response_table.txt`, or a CSV export of JSOC's `aia.response`), read from a
//! local file — no network.
//!
//! The factor (aiapy `degradation(channel, obstime, correction_table=…)`, after SolarSoft
//! `aia_bp_corrections.pro`), for the rows of the channel (`WAVE_STR` = `"171_THIN"` for the
//! EUV channels, `"1600"`, `"1700"`, `"4500"` otherwise) sorted by their `DATE` string
//! (stable):
//!
//! ```text
//! e      = the last row with T_START ≤ t < T_STOP          (t = the observation time)
//! dt     = (t − T_START[e]) in days, counted in TAI (leap seconds included, as astropy)
//! factor = (P1·dt + P2·dt² + P3·dt³ + 1) · EFF_AREA[e] / EFF_AREA[first row]
//! ```
//!
//! The corrected data are `data / factor`. The observation time is `DATE-OBS` — what aiapy
//! uses (`smap.date`), not `T_OBS` (UTC; a `TIMESYS` other than UTC is refused).
//!
//! As aiapy: a time before the first epoch or at/after the last `T_STOP` is an error, as is
//! a channel with no rows (4500 in the V8 table) or one outside the ten AIA channels; the
//! factor is not clamped (in V8 the 304 Å factor reaches 0 in April 2020 and is refused
//! here rather than dividing by zero). Unlike aiapy, a table whose rows for the channel
//! have an empty epoch (`T_STOP ≤ T_START`) or overlapping epochs of the same `VER_NUM` is
//! refused with the line; rows of different versions may overlap (a JSOC export holds
//! every version), and then the most recent `DATE` wins, as in aiapy.

use std::path::Path;

use crate::caltable::CalTable;
use crate::error::{Error, Result, Source};
use crate::header::{Header, Value};
use crate::time::{tai_minus_utc, UtcTime};

/// The ten AIA channels (Å).
pub const CHANNELS: [u32; 10] = crate::map::AIA_CHANNELS;

/// Header keyword with the degradation factor the data were divided by.
pub const KEY_FACTOR: &str = "DEGRADAT";
/// Header keyword with the correction table's file name.
pub const KEY_TABLE: &str = "DEGRTAB";
/// Header keyword with the table version (`VER_NUM` of the epoch used).
pub const KEY_VERSION: &str = "DEGRVER";

/// One row of a correction table.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrectionRow {
    /// 1-based line of the file.
    pub line: usize,
    /// `DATE` as written (rows are ordered by this string).
    pub date: String,
    /// `WAVE_STR`, e.g. `"171_THIN"`.
    pub wave_str: String,
    /// `VER_NUM`.
    pub version: i64,
    /// Start of the epoch (UTC).
    pub t_start: UtcTime,
    /// End of the epoch (UTC, exclusive).
    pub t_stop: UtcTime,
    /// Effective area at the epoch (cm²).
    pub eff_area: f64,
    /// Cubic coefficients (per day, day², day³).
    pub p: [f64; 3],
}

/// A degradation correction table.
#[derive(Debug, Clone)]
pub struct CorrectionTable {
    source: Source,
    rows: Vec<CorrectionRow>,
}

/// The factor for one observation, and where it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Degradation {
    /// The factor the data are divided by (dimensionless).
    pub factor: f64,
    /// `VER_NUM` of the epoch used.
    pub version: i64,
    /// Line of the table of the epoch used.
    pub line: usize,
    /// Days since the epoch's start (TAI).
    pub dt_days: f64,
}

/// `WAVE_STR` of a channel: `"<ch>_THIN"` for the EUV channels, `"<ch>"` for 1600, 1700
/// and 4500. `None` outside the ten channels.
pub fn wave_str(channel: u32) -> Option<String> {
    if !CHANNELS.contains(&channel) {
        return None;
    }
    Some(if matches!(channel, 1600 | 1700 | 4500) {
        channel.to_string()
    } else {
        format!("{channel}_THIN")
    })
}

/// Seconds of TAI since 1970-01-01 of a UTC instant, as a count of nanoseconds.
fn tai_ns(t: UtcTime) -> i128 {
    i128::from(t.0) + i128::from(tai_minus_utc(t).unwrap_or(10)) * 1_000_000_000
}

impl CorrectionTable {
    /// Read a response table (SolarSoft text, or CSV) from `path`.
    ///
    /// Errors: [`Error::Io`]; [`Error::Table`] (file, line, column) for a missing column
    /// (`DATE`, `T_START`, `T_STOP`, `VER_NUM`, `WAVE_STR`, `EFF_AREA`, `EFFA_P1..3`), a
    /// time or number that does not parse.
    pub fn read(path: &Path) -> Result<CorrectionTable> {
        Self::from_table(&CalTable::read(path, "correction table")?)
    }

    /// Parse a response table's text (`source` names it in errors).
    pub fn parse(text: &str, source: Source) -> Result<CorrectionTable> {
        Self::from_table(&CalTable::parse(text, source, "correction table")?)
    }

    fn from_table(t: &CalTable) -> Result<CorrectionTable> {
        let c = |n: &str| t.column(n);
        let (date, ws, ver) = (c("DATE")?, c("WAVE_STR")?, c("VER_NUM")?);
        let (ts, te, area) = (c("T_START")?, c("T_STOP")?, c("EFF_AREA")?);
        let p = [c("EFFA_P1")?, c("EFFA_P2")?, c("EFFA_P3")?];
        let mut rows = Vec::with_capacity(t.rows().len());
        for r in t.rows() {
            let version = t.number(r, ver)?;
            if version.fract() != 0.0 {
                return Err(t.row_error(r, Some(ver), format!("'{version}' is not an integer")));
            }
            rows.push(CorrectionRow {
                line: r.line,
                date: t.text(r, date).to_string(),
                wave_str: t.text(r, ws).to_string(),
                version: version as i64,
                t_start: t.time(r, ts)?,
                t_stop: t.time(r, te)?,
                eff_area: t.number(r, area)?,
                p: [t.number(r, p[0])?, t.number(r, p[1])?, t.number(r, p[2])?],
            });
        }
        Ok(CorrectionTable {
            source: t.source().clone(),
            rows,
        })
    }

    /// Where the table came from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The file name (no directories), or `<memory>`.
    pub fn name(&self) -> String {
        match self.source.path() {
            Some(p) => p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string()),
            None => "<memory>".into(),
        }
    }

    /// The rows, in file order.
    pub fn rows(&self) -> &[CorrectionRow] {
        &self.rows
    }

    fn error(&self, line: Option<usize>, column: Option<&str>, reason: String) -> Error {
        Error::Table {
            file: self.source.clone(),
            what: "correction table",
            line,
            column: column.map(str::to_string),
            reason,
        }
    }

    /// The rows of `channel`, stably sorted by `DATE`, checked (module docs).
    fn channel_rows(&self, channel: u32) -> Result<Vec<&CorrectionRow>> {
        let key = wave_str(channel).ok_or_else(|| Error::InvalidOption {
            file: self.source.clone(),
            reason: format!(
                "channel {channel} Å has no degradation correction (channels: {CHANNELS:?})"
            ),
        })?;
        let mut rows: Vec<&CorrectionRow> =
            self.rows.iter().filter(|r| r.wave_str == key).collect();
        if rows.is_empty() {
            return Err(self.error(
                None,
                Some("WAVE_STR"),
                format!("no rows for channel {channel} Å (WAVE_STR '{key}')"),
            ));
        }
        rows.sort_by(|a, b| a.date.cmp(&b.date));
        for (i, r) in rows.iter().enumerate() {
            if r.t_stop <= r.t_start {
                return Err(self.error(
                    Some(r.line),
                    Some("T_STOP"),
                    format!(
                        "empty epoch: T_STOP {} is not after T_START {}",
                        r.t_stop, r.t_start
                    ),
                ));
            }
            if let Some(o) = rows[..i]
                .iter()
                .find(|o| o.version == r.version && o.t_start < r.t_stop && r.t_start < o.t_stop)
            {
                return Err(self.error(
                    Some(r.line),
                    Some("T_START"),
                    format!(
                        "epoch {}..{} of {key} overlaps the one on line {} ({}..{}), same VER_NUM {}",
                        r.t_start, r.t_stop, o.line, o.t_start, o.t_stop, r.version
                    ),
                ));
            }
        }
        if rows[0].eff_area == 0.0 {
            return Err(self.error(
                Some(rows[0].line),
                Some("EFF_AREA"),
                "the first epoch's effective area is 0".into(),
            ));
        }
        Ok(rows)
    }

    /// The degradation factor of `channel` (Å) at `t` (module docs).
    ///
    /// Errors ([`Error::Table`] naming this table): no rows for the channel; no epoch
    /// holding `t`; a factor that is not finite and > 0; bad epochs (module docs).
    /// [`Error::InvalidOption`] for a channel outside [`CHANNELS`].
    pub fn degradation(&self, channel: u32, t: UtcTime) -> Result<Degradation> {
        let rows = self.channel_rows(channel)?;
        let e = rows
            .iter()
            .rev()
            .find(|r| r.t_start <= t && t < r.t_stop)
            .ok_or_else(|| {
                let first = rows.iter().map(|r| r.t_start).min();
                let last = rows.iter().map(|r| r.t_stop).max();
                self.error(
                    None,
                    None,
                    format!(
                        "no calibration epoch for channel {channel} Å holds {t} (epochs from {} to {})",
                        first.map(|x| x.to_string()).unwrap_or_default(),
                        last.map(|x| x.to_string()).unwrap_or_default()
                    ),
                )
            })?;
        let dt = (tai_ns(t) - tai_ns(e.t_start)) as f64 / 86_400e9;
        let [p1, p2, p3] = e.p;
        let ratio = e.eff_area / rows[0].eff_area;
        let poly = p1 * dt + p2 * dt.powi(2) + p3 * dt.powi(3) + 1.0;
        let factor = poly * ratio;
        if !(factor.is_finite() && factor > 0.0) {
            return Err(self.error(
                Some(e.line),
                None,
                format!("the degradation factor of channel {channel} Å at {t} is {factor}: the correction would not be finite"),
            ));
        }
        Ok(Degradation {
            factor,
            version: e.version,
            line: e.line,
            dt_days: dt,
        })
    }
}

/// The observation time aiapy's `correct_degradation` uses: `DATE-OBS` (or `DATE_OBS`),
/// UTC.
///
/// Errors: [`Error::MissingKeyword`]; [`Error::BadKeyword`] for a value that is not a time
/// or a `TIMESYS` other than UTC.
pub fn observation_time(h: &Header, source: &Source) -> Result<UtcTime> {
    let key = if h.contains("DATE-OBS") {
        "DATE-OBS"
    } else {
        "DATE_OBS"
    };
    let v = crate::map::required(h, source, key)?;
    let bad = |reason: String| Error::BadKeyword {
        file: source.clone(),
        key: key.into(),
        reason,
    };
    let s = v
        .as_str()
        .ok_or_else(|| bad(format!("not a time string ({v:?})")))?;
    if let Some(sys) = h.get_str("TIMESYS") {
        if !sys.trim().eq_ignore_ascii_case("UTC") && !s.contains("TAI") {
            return Err(bad(format!("TIMESYS '{sys}' (only UTC is supported)")));
        }
    }
    UtcTime::parse(s).map_err(|e| bad(format!("cannot parse '{s}': {e}")))
}

/// The header records of a degradation correction: `DEGRADAT` = the factor, `DEGRTAB` =
/// the table's file name, `DEGRVER` = its version, a HISTORY card; and the DN statistics
/// keywords divided like the data (see [`crate::normalize::divide_statistics`]).
pub fn corrected_header(h: &mut Header, d: &Degradation, table: &CorrectionTable) {
    crate::normalize::divide_statistics(h, d.factor);
    h.set(
        KEY_FACTOR,
        Value::Float(d.factor),
        Some("degradation factor the data were divided by"),
    );
    h.set(
        KEY_TABLE,
        Value::Str(table.name()),
        Some("degradation correction table"),
    );
    h.set(
        KEY_VERSION,
        Value::Int(d.version),
        Some("version (VER_NUM) of the correction table"),
    );
    h.push_history(&format!(
        "aiaprep {} correct_degradation: data divided by {} ({} V{}, epoch line {}, {:.6} d into it)",
        crate::VERSION,
        d.factor,
        table.name(),
        d.version,
        d.line,
        d.dt_days
    ));
}
