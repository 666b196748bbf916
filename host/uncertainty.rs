//! Per-pixel uncertainty: aiapy 0.10.2's `estimate_error` (a port of SolarSoft's
//! `aia_bp_estimate_error.pro`), with its error table (`aia_V3_error_table.txt`, what
//! aiapy's `get_error_table("SSW")` downloads).
//!
//! The 1-σ error of `c` counts (DN/pixel, **not** divided by the exposure time) combines in
//! quadrature, per pixel and in f64:
//!
//! * shot noise `sqrt(c / g) · g / √n` (g = `DNPERPHT`, DN/photon; n = `n_sample`);
//! * dark noise 0.18 DN/pixel ([`DARK_NOISE`], not divided by √n);
//! * read noise `R / √n`, R by camera ([`read_noise`]; 1.15 for every channel with
//!   `compare_idl`);
//! * quantisation `(1/√12) / √n` ([`QUANT_RMS`]);
//! * compression `max(shot / K, 1/√12) / √n` (K = `COMPRESS`; the shot term already has its
//!   `/√n`, so this falls as 1/n), 0 for `c < 25` DN/pixel ([`COMPRESSION_THRESHOLD`]);
//! * optionally the atomic-data error `CHIANTI · c` and one calibration error, pre-flight
//!   `CALERR · c` or EVE-normalised `EVEERR · c` (fractions, never both).
//!
//! [`estimate_error`] evaluates the terms in aiapy's order of operations, so its values are
//! aiapy's bit for bit (`tests/uncertainty.rs` against aiapy's own output). Negative and NaN
//! counts give NaN (aiapy: the square root of a negative number); infinite counts give NaN
//! too (aiapy: `0 · ∞` in an unused calibration or CHIANTI term), or ∞ when both a
//! calibration term and the CHIANTI term are included.
//!
//! [`ErrorTable`] reads the table (any file in the SolarSoft layout, or the built-in V3 copy,
//! [`ErrorTable::default_v3`]); [`uncertainty_header`] is the header of the uncertainty image
//! written beside the data. The CPU map is `crate::cpu::uncertainty::estimate_error_map`.

use std::path::Path;

use crate::caltable::CalTable;
use crate::error::{Error, Result, Source};
use crate::header::{Header, Value};

/// What an error table is called in errors ([`Error::Table`]'s `what`).
pub const TABLE_WHAT: &str = "error table";

/// [`ErrorTable::name`] of the built-in table ([`ErrorTable::default_v3`]).
pub const BUILTIN_NAME: &str = "aia_V3_error_table.txt (built in)";

/// The built-in V3 error table: a byte-for-byte copy of SolarSoft's
/// `sdo/aia/response/aia_V3_error_table.txt` (sha256 `66ff0349…f894`, the hash aiapy 0.10.2
/// pins for `get_error_table("SSW")`; the same file is `tests/data/calibration/`).
const V3_TEXT: &str = include_str!("tables/aia_V3_error_table.txt");

/// The AIA channels (Å), the only ones aiapy's `estimate_error` accepts.
pub const CHANNELS: [u32; 10] = crate::map::AIA_CHANNELS;

/// Dark-current noise, DN/pixel (aiapy: from the 2015 analysis of the residual dark); not
/// reduced by `n_sample`.
pub const DARK_NOISE: f64 = 0.18;

/// Read noise with `compare_idl` (DN/pixel): what the IDL routine hard-codes for every
/// channel.
pub const IDL_READ_NOISE: f64 = 1.15;

/// RMS quantisation error of one DN, `1/√12` DN/pixel (aiapy: `1 / np.sqrt(12)`).
pub const QUANT_RMS: f64 = 0.288_675_134_594_812_9;

/// Counts below which there is no compression error, DN/pixel.
pub const COMPRESSION_THRESHOLD: f64 = 25.0;

/// Read noise of the camera of `channel` (Å), DN/pixel: Boerner et al. (2012), Table 6, as
/// aiapy: camera 1 (131, 335) 1.18; camera 2 (193, 211) 1.20; camera 3 (171, 1600, 1700,
/// 4500) 1.15; camera 4 (94, 304) 1.14. With `compare_idl`, [`IDL_READ_NOISE`] for every
/// channel. `None` when `channel` is not an AIA channel ([`CHANNELS`]).
pub fn read_noise(channel: u32, compare_idl: bool) -> Option<f64> {
    let r = match channel {
        131 | 335 => 1.18,
        193 | 211 => 1.20,
        171 | 1600 | 1700 | 4500 => 1.15,
        94 | 304 => 1.14,
        _ => return None,
    };
    Some(if compare_idl { IDL_READ_NOISE } else { r })
}

/// The error-table entries of one channel (one row of the table) and its camera's read
/// noise: everything [`estimate_error`] needs besides the counts and the options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelErrors {
    /// The channel, Å.
    pub channel: u32,
    /// `DNPERPHT`: gain g, DN per detected photon (> 0).
    pub gain: f64,
    /// `COMPRESS`: divisor K of the shot noise giving the compression error (> 0,
    /// dimensionless).
    pub compress: f64,
    /// `CALERR`: fractional pre-flight photometric calibration error.
    pub calerr: f64,
    /// `CHIANTI`: fractional atomic-data (CHIANTI) error.
    pub chianti: f64,
    /// `EVEERR`: fractional EVE-normalised photometric calibration error.
    pub eveerr: f64,
    /// Read noise R of the channel's camera, DN/pixel ([`read_noise`] without
    /// `compare_idl`; [`ErrorOptions::compare_idl`] replaces it by [`IDL_READ_NOISE`]).
    pub read_noise: f64,
}

/// One data row of an error table.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    /// 1-based line in the file.
    line: usize,
    /// `WAVELNTH`, Å (matched by value against the channel, as aiapy).
    wavelnth: f64,
    gain: f64,
    compress: f64,
    calerr: f64,
    chianti: f64,
    eveerr: f64,
}

/// An error table (SolarSoft `aia_V*_error_table.txt`): per channel the gain, the
/// compression divisor and the fractional calibration and atomic-data errors.
///
/// Columns used (any case, any order; others, e.g. `DATE`, `T_START`, `T_STOP`,
/// `WAVE_STR`, are ignored like aiapy ignores them): `WAVELNTH` (Å), `DNPERPHT`
/// (DN/photon, positive), `COMPRESS` (positive), `CALERR`, `CHIANTI`, `EVEERR` (fractions),
/// and `VER_NUM` (integer, optional). Every row's numbers are checked when the table is
/// read.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorTable {
    source: Source,
    name: String,
    version: Option<i64>,
    entries: Vec<Entry>,
    /// Why the built-in table did not parse (never, checked by a unit test); reported by
    /// [`ErrorTable::channel`] so that [`ErrorTable::default_v3`] cannot fail or panic.
    broken: Option<String>,
}

impl ErrorTable {
    /// Read the error table at `path`.
    ///
    /// Errors: [`Error::Io`] when it cannot be read; [`Error::Table`] (file, line, column) as
    /// [`ErrorTable::parse`].
    pub fn read(path: &Path) -> Result<ErrorTable> {
        let t = CalTable::read(path, TABLE_WHAT)?;
        ErrorTable::from_cal(&t)
    }

    /// Parse error-table text; `source` names it in errors and gives [`ErrorTable::name`].
    ///
    /// Errors ([`Error::Table`]): no header or no data row; a row with the wrong number of
    /// fields; a missing column (named); a field of a used column that is not a finite
    /// number (line and column named); `DNPERPHT ≤ 0` or `COMPRESS ≤ 0`; a `VER_NUM` that
    /// is not an integer.
    pub fn parse(text: &str, source: Source) -> Result<ErrorTable> {
        let t = CalTable::parse(text, source, TABLE_WHAT)?;
        ErrorTable::from_cal(&t)
    }

    /// The built-in V3 table (the copy in `host/tables/`, identical to what aiapy 0.10.2's
    /// `get_error_table("SSW")` downloads); named [`BUILTIN_NAME`]. Cannot fail: the text
    /// is parsed here and a unit test checks it parses, and were it ever not to,
    /// [`ErrorTable::channel`] would return the parse error rather than anything panicking.
    pub fn default_v3() -> ErrorTable {
        let source = Source::file(BUILTIN_NAME);
        match ErrorTable::parse(V3_TEXT, source.clone()) {
            Ok(t) => t,
            Err(e) => ErrorTable {
                source,
                name: BUILTIN_NAME.to_string(),
                version: None,
                entries: Vec::new(),
                broken: Some(e.to_string()),
            },
        }
    }

    fn from_cal(t: &CalTable) -> Result<ErrorTable> {
        let cw = t.column("WAVELNTH")?;
        let cg = t.column("DNPERPHT")?;
        let ck = t.column("COMPRESS")?;
        let ccal = t.column("CALERR")?;
        let cchi = t.column("CHIANTI")?;
        let ceve = t.column("EVEERR")?;
        let cver = t.column("VER_NUM").ok();
        let mut entries = Vec::with_capacity(t.rows().len());
        let mut versions = Vec::new();
        for row in t.rows() {
            let wavelnth = t.number(row, cw)?;
            let gain = t.number(row, cg)?;
            if gain <= 0.0 {
                return Err(t.row_error(
                    row,
                    Some(cg),
                    format!("the gain must be > 0 DN/photon, not {gain}"),
                ));
            }
            let compress = t.number(row, ck)?;
            if compress <= 0.0 {
                return Err(t.row_error(
                    row,
                    Some(ck),
                    format!("the compression divisor must be > 0, not {compress}"),
                ));
            }
            entries.push(Entry {
                line: row.line,
                wavelnth,
                gain,
                compress,
                calerr: t.number(row, ccal)?,
                chianti: t.number(row, cchi)?,
                eveerr: t.number(row, ceve)?,
            });
            if let Some(c) = cver {
                let text = t.text(row, c);
                let v = text.parse::<i64>().map_err(|_| {
                    t.row_error(row, Some(c), format!("'{text}' is not an integer"))
                })?;
                versions.push(v);
            }
        }
        let version = match versions.split_first() {
            Some((first, rest)) if rest.iter().all(|v| v == first) => Some(*first),
            _ => None,
        };
        let name = t
            .source()
            .path()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| t.source().to_string());
        Ok(ErrorTable {
            source: t.source().clone(),
            name,
            version,
            entries,
            broken: None,
        })
    }

    /// The table's name: its file name without directories, [`BUILTIN_NAME`] for the
    /// built-in table, `<memory>` for text parsed without a file.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the table came from (as named in its errors).
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The table's `VER_NUM` (3 for the built-in table); `None` when the table has no such
    /// column or its rows disagree.
    pub fn version(&self) -> Option<i64> {
        self.version
    }

    /// The entries of `channel` (Å): the row whose `WAVELNTH` equals it (as a number, as
    /// aiapy's `error_table["WAVELNTH"] == channel`; `WAVE_STR` and the time columns play no
    /// part), with its camera's read noise.
    ///
    /// Errors: [`Error::InvalidOption`] when `channel` is not an AIA channel ([`CHANNELS`];
    /// aiapy refuses those too); [`Error::Table`] naming the table and the `WAVELNTH`
    /// column when no row has the channel, or when two rows do (aiapy would then broadcast
    /// both rows against the counts — a two-valued error for one pixel, or a numpy shape
    /// error — so the table is refused as ambiguous, naming the second row's line).
    pub fn channel(&self, channel: u32) -> Result<ChannelErrors> {
        if let Some(reason) = &self.broken {
            return Err(self.table_error(None, format!("the built-in table: {reason}")));
        }
        let Some(read_noise) = read_noise(channel, false) else {
            return Err(Error::InvalidOption {
                file: Source::memory(),
                reason: format!(
                    "channel {channel} Å is not an AIA channel (one of {CHANNELS:?} Å)"
                ),
            });
        };
        let mut rows = self
            .entries
            .iter()
            .filter(|e| e.wavelnth == f64::from(channel));
        let Some(e) = rows.next() else {
            return Err(self.table_error(None, format!("no row for channel {channel} Å")));
        };
        if let Some(second) = rows.next() {
            return Err(self.table_error(
                Some(second.line),
                format!(
                    "a second row for channel {channel} Å (the first is line {}): ambiguous",
                    e.line
                ),
            ));
        }
        Ok(ChannelErrors {
            channel,
            gain: e.gain,
            compress: e.compress,
            calerr: e.calerr,
            chianti: e.chianti,
            eveerr: e.eveerr,
            read_noise,
        })
    }

    fn table_error(&self, line: Option<usize>, reason: String) -> Error {
        Error::Table {
            file: self.source.clone(),
            what: TABLE_WHAT,
            line,
            column: Some("WAVELNTH".into()),
            reason,
        }
    }
}

/// Options of the uncertainty estimate (aiapy's keyword arguments of `estimate_error`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorOptions {
    /// How many measurements (adjacent pixels, consecutive images) were averaged into the
    /// counts; finite, > 0, need not be an integer (default 1).
    pub n_sample: f64,
    /// Add the pre-flight photometric calibration error (`CALERR · counts`).
    pub include_preflight: bool,
    /// Add the EVE-normalised photometric calibration error (`EVEERR · counts`); not
    /// together with `include_preflight`.
    pub include_eve: bool,
    /// Add the atomic-data error (`CHIANTI · counts`).
    pub include_chianti: bool,
    /// Read noise 1.15 DN/pixel for every channel, as the IDL routine (aiapy's undocumented
    /// `compare_idl` keyword); for comparisons with SolarSoft only.
    pub compare_idl: bool,
}

impl Default for ErrorOptions {
    fn default() -> ErrorOptions {
        ErrorOptions {
            n_sample: 1.0,
            include_preflight: false,
            include_eve: false,
            include_chianti: false,
            compare_idl: false,
        }
    }
}

impl ErrorOptions {
    /// Check the options.
    ///
    /// Errors ([`Error::InvalidOption`]): both `include_eve` and `include_preflight`
    /// ("Cannot include both EVE and pre-flight correction.", aiapy's message); `n_sample`
    /// not finite or ≤ 0.
    pub fn check(&self) -> Result<()> {
        if self.include_eve && self.include_preflight {
            return Err(Error::InvalidOption {
                file: Source::memory(),
                reason: "Cannot include both EVE and pre-flight correction.".into(),
            });
        }
        if !(self.n_sample.is_finite() && self.n_sample > 0.0) {
            return Err(Error::InvalidOption {
                file: Source::memory(),
                reason: format!(
                    "n_sample must be a finite number > 0, not {}",
                    self.n_sample
                ),
            });
        }
        Ok(())
    }

    #[inline]
    fn is_valid(&self) -> bool {
        !(self.include_eve && self.include_preflight)
            && self.n_sample.is_finite()
            && self.n_sample > 0.0
    }
}

/// The 1-σ uncertainty (DN/pixel) of `counts` DN/pixel (not divided by the exposure time)
/// in the channel of `e`: aiapy 0.10.2's `estimate_error`, term by term in aiapy's order of
/// operations (module docs), so the result is aiapy's bit for bit.
///
/// Negative and NaN counts give NaN, infinite counts NaN or ∞ as aiapy (module docs).
/// Options that [`ErrorOptions::check`] refuses give NaN for every count (check them first;
/// this is the per-pixel rule).
///
/// For many values, [`ErrorRule`] works out the per-call constants once (same results).
#[inline]
pub fn estimate_error(counts: f64, e: &ChannelErrors, opts: &ErrorOptions) -> f64 {
    ErrorRule::new(e, opts).eval(counts)
}

/// [`estimate_error`] for one channel and one set of options, with the terms that do not
/// depend on the counts worked out once: `ErrorRule::new(e, opts).eval(c)` *is*
/// `estimate_error(c, e, opts)` (the same code, the same bits).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorRule {
    /// g, DN/photon.
    gain: f64,
    /// K.
    compress: f64,
    /// √n_sample (aiapy's `np.sqrt(n_sample)`).
    sn: f64,
    /// Read noise / √n, DN/pixel.
    read: f64,
    /// Quantisation / √n, DN/pixel.
    quant: f64,
    /// The calibration fraction used (EVEERR, CALERR or 0).
    fcal: f64,
    /// The atomic-data fraction used (CHIANTI or 0).
    fchi: f64,
    /// Whether the options pass [`ErrorOptions::check`] (NaN for every count otherwise).
    valid: bool,
}

impl ErrorRule {
    /// The rule of channel `e` with `opts`.
    pub fn new(e: &ChannelErrors, opts: &ErrorOptions) -> ErrorRule {
        let sn = opts.n_sample.sqrt();
        let r = if opts.compare_idl {
            IDL_READ_NOISE
        } else {
            e.read_noise
        };
        let fcal = if opts.include_eve {
            e.eveerr
        } else if opts.include_preflight {
            e.calerr
        } else {
            0.0
        };
        ErrorRule {
            gain: e.gain,
            compress: e.compress,
            sn,
            read: r / sn,
            quant: QUANT_RMS / sn,
            fcal,
            fchi: if opts.include_chianti { e.chianti } else { 0.0 },
            valid: opts.is_valid(),
        }
    }

    /// The 1-σ uncertainty (DN/pixel) of `counts` DN/pixel: [`estimate_error`].
    #[inline]
    pub fn eval(&self, counts: f64) -> f64 {
        if self.unit_sample() {
            self.eval_n::<true>(counts)
        } else {
            self.eval_n::<false>(counts)
        }
    }

    /// The per-call constants, for a device kernel that applies the same rule:
    /// `(gain, compress, √n_sample, read / √n, quantisation / √n, calibration fraction,
    /// CHIANTI fraction, valid)`.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn parts(&self) -> (f64, f64, f64, f64, f64, f64, f64, bool) {
        (
            self.gain,
            self.compress,
            self.sn,
            self.read,
            self.quant,
            self.fcal,
            self.fchi,
            self.valid,
        )
    }

    /// Whether √n_sample is exactly 1, so that the divisions by it can be left out
    /// ([`ErrorRule::eval_n`] with `UNIT = true`).
    #[inline]
    pub(crate) fn unit_sample(&self) -> bool {
        self.sn == 1.0
    }

    /// [`ErrorRule::eval`], with the divisions by √n_sample left out when `UNIT` (only for
    /// a rule whose [`ErrorRule::unit_sample`] holds: x / 1 = x exactly, so the bits are
    /// the same). For loops that choose the variant once.
    #[inline(always)]
    pub(crate) fn eval_n<const UNIT: bool>(&self, counts: f64) -> f64 {
        let c = counts;
        let sn = self.sn;
        let per_sample = |x: f64| if UNIT { x } else { x / sn };
        // aiapy multiplies and divides by `1 pix/photon` (a factor of exactly 1) for the
        // units: left out, as x · 1 = x / 1 = x exactly.
        let n_photon = c / self.gain;
        let shot = per_sample(n_photon.sqrt() * self.gain);
        let dark = DARK_NOISE;
        let read = self.read;
        let quant = self.quant;
        let mut compress = shot / self.compress;
        if compress < QUANT_RMS {
            compress = QUANT_RMS;
        }
        if c < COMPRESSION_THRESHOLD {
            compress = 0.0;
        }
        compress = per_sample(compress);
        let calib = self.fcal * c;
        let chianti = self.fchi * c;
        let v = (shot * shot
            + dark * dark
            + read * read
            + quant * quant
            + compress * compress
            + chianti * chianti
            + calib * calib)
            .sqrt();
        if self.valid {
            v
        } else {
            f64::NAN
        }
    }
}

/// Keywords copied from the data header to the uncertainty header when present (besides
/// the numbered `CTYPEi`, `CUNITi`, `CRPIXi`, `CRVALi`, `CDELTi` and `PCi_j`).
const COPIED: [&str; 13] = [
    "CROTA2", "WCSNAME", "DATE-OBS", "T_OBS", "TELESCOP", "INSTRUME", "WAVELNTH", "WAVEUNIT",
    "RSUN_OBS", "RSUN_REF", "DSUN_OBS", "HGLN_OBS", "HGLT_OBS",
];

/// Whether `key` is one of the WCS/observer keywords [`uncertainty_header`] copies.
fn is_copied(key: &str) -> bool {
    let numbered = |p: &str| {
        key.strip_prefix(p)
            .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
    };
    let pc = key.strip_prefix("PC").and_then(|r| r.split_once('_'));
    let pc = pc.is_some_and(|(i, j)| {
        !i.is_empty()
            && !j.is_empty()
            && i.bytes().all(|b| b.is_ascii_digit())
            && j.bytes().all(|b| b.is_ascii_digit())
    });
    pc || ["CTYPE", "CUNIT", "CRPIX", "CRVAL", "CDELT"]
        .iter()
        .any(|p| numbered(p))
        || COPIED.contains(&key)
}

/// The header of the uncertainty image written as an extension beside the data whose
/// header is `data_header` (errors of `channel`, from `table`, with `opts`).
///
/// Cards, in this order: `EXTNAME = 'UNCERTAINTY'`; `BUNIT` = the data's `BUNIT` (`'DN'`
/// when it has none) — the uncertainty is scaled like the data; the data header's
/// `CTYPEi`, `CUNITi`, `CRPIXi`, `CRVALi`, `CDELTi`, `PCi_j`, `CROTA2`, `WCSNAME`,
/// `DATE-OBS`, `T_OBS`, `TELESCOP`, `INSTRUME`, `WAVELNTH`, `WAVEUNIT`, `RSUN_OBS`,
/// `RSUN_REF`, `DSUN_OBS`, `HGLN_OBS`, `HGLT_OBS` where present (copied unchanged, in the
/// data header's order); `ERRTAB` = [`ErrorTable::name`]; `ERRVER` = its `VER_NUM` (left
/// out when it has none); `ERRNSAMP` = `n_sample`; `ERRPREFL`, `ERREVE`, `ERRCHIAN` = the
/// three options (logicals); a COMMENT saying what the image is and a HISTORY naming
/// the computation.
///
/// `EXTNAME` is a structural keyword ([`crate::header::is_structural`]): a writer that
/// passes headers through with [`Header::passthrough_records`] must write it itself.
pub fn uncertainty_header(
    data_header: &Header,
    table: &ErrorTable,
    opts: &ErrorOptions,
    channel: u32,
) -> Header {
    let mut h = Header::new();
    h.set(
        "EXTNAME",
        Value::Str("UNCERTAINTY".into()),
        Some("1-sigma uncertainty of the primary data"),
    );
    let bunit = data_header.get_str("BUNIT").unwrap_or("DN").to_string();
    h.set(
        "BUNIT",
        Value::Str(bunit),
        Some("same unit as the primary data"),
    );
    for card in data_header.cards() {
        if is_copied(&card.key) && !h.contains(&card.key) {
            h.push(card.clone());
        }
    }
    h.set(
        "ERRTAB",
        Value::Str(table.name().to_string()),
        Some("error table (aiapy get_error_table)"),
    );
    if let Some(v) = table.version() {
        h.set("ERRVER", Value::Int(v), Some("VER_NUM of the error table"));
    }
    h.set(
        "ERRNSAMP",
        Value::Float(opts.n_sample),
        Some("n_sample: measurements averaged per value"),
    );
    h.set(
        "ERRPREFL",
        Value::Bool(opts.include_preflight),
        Some("pre-flight calibration error included"),
    );
    h.set(
        "ERREVE",
        Value::Bool(opts.include_eve),
        Some("EVE calibration error included"),
    );
    h.set(
        "ERRCHIAN",
        Value::Bool(opts.include_chianti),
        Some("CHIANTI atomic-data error included"),
    );
    let mut terms = String::from("shot, dark, read, quantisation, compression noise");
    if opts.include_preflight {
        terms.push_str(", pre-flight calibration error");
    }
    if opts.include_eve {
        terms.push_str(", EVE calibration error");
    }
    if opts.include_chianti {
        terms.push_str(", CHIANTI atomic-data error");
    }
    h.push_comment(&format!(
        "1-sigma uncertainty of each pixel of the primary data, aiapy estimate_error \
         ({terms}) of the counts before degradation correction and exposure \
         normalisation, scaled like the data"
    ));
    let r = read_noise(channel, opts.compare_idl)
        .map(|r| format!(", read noise {r} DN/pixel"))
        .unwrap_or_default();
    h.push_history(&format!(
        "aiaprep {} estimate_error: channel {channel} A, error table {}, n_sample {}{r}",
        crate::VERSION,
        table.name(),
        opts.n_sample
    ));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses_and_has_every_channel() {
        let t = ErrorTable::default_v3();
        assert_eq!(t.broken, None);
        assert_eq!(t.name(), BUILTIN_NAME);
        assert_eq!(t.version(), Some(3));
        assert_eq!(t.entries.len(), 10);
        for ch in CHANNELS {
            t.channel(ch).unwrap();
        }
        // Row 171 of the file: DNPERPHT 1.122, COMPRESS 14.400, CALERR 0.250, CHIANTI
        // 0.250, EVEERR 0.019.
        let e = t.channel(171).unwrap();
        assert_eq!(
            (
                e.gain,
                e.compress,
                e.calerr,
                e.chianti,
                e.eveerr,
                e.read_noise
            ),
            (1.122, 14.4, 0.25, 0.25, 0.019, 1.15)
        );
    }

    #[test]
    fn quant_rms_is_one_over_sqrt_12() {
        assert_eq!(QUANT_RMS.to_bits(), (1.0 / 12f64.sqrt()).to_bits());
    }

    #[test]
    fn worked_example_of_the_spec() {
        // 171 Å, 100 DN/pixel, defaults: aiapy gives 10.68547244141766.
        let e = ErrorTable::default_v3().channel(171).unwrap();
        let v = estimate_error(100.0, &e, &ErrorOptions::default());
        assert_eq!(v, 10.68547244141766);
    }

    #[test]
    fn copied_keywords() {
        for k in ["CTYPE1", "CRPIX2", "PC1_2", "PC10_1", "CROTA2", "DATE-OBS"] {
            assert!(is_copied(k), "{k}");
        }
        for k in [
            "CTYPE", "PC1", "PC_1", "PC1_", "PC1_X", "EXPTIME", "CRPIXA", "NAXIS1",
        ] {
            assert!(!is_copied(k), "{k}");
        }
    }
}
