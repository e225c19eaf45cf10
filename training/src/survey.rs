//! A survey of the PmatData tree: frames, capture artifacts and usable frames per experiment,
//! split and subject, read with the same readers and artifact rule as the plugin.

use std::collections::BTreeMap;

use spmkd_core::artifacts::Artifact;
use spmkd_core::dataset::{DatasetIndex, Entry, Experiment, Split};
use spmkd_core::{Format, ReadError, Recording};

/// Frame counts of one file or a group of files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub files: usize,
    pub frames: usize,
    pub partial_scan: usize,
    pub quantized: usize,
}

impl Counts {
    pub fn artifacts(&self) -> usize {
        self.partial_scan + self.quantized
    }

    pub fn usable(&self) -> usize {
        self.frames - self.artifacts()
    }

    fn add(&mut self, other: &Counts) {
        self.files += other.files;
        self.frames += other.frames;
        self.partial_scan += other.partial_scan;
        self.quantized += other.quantized;
    }
}

/// Counts of one recording, plus the frame indices flagged as artifacts.
#[derive(Debug, Clone)]
pub struct FileSurvey {
    pub counts: Counts,
    pub artifacts: Vec<(u64, Artifact)>,
}

pub fn survey_file(entry: &Entry) -> Result<FileSurvey, ReadError> {
    let mut counts = Counts {
        files: 1,
        ..Counts::default()
    };
    let mut artifacts = Vec::new();
    for frame in Recording::open(&entry.path, Format::Auto, None)? {
        let frame = frame?;
        counts.frames += 1;
        match frame.artifact {
            Some(a @ Artifact::PartialScan) => {
                counts.partial_scan += 1;
                artifacts.push((frame.index, a));
            }
            Some(a @ Artifact::Quantized) => {
                counts.quantized += 1;
                artifacts.push((frame.index, a));
            }
            None => {}
        }
    }
    Ok(FileSurvey { counts, artifacts })
}

/// Grouping key of a survey row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Group {
    pub experiment: Experiment,
    pub split: &'static str,
    pub subject: Option<u8>,
}

/// Surveys every file of `index`; `on_file` is called after each (for progress).
pub fn survey(
    index: &DatasetIndex,
    per_subject: bool,
    mut on_file: impl FnMut(&Entry, &FileSurvey),
) -> Result<BTreeMap<Group, Counts>, ReadError> {
    let mut groups: BTreeMap<Group, Counts> = BTreeMap::new();
    for entry in &index.entries {
        let file = survey_file(entry)?;
        let group = Group {
            experiment: entry.experiment,
            split: Split::as_str(entry.split()),
            subject: per_subject.then_some(entry.subject),
        };
        groups.entry(group).or_default().add(&file.counts);
        on_file(entry, &file);
    }
    Ok(groups)
}

/// Totals per experiment.
pub fn totals(groups: &BTreeMap<Group, Counts>) -> BTreeMap<Experiment, Counts> {
    let mut out: BTreeMap<Experiment, Counts> = BTreeMap::new();
    for (g, c) in groups {
        out.entry(g.experiment).or_default().add(c);
    }
    out
}
