//! The metadata every exported spmkd model carries in its ONNX `metadata_props`, and their
//! checked reading.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crate::orientation::Orientation;

pub const KIND: &str = "spmkd.kind";
pub const INPUT_SIZE: &str = "spmkd.input_size";
pub const KEYPOINTS: &str = "spmkd.keypoints";
pub const FEATURES: &str = "spmkd.features";
pub const NORMALIZATION: &str = "spmkd.normalization";
pub const CLASSES: &str = "spmkd.classes";
pub const VERSION: &str = "spmkd.version";
pub const TRAINED_ON: &str = "spmkd.trained_on";
/// Optional: the unlabelled recordings an encoder was adapted to (`spmkd-train adapt`), and for
/// a posture model, of the encoder it reads.
pub const ADAPTED_ON: &str = "spmkd.adapted_on";
/// Optional (encoders): the median over the frames it was trained or adapted on of the mean
/// keypoint confidence, what trust measures a frame's confidence against (models differ: the
/// sharper a model's heatmaps, the higher its confidences).
pub const CONFIDENCE_REFERENCE: &str = "spmkd.confidence_reference";
/// Optional (encoders): where each keypoint sat along the mat's long axis on the frames it was
/// trained or adapted on, standardized, comma-separated (one number per keypoint): what
/// [`crate::layout::agreement`] compares a frame's keypoints with.
pub const LAYOUT_REFERENCE: &str = "spmkd.layout_reference";
/// Optional (encoders with a layout reference): the two agreements between which trust's layout
/// evidence rises from 0 to 1, comma-separated ("0.65,0.81"), fitted for this encoder on the
/// frames its layout reference was measured on, its training or adaptation frames
/// ([`crate::monitor::trust::fit_layout_ramp`]): encoders differ in how closely their keypoints
/// keep the reference on a mat laid right.
pub const LAYOUT_RAMP: &str = "spmkd.layout_ramp";
/// Optional (encoders): how the mat this encoder is for lies, as the
/// [`crate::orientation::Orientation`] that brings its frames into the models' convention
/// (`spmkd-train calibrate` finds it); `spmkdpose orientation=auto` applies it. The identity
/// when absent.
pub const ORIENTATION: &str = "spmkd.orientation";
/// Optional: the labelled recordings of a new mat a model was calibrated on (`spmkd-train
/// calibrate`).
pub const CALIBRATED_ON: &str = "spmkd.calibrated_on";

/// Every key, in the order they are documented.
pub const ALL_KEYS: [&str; 14] = [
    KIND,
    INPUT_SIZE,
    KEYPOINTS,
    FEATURES,
    NORMALIZATION,
    CLASSES,
    VERSION,
    TRAINED_ON,
    ADAPTED_ON,
    CONFIDENCE_REFERENCE,
    LAYOUT_REFERENCE,
    LAYOUT_RAMP,
    ORIENTATION,
    CALIBRATED_ON,
];

/// What a model file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    Encoder,
    Decoder,
    Posture,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Encoder => "encoder",
            ModelKind::Decoder => "decoder",
            ModelKind::Posture => "posture",
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ModelKind {
    type Err = MetadataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "encoder" => Ok(ModelKind::Encoder),
            "decoder" => Ok(ModelKind::Decoder),
            "posture" => Ok(ModelKind::Posture),
            _ => Err(MetadataError::Invalid {
                key: KIND,
                value: s.to_owned(),
                expected: "encoder, decoder or posture",
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("model metadata lacks the key {0:?} (is this an spmkd model?)")]
    Missing(&'static str),
    #[error("model metadata {key:?} = {value:?}: expected {expected}")]
    Invalid {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("the model is of kind {found}, but kind {wanted} is needed here")]
    WrongKind { found: ModelKind, wanted: ModelKind },
}

/// The checked contents of a model's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelMetadata {
    pub kind: ModelKind,
    pub input_size: usize,
    pub keypoints: usize,
    pub features: usize,
    pub normalization: String,
    /// Class names, comma-separated in the file (posture models; empty otherwise).
    pub classes: Vec<String>,
    pub version: String,
    pub trained_on: String,
    /// What the model was adapted to without labels; `None` for a model as trained (and in
    /// files made before adaptation existed).
    pub adapted_on: Option<String>,
    /// [`CONFIDENCE_REFERENCE`]; `None` in models made before it (trust then takes 1).
    pub confidence_reference: Option<f32>,
    /// [`LAYOUT_REFERENCE`], one number per keypoint; `None` in models made before it (trust
    /// then has no layout evidence).
    pub layout_reference: Option<Vec<f32>>,
    /// [`LAYOUT_RAMP`]; `None` in models made before it (trust then takes
    /// [`crate::monitor::trust::TRUST_SCALE`]'s).
    pub layout_ramp: Option<(f32, f32)>,
    /// [`ORIENTATION`]: the identity in files without it.
    pub orientation: Orientation,
    /// [`CALIBRATED_ON`]; `None` for a model not calibrated to a mat.
    pub calibrated_on: Option<String>,
}

impl ModelMetadata {
    /// Reads and checks the `spmkd.*` keys. Unknown extra keys are ignored.
    pub fn from_props(props: &HashMap<String, String>) -> Result<Self, MetadataError> {
        let get = |key: &'static str| {
            props
                .get(key)
                .map(String::as_str)
                .ok_or(MetadataError::Missing(key))
        };
        let count = |key: &'static str| -> Result<usize, MetadataError> {
            let v = get(key)?;
            v.parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| MetadataError::Invalid {
                    key,
                    value: v.to_owned(),
                    expected: "a positive integer",
                })
        };
        let normalization = get(NORMALIZATION)?;
        if ![
            crate::preprocess::NORMALIZATION,
            crate::preprocess::NORMALIZATION_BODY_CENTRED,
        ]
        .contains(&normalization)
        {
            return Err(MetadataError::Invalid {
                key: NORMALIZATION,
                value: normalization.to_owned(),
                expected: "zscore-minmax or zscore-minmax,body-centred",
            });
        }
        let keypoints = count(KEYPOINTS)?;
        Ok(Self {
            kind: get(KIND)?.parse()?,
            input_size: count(INPUT_SIZE)?,
            keypoints,
            features: count(FEATURES)?,
            normalization: normalization.to_owned(),
            classes: get(CLASSES)?
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            version: get(VERSION)?.to_owned(),
            trained_on: get(TRAINED_ON)?.to_owned(),
            adapted_on: props.get(ADAPTED_ON).cloned(),
            confidence_reference: props
                .get(CONFIDENCE_REFERENCE)
                .map(|v| {
                    v.parse::<f32>()
                        .ok()
                        .filter(|r| r.is_finite() && *r > 0.0 && *r <= 1.0)
                        .ok_or_else(|| MetadataError::Invalid {
                            key: CONFIDENCE_REFERENCE,
                            value: v.clone(),
                            expected: "a number in (0, 1]",
                        })
                })
                .transpose()?,
            layout_reference: props
                .get(LAYOUT_REFERENCE)
                .map(|v| {
                    v.split(',')
                        .map(|n| n.trim().parse::<f32>().ok().filter(|r| r.is_finite()))
                        .collect::<Option<Vec<f32>>>()
                        .filter(|r| r.len() == keypoints)
                        .ok_or_else(|| MetadataError::Invalid {
                            key: LAYOUT_REFERENCE,
                            value: v.clone(),
                            expected: "one finite number per keypoint, comma-separated",
                        })
                })
                .transpose()?,
            layout_ramp: props
                .get(LAYOUT_RAMP)
                .map(|v| {
                    parse_ramp(v).ok_or_else(|| MetadataError::Invalid {
                        key: LAYOUT_RAMP,
                        value: v.clone(),
                        expected: "two agreements in [-1, 1], the first below the second, \
                                   comma-separated",
                    })
                })
                .transpose()?,
            orientation: props
                .get(ORIENTATION)
                .map(|v| {
                    v.parse::<Orientation>()
                        .map_err(|_| MetadataError::Invalid {
                            key: ORIENTATION,
                            value: v.clone(),
                            expected: "one of identity, 90r, 180, 90l, horiz, vert, ul-lr, ur-ll",
                        })
                })
                .transpose()?
                .unwrap_or_default(),
            calibrated_on: props.get(CALIBRATED_ON).cloned(),
        })
    }

    /// The key/value pairs to write into a model file.
    pub fn to_props(&self) -> Vec<(&'static str, String)> {
        let mut props = vec![
            (KIND, self.kind.to_string()),
            (INPUT_SIZE, self.input_size.to_string()),
            (KEYPOINTS, self.keypoints.to_string()),
            (FEATURES, self.features.to_string()),
            (NORMALIZATION, self.normalization.clone()),
            (CLASSES, self.classes.join(",")),
            (VERSION, self.version.clone()),
            (TRAINED_ON, self.trained_on.clone()),
        ];
        if let Some(adapted) = &self.adapted_on {
            props.push((ADAPTED_ON, adapted.clone()));
        }
        if let Some(reference) = self.confidence_reference {
            props.push((CONFIDENCE_REFERENCE, reference.to_string()));
        }
        if let Some(layout) = &self.layout_reference {
            let numbers: Vec<String> = layout.iter().map(|v| format!("{v:.5}")).collect();
            props.push((LAYOUT_REFERENCE, numbers.join(",")));
        }
        if let Some((lo, hi)) = self.layout_ramp {
            props.push((LAYOUT_RAMP, format!("{lo:.2},{hi:.2}")));
        }
        if self.orientation != Orientation::Identity {
            props.push((ORIENTATION, self.orientation.to_string()));
        }
        if let Some(calibrated) = &self.calibrated_on {
            props.push((CALIBRATED_ON, calibrated.clone()));
        }
        props
    }

    /// Whether the model takes its input framed on the body
    /// ([`crate::preprocess::preprocess_framed_into`]).
    pub fn body_centred(&self) -> bool {
        self.normalization == crate::preprocess::NORMALIZATION_BODY_CENTRED
    }

    pub fn expect_kind(&self, wanted: ModelKind) -> Result<&Self, MetadataError> {
        if self.kind == wanted {
            Ok(self)
        } else {
            Err(MetadataError::WrongKind {
                found: self.kind,
                wanted,
            })
        }
    }
}

/// "lo,hi" with `-1 <= lo < hi <= 1`.
fn parse_ramp(v: &str) -> Option<(f32, f32)> {
    let (lo, hi) = v.split_once(',')?;
    let (lo, hi) = (
        lo.trim().parse::<f32>().ok()?,
        hi.trim().parse::<f32>().ok()?,
    );
    ((-1.0..=1.0).contains(&lo) && (-1.0..=1.0).contains(&hi) && lo < hi).then_some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ModelMetadata {
        ModelMetadata {
            kind: ModelKind::Posture,
            input_size: 64,
            keypoints: 32,
            features: 16,
            normalization: crate::preprocess::NORMALIZATION.into(),
            classes: vec!["supine".into(), "left".into(), "right".into()],
            version: "spmkd-posture-1".into(),
            trained_on: "pmatdata experiment-i S1..S10".into(),
            adapted_on: Some("ward 3, bed 12: 2 recordings, 480 frames".into()),
            confidence_reference: Some(0.125),
            // Multiples of 1/8: exact in the file's five decimals.
            layout_reference: Some((0..32).map(|i| i as f32 / 8.0 - 2.0).collect()),
            // Written with two decimals, as chosen.
            layout_ramp: Some((0.65, 0.81)),
            orientation: Orientation::FlipHorizontal,
            calibrated_on: Some("ward 3, bed 12: one volunteer, 9 frames".into()),
        }
    }

    fn props(m: &ModelMetadata) -> HashMap<String, String> {
        m.to_props()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    }

    #[test]
    fn round_trip() {
        let m = sample();
        assert_eq!(ModelMetadata::from_props(&props(&m)).unwrap(), m);
        assert_eq!(m.to_props().len(), ALL_KEYS.len());
        // A model as trained has no adaptation key, and files without it still read.
        let trained = ModelMetadata {
            adapted_on: None,
            confidence_reference: None,
            layout_reference: None,
            layout_ramp: None,
            orientation: Orientation::Identity,
            calibrated_on: None,
            ..sample()
        };
        let p = props(&trained);
        assert!(!p.contains_key(ADAPTED_ON) && !p.contains_key(CONFIDENCE_REFERENCE));
        assert!(!p.contains_key(ORIENTATION) && !p.contains_key(CALIBRATED_ON));
        assert!(!p.contains_key(LAYOUT_REFERENCE) && !p.contains_key(LAYOUT_RAMP));
        assert_eq!(ModelMetadata::from_props(&p).unwrap(), trained);
        let mut p = props(&sample());
        p.insert(CONFIDENCE_REFERENCE.into(), "0".into());
        assert!(
            ModelMetadata::from_props(&p)
                .unwrap_err()
                .to_string()
                .contains(CONFIDENCE_REFERENCE)
        );
        // A layout of another length than the keypoints, or with something not a number.
        for bad in ["0.5,1.5", &vec!["x"; 32].join(",")] {
            let mut p = props(&sample());
            p.insert(LAYOUT_REFERENCE.into(), bad.into());
            assert!(
                ModelMetadata::from_props(&p)
                    .unwrap_err()
                    .to_string()
                    .contains(LAYOUT_REFERENCE)
            );
        }
        // A ramp that falls, is one number, or leaves [-1, 1].
        for bad in ["0.8,0.6", "0.7", "0.5,1.5", "0.5,x", "0.7,0.7"] {
            let mut p = props(&sample());
            p.insert(LAYOUT_RAMP.into(), bad.into());
            assert!(
                ModelMetadata::from_props(&p)
                    .unwrap_err()
                    .to_string()
                    .contains(LAYOUT_RAMP),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_unknown_orientation_is_refused() {
        for bad in ["upside-down", "auto", "custom", "Horiz", ""] {
            let mut p = props(&sample());
            p.insert(ORIENTATION.into(), bad.into());
            let err = ModelMetadata::from_props(&p).unwrap_err().to_string();
            assert!(
                err.contains(ORIENTATION) && err.contains("ur-ll"),
                "{bad}: {err}"
            );
        }
        for o in Orientation::ALL {
            let m = ModelMetadata {
                orientation: o,
                ..sample()
            };
            assert_eq!(
                ModelMetadata::from_props(&props(&m)).unwrap().orientation,
                o
            );
        }
    }

    #[test]
    fn missing_and_invalid_keys_are_named() {
        let mut p = props(&sample());
        p.remove(KEYPOINTS);
        assert_eq!(
            ModelMetadata::from_props(&p).unwrap_err(),
            MetadataError::Missing(KEYPOINTS)
        );
        let mut p = props(&sample());
        p.insert(INPUT_SIZE.into(), "0".into());
        assert!(
            ModelMetadata::from_props(&p)
                .unwrap_err()
                .to_string()
                .contains("spmkd.input_size")
        );
        let mut p = props(&sample());
        p.insert(KIND.into(), "classifier".into());
        assert!(ModelMetadata::from_props(&p).is_err());
        let mut p = props(&sample());
        p.insert(NORMALIZATION.into(), "minmax".into());
        assert!(
            ModelMetadata::from_props(&p)
                .unwrap_err()
                .to_string()
                .contains("zscore-minmax or zscore-minmax,body-centred")
        );
    }

    #[test]
    fn the_framing_travels_in_the_normalization() {
        assert!(!sample().body_centred());
        let body = ModelMetadata {
            normalization: crate::preprocess::normalization_name(true).into(),
            ..sample()
        };
        let read = ModelMetadata::from_props(&props(&body)).unwrap();
        assert!(read.body_centred());
        assert_eq!(
            props(&body)[NORMALIZATION],
            crate::preprocess::NORMALIZATION_BODY_CENTRED
        );
    }

    #[test]
    fn wrong_kind() {
        let m = sample();
        assert!(m.expect_kind(ModelKind::Posture).is_ok());
        assert_eq!(
            m.expect_kind(ModelKind::Encoder).unwrap_err().to_string(),
            "the model is of kind posture, but kind encoder is needed here"
        );
    }
}
