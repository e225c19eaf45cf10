//! The posture classes: the labels of the datasets, the output order of every posture model,
//! and the `posture` of the pose meta and the NDJSON record.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The three posture classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Posture {
    Supine,
    Left,
    Right,
}

impl Posture {
    /// Class order of every posture model's output.
    pub const ALL: [Posture; 3] = [Posture::Supine, Posture::Left, Posture::Right];

    pub fn as_str(self) -> &'static str {
        match self {
            Posture::Supine => "supine",
            Posture::Left => "left",
            Posture::Right => "right",
        }
    }

    /// The posture seen in the mirror image of the mat (left and right swapped).
    pub fn mirrored(self) -> Posture {
        match self {
            Posture::Supine => Posture::Supine,
            Posture::Left => Posture::Right,
            Posture::Right => Posture::Left,
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Posture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Posture {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Posture::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown posture {s:?}: expected supine, left or right"))
    }
}
