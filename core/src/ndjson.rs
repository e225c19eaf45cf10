//! Reading back what `spmkdjsonenc` writes: one [`PoseRecord`] per line (NDJSON), and with
//! `end-record=true` an [`EndRecord`] as the last line.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::error::ReadError;
use crate::schema::{EndRecord, PoseRecord, SCHEMA_VERSION};

/// The media type of the stream: newline-delimited JSON.
pub const MEDIA_TYPE: &str = "application/x-ndjson";

/// A streaming reader of pose records; errors name the file and the line.
pub struct PoseReader<R> {
    path: PathBuf,
    lines: std::io::Lines<R>,
    line: u64,
    end: Option<EndRecord>,
}

impl PoseReader<BufReader<File>> {
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ReadError> {
        let path = path.as_ref();
        let file =
            File::open(path).map_err(|e| ReadError::whole(path, format!("cannot open: {e}")))?;
        Ok(Self::new(path, BufReader::new(file)))
    }
}

impl<R: BufRead> PoseReader<R> {
    /// Reads from `reader`; `path` names it in errors.
    pub fn new(path: &Path, reader: R) -> Self {
        Self {
            path: path.to_owned(),
            lines: reader.lines(),
            line: 0,
            end: None,
        }
    }

    /// The end record, once the iteration has reached it (it ends the iteration): `None` for a
    /// stream written without one, or one that broke off before it.
    pub fn end(&self) -> Option<EndRecord> {
        self.end
    }
}

impl<R: BufRead> Iterator for PoseReader<R> {
    type Item = Result<PoseRecord, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.line += 1;
            let text = match self.lines.next()? {
                Ok(t) => t,
                Err(e) => {
                    return Some(Err(ReadError::at_line(
                        &self.path,
                        self.line,
                        format!("I/O error: {e}"),
                    )));
                }
            };
            if text.trim().is_empty() {
                continue;
            }
            if self.end.is_some() {
                return Some(Err(ReadError::at_line(
                    &self.path,
                    self.line,
                    "a line after the end record",
                )));
            }
            if let Some(end) = EndRecord::from_json_line(&text) {
                self.end = Some(end);
                continue;
            }
            let record = PoseRecord::from_json_line(&text)
                .map_err(|e| {
                    ReadError::at_line(&self.path, self.line, format!("not a pose record: {e}"))
                })
                .and_then(|r| {
                    if r.schema > SCHEMA_VERSION {
                        Err(ReadError::at_line(
                            &self.path,
                            self.line,
                            format!(
                                "schema {} is newer than this reader's {SCHEMA_VERSION}",
                                r.schema
                            ),
                        ))
                    } else {
                        Ok(r)
                    }
                });
            return Some(record);
        }
    }
}

/// Every record of an NDJSON file.
pub fn read_all(path: impl AsRef<Path>) -> Result<Vec<PoseRecord>, ReadError> {
    PoseReader::open(path)?.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_records_and_names_the_bad_line() {
        let good = r#"{"schema":1,"width":32,"height":64,"model":"m","inference_us":5,"stale":false,"keypoints":[{"x":1.5,"y":2.5,"confidence":0.5,"pressure":0.25}]}"#;
        let text = format!("{good}\n\n{good}\n{{\"schema\":1}}\n");
        let records: Vec<_> = PoseReader::new(Path::new("poses.ndjson"), text.as_bytes()).collect();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].as_ref().unwrap().keypoints[0].y, 2.5);
        assert!(records[1].is_ok());
        let err = records[2].as_ref().unwrap_err().to_string();
        assert!(
            err.starts_with("poses.ndjson:4: not a pose record"),
            "{err}"
        );

        let ended = format!("{good}\n{}\n", EndRecord::new(1).to_json_line());
        let mut reader = PoseReader::new(Path::new("p"), ended.as_bytes());
        assert_eq!(reader.by_ref().count(), 1);
        assert_eq!(reader.end(), Some(EndRecord::new(1)));
        let broken = format!("{good}\n");
        let mut reader = PoseReader::new(Path::new("p"), broken.as_bytes());
        assert_eq!(reader.by_ref().count(), 1);
        assert_eq!(reader.end(), None);
        let after = format!("{}\n{good}\n", EndRecord::new(0).to_json_line());
        let err = PoseReader::new(Path::new("p"), after.as_bytes())
            .next()
            .unwrap()
            .unwrap_err();
        assert!(
            err.to_string().contains("p:2: a line after the end record"),
            "{err}"
        );

        let newer = good.replace("\"schema\":1", "\"schema\":9");
        let err = PoseReader::new(Path::new("p"), newer.as_bytes())
            .next()
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("schema 9 is newer"), "{err}");
    }
}
