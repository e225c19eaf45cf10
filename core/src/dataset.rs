//! The PmatData tree as a labelled index, and the subject-held-out split.
//!
//! Layout (see `pmatdata/README.md`):
//! - `experiment-i/S<n>/<k>.txt`, n = 1..13, k = 1..17: one recording per posture;
//! - `experiment-ii/S<n>/{Air_Mat,Sponge_Mat}/Matrix_{Air,Sponge}_<ID>.txt`: one frame each.
//!
//! Split: experiment-i S1..S10 train and tune, S11..S13 are held out for reported results,
//! experiment-ii (another mat and mattress) is the unfamiliar set and is never trained on.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::orientation::Orientation;
use crate::posture::Posture;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Experiment {
    I,
    II,
}

impl Experiment {
    /// How the experiment's mat lay, as the orientation that brings its recordings into the
    /// models' convention ([`crate::orientation`]): experiment-i's mat defines it;
    /// experiment-ii's lay turned half way round, head at the last row (its frames' keypoint
    /// layout and its lateral recordings' knees say so: `spmkd-train convention`).
    pub fn orientation(self) -> Orientation {
        match self {
            Experiment::I => Orientation::Identity,
            Experiment::II => Orientation::Rotate180,
        }
    }
}

impl fmt::Display for Experiment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Experiment::I => "experiment-i",
            Experiment::II => "experiment-ii",
        })
    }
}

/// The mat (and, for experiment-ii, the mattress) a recording was made on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mat {
    /// Experiment-i: Vista Medical FSA SoftFlex 2048, 64 x 32.
    SoftFlex,
    /// Experiment-ii: BodiTrak BT3510, 64 x 27, on an air mattress.
    Air,
    /// Experiment-ii: BodiTrak BT3510, 64 x 27, on a sponge mattress.
    Sponge,
}

impl fmt::Display for Mat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mat::SoftFlex => "softflex",
            Mat::Air => "air",
            Mat::Sponge => "sponge",
        })
    }
}

/// Which part of the evaluation protocol a recording belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// Experiment-i S1..S10: training and tuning.
    Train,
    /// Experiment-i S11..S13: reported results only.
    HeldOut,
    /// Experiment-ii: never trained on.
    Unfamiliar,
}

impl Split {
    /// Its short name: `train`, `held-out`, `unfamiliar`.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::HeldOut => "held-out",
            Split::Unfamiliar => "unfamiliar",
        }
    }

    /// What it holds, for reports.
    pub fn description(self) -> &'static str {
        match self {
            Split::Train => "experiment-i S1..S10",
            Split::HeldOut => "experiment-i S11..S13",
            Split::Unfamiliar => "experiment-ii",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last training subject of experiment-i; later subjects are held out.
pub const LAST_TRAIN_SUBJECT: u8 = 10;

pub fn split_of(experiment: Experiment, subject: u8) -> Split {
    match experiment {
        Experiment::I if subject <= LAST_TRAIN_SUBJECT => Split::Train,
        Experiment::I => Split::HeldOut,
        Experiment::II => Split::Unfamiliar,
    }
}

/// One recording file with its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub path: PathBuf,
    pub experiment: Experiment,
    pub subject: u8,
    pub mat: Mat,
    /// The dataset's own label: the posture description (experiment-i) or the ID (B1, E3, ...).
    pub label: String,
    /// The 3-class posture; `None` for the undocumented G1..G3 of experiment-ii.
    pub posture: Option<Posture>,
}

impl Entry {
    pub fn split(&self) -> Split {
        split_of(self.experiment, self.subject)
    }
}

/// Experiment-i: file number `k` to (label, posture), from the dataset's table.
pub fn experiment_i_label(k: u32) -> Option<(&'static str, Posture)> {
    use Posture::*;
    Some(match k {
        1 | 8..=12 => ("supine", Supine),
        2 => ("right", Right),
        3 => ("left", Left),
        4 => ("right, 30 degree wedge", Right),
        5 => ("right, 60 degree wedge", Right),
        6 => ("left, 30 degree wedge", Left),
        7 => ("left, 60 degree wedge", Left),
        13 => ("right fetus", Right),
        14 => ("left fetus", Left),
        15 => ("supine, bed inclined 30 degree", Supine),
        16 => ("supine, bed inclined 45 degree", Supine),
        17 => ("supine, bed inclined 60 degree", Supine),
        _ => return None,
    })
}

/// An experiment-ii file ID the dataset does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown experiment-ii posture ID {0:?}")]
pub struct UnknownId(pub String);

/// Experiment-ii: an ID such as `B3` or `E5` to its posture; `Ok(None)` for the undocumented
/// G files.
pub fn experiment_ii_posture(id: &str) -> Result<Option<Posture>, UnknownId> {
    use Posture::*;
    let unknown = || UnknownId(id.to_owned());
    let (letter, number) = id.split_at_checked(1).ok_or_else(unknown)?;
    let n: u32 = number.parse().map_err(|_| unknown())?;
    let posture = match (letter, n) {
        ("B", 1..=10) | ("F", 1..=7) => Supine,
        ("C", 1..=3) | ("E", 1 | 2 | 5) => Right,
        ("D", 1..=3) | ("E", 3 | 4 | 6) => Left,
        ("G", 1..=3) => return Ok(None),
        _ => return Err(unknown()),
    };
    Ok(Some(posture))
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error(
        "PmatData not found at {0}: set SPMKD_DATA to the pmatdata folder (the one holding \
         experiment-i and experiment-ii)"
    )]
    Missing(PathBuf),
    #[error("{path}: {source}", path = .0.display(), source = .1)]
    Io(PathBuf, std::io::Error),
    #[error("{path}: not a PmatData file name ({why})", path = .0.display(), why = .1)]
    UnknownFile(PathBuf, &'static str),
}

/// The labelled recordings under a `pmatdata` folder, sorted by experiment, subject, mat and
/// file.
#[derive(Debug, Clone)]
pub struct DatasetIndex {
    pub root: PathBuf,
    pub entries: Vec<Entry>,
}

/// Environment variable naming the pmatdata folder.
pub const DATA_ENV: &str = "SPMKD_DATA";

impl DatasetIndex {
    /// Where the data is: `$SPMKD_DATA`, else the first `shared/data/pmatdata` next to `start`
    /// or one of its ancestors (the project's checkout sits beside `shared/`).
    pub fn locate(start: &Path) -> PathBuf {
        if let Some(dir) = std::env::var_os(DATA_ENV) {
            return PathBuf::from(dir);
        }
        let rel = Path::new("shared/data/pmatdata");
        start
            .ancestors()
            .map(|a| a.join(rel))
            .find(|p| p.is_dir())
            .unwrap_or_else(|| start.join("../shared/data/pmatdata"))
    }

    pub fn scan(root: impl AsRef<Path>) -> Result<Self, DatasetError> {
        let root = root.as_ref();
        if !root.join("experiment-i").is_dir() {
            return Err(DatasetError::Missing(root.to_path_buf()));
        }
        let mut entries = Vec::new();
        for (subject, dir) in subjects(&root.join("experiment-i"))? {
            for path in files(&dir)? {
                let k: u32 = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| DatasetError::UnknownFile(path.clone(), "expected <k>.txt"))?;
                let (label, posture) = experiment_i_label(k).ok_or_else(|| {
                    DatasetError::UnknownFile(path.clone(), "experiment-i files are 1..17")
                })?;
                entries.push(Entry {
                    path,
                    experiment: Experiment::I,
                    subject,
                    mat: Mat::SoftFlex,
                    label: label.to_owned(),
                    posture: Some(posture),
                });
            }
        }
        let exp_ii = root.join("experiment-ii");
        if exp_ii.is_dir() {
            for (subject, dir) in subjects(&exp_ii)? {
                for (mat, sub, prefix) in [
                    (Mat::Air, "Air_Mat", "Matrix_Air_"),
                    (Mat::Sponge, "Sponge_Mat", "Matrix_Sponge_"),
                ] {
                    let mat_dir = dir.join(sub);
                    if !mat_dir.is_dir() {
                        continue;
                    }
                    for path in files(&mat_dir)? {
                        let id = path
                            .file_stem()
                            .and_then(|s| s.to_str())
                            .and_then(|s| s.strip_prefix(prefix))
                            .ok_or_else(|| {
                                DatasetError::UnknownFile(
                                    path.clone(),
                                    "expected Matrix_<mat>_<ID>",
                                )
                            })?
                            .to_owned();
                        let posture = experiment_ii_posture(&id).map_err(|_| {
                            DatasetError::UnknownFile(path.clone(), "unknown posture ID")
                        })?;
                        entries.push(Entry {
                            path,
                            experiment: Experiment::II,
                            subject,
                            mat,
                            label: id,
                            posture,
                        });
                    }
                }
            }
        }
        entries.sort_by(|a, b| {
            (a.experiment, a.subject, a.mat, path_key(&a.path)).cmp(&(
                b.experiment,
                b.subject,
                b.mat,
                path_key(&b.path),
            ))
        });
        Ok(Self {
            root: root.to_path_buf(),
            entries,
        })
    }

    pub fn split(&self, split: Split) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(move |e| e.split() == split)
    }
}

/// `S<n>` folders of an experiment, by subject number.
fn subjects(dir: &Path) -> Result<Vec<(u8, PathBuf)>, DatasetError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DatasetError::Io(dir.to_path_buf(), e))? {
        let path = entry
            .map_err(|e| DatasetError::Io(dir.to_path_buf(), e))?
            .path();
        let subject = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix('S'))
            .and_then(|n| n.parse::<u8>().ok());
        if let (Some(s), true) = (subject, path.is_dir()) {
            out.push((s, path));
        }
    }
    out.sort();
    Ok(out)
}

/// `.txt` files of a folder.
fn files(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DatasetError::Io(dir.to_path_buf(), e))? {
        let path = entry
            .map_err(|e| DatasetError::Io(dir.to_path_buf(), e))?
            .path();
        if path.extension().is_some_and(|e| e == "txt") {
            out.push(path);
        }
    }
    Ok(out)
}

/// Sort key that puts `2` before `10` and `B2` before `B10` (recording names, posture IDs): the
/// name without its trailing digits, then their number.
pub fn natural_key(name: &str) -> (String, u64) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (head, tail) = name.split_at(name.len() - digits);
    (head.to_owned(), tail.parse().unwrap_or(0))
}

/// [`natural_key`] of a file's stem: `2.txt` before `10.txt`.
fn path_key(path: &Path) -> (String, u64) {
    natural_key(path.file_stem().and_then(|s| s.to_str()).unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_dataset_tables() {
        assert_eq!(experiment_i_label(1).unwrap().1, Posture::Supine);
        assert_eq!(experiment_i_label(3).unwrap().1, Posture::Left);
        assert_eq!(experiment_i_label(13).unwrap().1, Posture::Right);
        assert!(experiment_i_label(18).is_none());
        let n = |p| {
            (1..=17)
                .filter(|&k| experiment_i_label(k).unwrap().1 == p)
                .count()
        };
        assert_eq!(
            (n(Posture::Supine), n(Posture::Left), n(Posture::Right)),
            (9, 4, 4)
        );
        assert_eq!(experiment_ii_posture("E5"), Ok(Some(Posture::Right)));
        assert_eq!(experiment_ii_posture("E6"), Ok(Some(Posture::Left)));
        assert_eq!(experiment_ii_posture("F7"), Ok(Some(Posture::Supine)));
        assert_eq!(experiment_ii_posture("G2"), Ok(None));
        assert!(experiment_ii_posture("B11").is_err());
        assert!(experiment_ii_posture("").is_err());
    }

    #[test]
    fn split_holds_out_s11_to_s13() {
        assert_eq!(split_of(Experiment::I, 10), Split::Train);
        assert_eq!(split_of(Experiment::I, 11), Split::HeldOut);
        assert_eq!(split_of(Experiment::II, 1), Split::Unfamiliar);
    }

    #[test]
    fn posture_names() {
        for p in Posture::ALL {
            assert_eq!(p.as_str().parse::<Posture>().unwrap(), p);
            assert_eq!(Posture::ALL[p.index()], p);
        }
    }

    #[test]
    fn natural_order() {
        assert!(path_key(Path::new("2.txt")) < path_key(Path::new("10.txt")));
        assert!(
            path_key(Path::new("Matrix_Air_B2.txt")) < path_key(Path::new("Matrix_Air_B10.txt"))
        );
    }
}
