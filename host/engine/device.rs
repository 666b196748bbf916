//! Which CUDA device and how many streams: the GPU settings of [`super::EngineOptions`], read
//! from the environment by [`super::EngineOptions::from_env`] and nowhere else.

use crate::error::{Error, Result};
use crate::lanes::MAX_LANES;

/// The environment variable that picks the device (a visible CUDA device index, 0-based).
pub const GPU_INDEX_VAR: &str = "AIAPREP_GPU_INDEX";

/// The environment variable that sets the number of CUDA streams (lanes) of the GPU engine.
pub const GPU_STREAMS_VAR: &str = "AIAPREP_GPU_STREAMS";

/// Streams of the GPU engine unless set: two, so that one image's upload/download
/// overlaps the other's kernels (a third adds little: the copy engines and the kernels are
/// then both busy) while device memory stays at two working sets (≈ 0.6 GB each for a
/// deconvolved 4096² image).
pub const DEFAULT_GPU_STREAMS: usize = 2;

/// Which CUDA device a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevicePick {
    /// This visible device index (0-based, after `CUDA_VISIBLE_DEVICES`).
    Index(usize),
    /// The device of node-local rank `r`: `r` modulo the number of visible devices.
    LocalRank(usize),
}

impl DevicePick {
    /// The device ordinal; `count` gives the number of visible devices.
    ///
    /// Errors: those of `count`.
    pub fn ordinal(self, count: &dyn Fn() -> Result<usize>) -> Result<usize> {
        match self {
            DevicePick::Index(i) => Ok(i),
            DevicePick::LocalRank(r) => {
                let n = count()?;
                Ok(if n == 0 { 0 } else { r % n })
            }
        }
    }
}

fn unavailable(reason: String) -> Error {
    Error::BackendUnavailable { reason }
}

/// The node-local rank (`SLURM_LOCALID`, then `OMPI_COMM_WORLD_LOCAL_RANK`,
/// `MPI_LOCALRANKID`), or 0 when `CUDA_VISIBLE_DEVICES` already narrows the devices (the
/// driver has done the choice) or no rank is set. `get` reads environment variables.
pub fn local_rank(get: &dyn Fn(&str) -> Option<String>) -> usize {
    if get("CUDA_VISIBLE_DEVICES").is_some_and(|v| !v.trim().is_empty()) {
        return 0;
    }
    for k in [
        "SLURM_LOCALID",
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "MPI_LOCALRANKID",
    ] {
        if let Some(v) = get(k).and_then(|v| v.trim().parse::<usize>().ok()) {
            return v;
        }
    }
    0
}

/// The device pick of the environment read by `get`: `AIAPREP_GPU_INDEX` when set (a
/// non-negative integer), else [`DevicePick::LocalRank`] of [`local_rank`].
///
/// Errors: [`Error::BackendUnavailable`] for an unparsable `AIAPREP_GPU_INDEX`.
pub fn device_pick(get: &dyn Fn(&str) -> Option<String>) -> Result<DevicePick> {
    match get(GPU_INDEX_VAR) {
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map(DevicePick::Index)
            .map_err(|_| {
                unavailable(format!(
                    "{GPU_INDEX_VAR}='{v}' is not a device index (0, 1, ...)"
                ))
            }),
        None => Ok(DevicePick::LocalRank(local_rank(get))),
    }
}

/// The number of streams from `AIAPREP_GPU_STREAMS` (read with `get`), else
/// [`DEFAULT_GPU_STREAMS`].
///
/// Errors: [`Error::BackendUnavailable`] for a value that is not an integer in
/// 1..=[`MAX_LANES`].
pub fn streams(get: &dyn Fn(&str) -> Option<String>) -> Result<usize> {
    match get(GPU_STREAMS_VAR) {
        None => Ok(DEFAULT_GPU_STREAMS),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_LANES).contains(&n) => Ok(n),
            _ => Err(unavailable(format!(
                "{GPU_STREAMS_VAR}='{v}' is not a number of CUDA streams (1 to {MAX_LANES})"
            ))),
        },
    }
}

/// [`super::EngineOptions`] with the GPU settings read by `get`.
pub(crate) fn options_from(get: &dyn Fn(&str) -> Option<String>) -> Result<super::EngineOptions> {
    Ok(super::EngineOptions {
        gpu_device: device_pick(get)?,
        gpu_streams: streams(get)?,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    /// The device ordinal the environment `get` picks among `count()` devices.
    fn device_index(
        get: &dyn Fn(&str) -> Option<String>,
        count: &dyn Fn() -> Result<usize>,
    ) -> Result<usize> {
        device_pick(get)?.ordinal(count)
    }

    fn local_device(get: &dyn Fn(&str) -> Option<String>, n: usize) -> usize {
        DevicePick::LocalRank(local_rank(get))
            .ordinal(&|| Ok(n))
            .unwrap()
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
    fn device_index_from_the_environment() {
        let four = || Ok(4usize);
        let none = || -> Result<usize> { Err(unavailable("no driver".into())) };
        // explicit index wins, and the device count is not needed for it
        assert_eq!(
            device_index(&env(&[(GPU_INDEX_VAR, "2")]), &none).unwrap(),
            2
        );
        assert_eq!(
            device_index(
                &env(&[(GPU_INDEX_VAR, " 1 "), ("SLURM_LOCALID", "3")]),
                &four
            )
            .unwrap(),
            1
        );
        let e = device_index(&env(&[(GPU_INDEX_VAR, "x")]), &four).unwrap_err();
        assert!(matches!(e, Error::BackendUnavailable { .. }), "{e}");
        assert!(e.to_string().contains(GPU_INDEX_VAR));
        // node-local rank modulo the count, unless CUDA_VISIBLE_DEVICES narrows the set
        assert_eq!(
            device_index(&env(&[("SLURM_LOCALID", "6")]), &four).unwrap(),
            2
        );
        assert_eq!(
            device_index(
                &env(&[("SLURM_LOCALID", "3"), ("CUDA_VISIBLE_DEVICES", "3")]),
                &four
            )
            .unwrap(),
            0
        );
        assert_eq!(device_index(&env(&[]), &four).unwrap(), 0);
        // without a driver the count's error comes through (no panic)
        assert!(matches!(
            device_index(&env(&[]), &none),
            Err(Error::BackendUnavailable { .. })
        ));
    }

    #[test]
    fn streams_from_the_environment() {
        assert_eq!(streams(&env(&[])).unwrap(), DEFAULT_GPU_STREAMS);
        assert_eq!(streams(&env(&[(GPU_STREAMS_VAR, " 4")])).unwrap(), 4);
        assert_eq!(streams(&env(&[(GPU_STREAMS_VAR, "16")])).unwrap(), 16);
        for bad in ["0", "17", "two", "-1", ""] {
            let e = streams(&env(&[(GPU_STREAMS_VAR, bad)])).unwrap_err();
            assert!(matches!(e, Error::BackendUnavailable { .. }), "{bad}: {e}");
            assert!(e.to_string().contains(GPU_STREAMS_VAR), "{e}");
        }
    }
}
