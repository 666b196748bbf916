//! Deterministic sharding of a batch's inputs across the tasks of a cluster job (Slurm
//! arrays and ranks, MPI ranks, or an explicit `K/N`).

use std::path::PathBuf;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
}
