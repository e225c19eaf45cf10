//! ONNX Runtime sessions of spmkd models (feature `onnx`): checked against their metadata when
//! they are made, run with buffers reused from frame to frame. The plugin's elements and the
//! training tools (keypoints of the shipped encoder for the posture classifiers) use the same
//! sessions.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::keypoints::KEYPOINT_VALUES;
use crate::model_meta::{ALL_KEYS, MetadataError, ModelKind, ModelMetadata};
use ort::environment::Environment;
use ort::ep::{CUDA, ExecutionProvider};
use ort::session::Session;
use ort::value::{TensorRef, ValueType};

/// The shipped default models (see models/default/README.md: the command that made them and
/// the data attribution), built into every binary that uses this module.
pub mod embedded {
    pub const ENCODER: &[u8] = include_bytes!("../../models/default/encoder.onnx");
    pub const DECODER: &[u8] = include_bytes!("../../models/default/decoder.onnx");
    pub const POSTURE: &[u8] = include_bytes!("../../models/default/posture.onnx");
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "cannot load ONNX Runtime from {path}: {message} (run scripts/setup, or point ORT_DYLIB_PATH or the ort-library property at libonnxruntime.so)"
    )]
    Library { path: PathBuf, message: String },
    #[error(
        "ONNX Runtime is already loaded in this process from {loaded}; it cannot also be loaded from {wanted}"
    )]
    LibraryMismatch { loaded: PathBuf, wanted: PathBuf },
    #[error("cannot read the model {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: not a model ONNX Runtime can load: {message}")]
    Load { origin: String, message: String },
    #[error("{origin}: {source}")]
    Metadata {
        origin: String,
        source: MetadataError,
    },
    #[error("{origin}: {message}")]
    Shape { origin: String, message: String },
    #[error(
        "the CUDA execution provider is not available ({message}); set device=cpu, or allow-fallback=true to run on the CPU"
    )]
    Cuda { message: String },
    #[error("{origin}: inference failed: {message}")]
    Run { origin: String, message: String },
    #[error(
        "{origin}: gives non-finite {what} (NaN or infinity) on a blank probe: a diverged training run? Its keypoints would be null"
    )]
    NonFinite { origin: String, what: &'static str },
}

/// The load-time probe of a model: its outputs on a blank input must be finite (a model whose
/// weights diverged gives NaN on every input, and would give every frame `null` keypoints).
fn finite(origin: &str, what: &'static str, values: &[f32]) -> Result<(), EngineError> {
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(EngineError::NonFinite {
            origin: origin.to_owned(),
            what,
        })
    }
}

/// Where a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Device {
    #[default]
    Cpu,
    Cuda,
}

/// How sessions are made.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EngineOptions {
    /// libonnxruntime.so; `None`: [`crate::runtime::onnxruntime_library`].
    pub library: Option<PathBuf>,
    pub device: Device,
    /// With `device = Cuda`: run on the CPU (and say so) when CUDA is not there.
    pub allow_fallback: bool,
    /// Intra-op threads; 0 lets ONNX Runtime choose.
    pub threads: usize,
}

impl EngineOptions {
    /// On the CPU with the default library and `threads` intra-op threads (0: ONNX Runtime's
    /// choice): what offline tools use.
    pub fn cpu(threads: usize) -> Self {
        Self {
            library: None,
            device: Device::Cpu,
            allow_fallback: false,
            threads,
        }
    }
}

/// The bytes of a model and a name for it in messages.
pub struct ModelSource {
    pub origin: String,
    pub bytes: Cow<'static, [u8]>,
}

impl ModelSource {
    pub fn embedded(kind: ModelKind) -> Self {
        let bytes = match kind {
            ModelKind::Encoder => embedded::ENCODER,
            ModelKind::Decoder => embedded::DECODER,
            ModelKind::Posture => embedded::POSTURE,
        };
        Self {
            origin: format!("the built-in default {kind}"),
            bytes: Cow::Borrowed(bytes),
        }
    }

    pub fn file(path: &Path) -> Result<Self, EngineError> {
        let bytes = std::fs::read(path).map_err(|source| EngineError::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            origin: path.display().to_string(),
            bytes: Cow::Owned(bytes),
        })
    }
}

/// ONNX Runtime allows one environment per process, and it must outlive every session: it is
/// made on first use and kept, with the library it was loaded from.
static ENVIRONMENT: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

fn environment(library: Option<&Path>) -> Result<Environment, EngineError> {
    let wanted = library.map_or_else(crate::runtime::onnxruntime_library, Path::to_owned);
    let mut env = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((loaded, environment)) = env.as_ref() {
        let same = |a: &Path, b: &Path| a == b || a.canonicalize().ok() == b.canonicalize().ok();
        if library.is_some() && !same(loaded, &wanted) {
            return Err(EngineError::LibraryMismatch {
                loaded: loaded.clone(),
                wanted,
            });
        }
        return Ok(environment.clone());
    }
    let library_error = |message: String| EngineError::Library {
        path: wanted.clone(),
        message,
    };
    if !wanted.is_file() {
        return Err(library_error("no such file".into()));
    }
    let environment = ort::init_from(&wanted)
        .map_err(|e| library_error(e.to_string()))?
        .with_name("spmkd")
        .build()
        .map_err(|e| library_error(e.to_string()))?;
    *env = Some((wanted, environment.clone()));
    Ok(environment)
}

/// Sessions made in this process so far: what [`crate::model_pool`] saves shows here (the
/// tests of shared models count on it, and the ward benchmark reports it).
static SESSIONS_MADE: AtomicU64 = AtomicU64::new(0);

/// How many ONNX Runtime sessions this process has made.
pub fn sessions_made() -> u64 {
    SESSIONS_MADE.load(Ordering::Relaxed)
}

/// What a session was made with, for messages and for the latency estimate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub origin: String,
    /// Set when CUDA was asked for but the session runs on the CPU.
    pub fell_back: Option<String>,
}

fn session(
    source: &ModelSource,
    options: &EngineOptions,
) -> Result<(Session, SessionInfo), EngineError> {
    let env = environment(options.library.as_deref())?;
    let load = |message: String| EngineError::Load {
        origin: source.origin.clone(),
        message,
    };
    let mut builder = Session::builder(&env).map_err(|e| load(e.to_string()))?;
    if options.threads > 0 {
        builder = builder
            .with_intra_threads(options.threads)
            .map_err(|e| load(e.to_string()))?;
    }
    let mut fell_back = None;
    if options.device == Device::Cuda {
        let cuda = CUDA::default();
        let registered = match CUDA::is_available() {
            Ok(true) => cuda.register(&mut builder).map_err(|e| e.to_string()),
            Ok(false) => Err(
                "this ONNX Runtime was built without it (the PyPI onnxruntime wheel is CPU-only; onnxruntime-gpu has it)"
                    .to_owned(),
            ),
            Err(e) => Err(e.to_string()),
        };
        if let Err(message) = registered {
            if !options.allow_fallback {
                return Err(EngineError::Cuda { message });
            }
            fell_back = Some(message);
        }
    }
    let session = builder
        .commit_from_memory(&source.bytes)
        .map_err(|e| load(e.to_string()))?;
    SESSIONS_MADE.fetch_add(1, Ordering::Relaxed);
    Ok((
        session,
        SessionInfo {
            origin: source.origin.clone(),
            fell_back,
        },
    ))
}

fn metadata(
    session: &Session,
    origin: &str,
    kind: ModelKind,
) -> Result<ModelMetadata, EngineError> {
    let wrap = |source: MetadataError| EngineError::Metadata {
        origin: origin.to_owned(),
        source,
    };
    let meta = session.metadata().map_err(|e| EngineError::Load {
        origin: origin.to_owned(),
        message: e.to_string(),
    })?;
    let props = ALL_KEYS
        .iter()
        .filter_map(|&k| meta.custom(k).map(|v| (k.to_owned(), v)))
        .collect();
    let parsed = ModelMetadata::from_props(&props).map_err(wrap)?;
    parsed.expect_kind(kind).map_err(wrap)?;
    Ok(parsed)
}

/// Checks that the session's input `index` is a float tensor of exactly `want`.
fn expect_input(
    session: &Session,
    origin: &str,
    want: &[i64],
    what: &str,
) -> Result<(), EngineError> {
    let shape_error = |message: String| EngineError::Shape {
        origin: origin.to_owned(),
        message,
    };
    let [input] = session.inputs() else {
        return Err(shape_error(format!(
            "expected one input ({what}), the model has {}",
            session.inputs().len()
        )));
    };
    match input.dtype() {
        ValueType::Tensor { ty, shape, .. }
            if *ty == ort::value::TensorElementType::Float32 && &shape[..] == want =>
        {
            Ok(())
        }
        other => Err(shape_error(format!(
            "its input {:?} is {other}, but its metadata says {what} {want:?} (float)",
            input.name()
        ))),
    }
}

fn run_error(origin: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Run {
        origin: origin.to_owned(),
        message: e.to_string(),
    }
}

/// Runs a model of one `shape` input and one output into `out`, which must have the output's
/// length (`what` names its values in the error otherwise).
fn run_one(
    session: &mut Session,
    origin: &str,
    shape: [usize; 3],
    input: &[f32],
    out: &mut [f32],
    what: &str,
) -> Result<(), EngineError> {
    let tensor = TensorRef::from_array_view((shape, input)).map_err(|e| run_error(origin, e))?;
    let outputs = session
        .run(ort::inputs![tensor])
        .map_err(|e| run_error(origin, e))?;
    let (_, data) = outputs[0]
        .try_extract_tensor::<f32>()
        .map_err(|e| run_error(origin, e))?;
    if data.len() != out.len() {
        return Err(run_error(
            origin,
            format!("{} {what}, expected {}", data.len(), out.len()),
        ));
    }
    out.copy_from_slice(data);
    Ok(())
}

/// The encoder (with the fuser): a preprocessed `S x S` frame to keypoints and fused features.
pub struct Encoder {
    session: Session,
    pub info: SessionInfo,
    pub meta: ModelMetadata,
    /// `k x 3`: value, x, y (fractions of S).
    pub keypoints: Vec<f32>,
    /// `k`: spatial-softmax peaks.
    pub confidence: Vec<f32>,
    /// `k x 2f`: the decoder's input.
    pub fused: Vec<f32>,
}

impl Encoder {
    pub fn new(source: &ModelSource, options: &EngineOptions) -> Result<Self, EngineError> {
        let (session, info) = session(source, options)?;
        let meta = metadata(&session, &info.origin, ModelKind::Encoder)?;
        let s = meta.input_size as i64;
        expect_input(&session, &info.origin, &[1, 1, s, s], "the frame")?;
        if session.outputs().len() != 3 {
            return Err(EngineError::Shape {
                origin: info.origin,
                message: format!(
                    "expected 3 outputs (keypoints, confidence, fused), the model has {}",
                    session.outputs().len()
                ),
            });
        }
        let (k, f) = (meta.keypoints, meta.features);
        Ok(Self {
            session,
            info,
            keypoints: vec![0.0; k * KEYPOINT_VALUES],
            confidence: vec![0.0; k],
            fused: vec![0.0; k * 2 * f],
            meta,
        })
    }

    pub fn input_size(&self) -> usize {
        self.meta.input_size
    }

    /// Runs the session once on a blank frame: ONNX Runtime's first run allocates, and the
    /// outputs must be finite.
    pub fn warm_up(&mut self) -> Result<(), EngineError> {
        let s = self.meta.input_size;
        self.run(&vec![0.0; s * s])?;
        let origin = &self.info.origin;
        finite(origin, "keypoints", &self.keypoints)?;
        finite(origin, "confidences", &self.confidence)?;
        finite(origin, "features", &self.fused)
    }

    /// Runs one frame (`S x S`, preprocessed) into `keypoints`, `confidence` and `fused`.
    pub fn run(&mut self, input: &[f32]) -> Result<(), EngineError> {
        let s = self.meta.input_size;
        let origin = &self.info.origin;
        let tensor = TensorRef::from_array_view(([1usize, 1, s, s], input))
            .map_err(|e| run_error(origin, e))?;
        let outputs = self
            .session
            .run(ort::inputs![tensor])
            .map_err(|e| run_error(origin, e))?;
        for (i, out) in [&mut self.keypoints, &mut self.confidence, &mut self.fused]
            .into_iter()
            .enumerate()
        {
            let (_, data) = outputs[i]
                .try_extract_tensor::<f32>()
                .map_err(|e| run_error(origin, e))?;
            if data.len() != out.len() {
                return Err(run_error(
                    origin,
                    format!(
                        "output {i} has {} values, the metadata implies {}",
                        data.len(),
                        out.len()
                    ),
                ));
            }
            out.copy_from_slice(data);
        }
        Ok(())
    }
}

/// The decoder: fused keypoint features to the `S x S` reconstruction in `[0, 1]`.
pub struct Decoder {
    session: Session,
    pub info: SessionInfo,
    pub meta: ModelMetadata,
    /// `S x S`, the last reconstruction.
    pub map: Vec<f32>,
}

impl Decoder {
    /// A decoder for `encoder`: same input size, keypoints and features.
    pub fn new(
        source: &ModelSource,
        options: &EngineOptions,
        encoder: &ModelMetadata,
    ) -> Result<Self, EngineError> {
        let decoder = Self::load(source, options)?;
        decoder.fits(encoder)?;
        Ok(decoder)
    }

    /// A decoder on its own; [`Decoder::fits`] tells whether it fits an encoder.
    pub fn load(source: &ModelSource, options: &EngineOptions) -> Result<Self, EngineError> {
        let (session, info) = session(source, options)?;
        let meta = metadata(&session, &info.origin, ModelKind::Decoder)?;
        let (k, f) = (meta.keypoints as i64, meta.features as i64);
        expect_input(&session, &info.origin, &[1, k, 2 * f], "fused keypoints")?;
        let s = meta.input_size;
        Ok(Self {
            session,
            info,
            map: vec![0.0; s * s],
            meta,
        })
    }

    /// Whether this decoder reads what `encoder` writes: same input size, keypoints, features.
    pub fn fits(&self, encoder: &ModelMetadata) -> Result<(), EngineError> {
        let shape = |m: &ModelMetadata| (m.input_size, m.keypoints, m.features);
        if shape(&self.meta) == shape(encoder) {
            return Ok(());
        }
        Err(EngineError::Shape {
            origin: self.info.origin.clone(),
            message: format!(
                "this decoder (S, k, f) = {:?} does not fit the encoder {} {:?}",
                shape(&self.meta),
                encoder.version,
                shape(encoder)
            ),
        })
    }

    /// Runs the session once on blank features: ONNX Runtime's first run allocates, and the
    /// map must be finite.
    pub fn warm_up(&mut self) -> Result<(), EngineError> {
        let (k, f) = (self.meta.keypoints, self.meta.features);
        self.run(&vec![0.0; k * 2 * f])?;
        finite(&self.info.origin, "reconstruction", &self.map)
    }

    pub fn run(&mut self, fused: &[f32]) -> Result<(), EngineError> {
        let (k, f) = (self.meta.keypoints, self.meta.features);
        run_one(
            &mut self.session,
            &self.info.origin,
            [1, k, 2 * f],
            fused,
            &mut self.map,
            "map values",
        )
    }
}

/// The posture model: one frame's keypoint graph ([`crate::posture::nodes`]) to the
/// probabilities of the postures in [`crate::posture::Posture::ALL`].
pub struct PostureModel {
    session: Session,
    pub info: SessionInfo,
    pub meta: ModelMetadata,
    /// Values per node: [`crate::posture::BASE_FEATURES`] + the encoder's `f`.
    pub node_features: usize,
    /// The last run's probabilities.
    pub probabilities: Vec<f32>,
}

impl PostureModel {
    pub fn new(source: &ModelSource, options: &EngineOptions) -> Result<Self, EngineError> {
        let (session, info) = session(source, options)?;
        let meta = metadata(&session, &info.origin, ModelKind::Posture)?;
        let names: Vec<String> = crate::posture::Posture::ALL
            .iter()
            .map(ToString::to_string)
            .collect();
        if meta.classes != names {
            return Err(EngineError::Shape {
                origin: info.origin,
                message: format!(
                    "its classes are {:?}; the plugin knows {names:?}, in that order",
                    meta.classes
                ),
            });
        }
        let node_features = crate::posture::BASE_FEATURES + meta.features;
        expect_input(
            &session,
            &info.origin,
            &[1, meta.keypoints as i64, node_features as i64],
            "a keypoint graph",
        )?;
        Ok(Self {
            session,
            info,
            probabilities: vec![0.0; meta.classes.len()],
            node_features,
            meta,
        })
    }

    /// Runs the session once on a blank graph: ONNX Runtime's first run allocates, and the
    /// probabilities must be finite.
    pub fn warm_up(&mut self) -> Result<(), EngineError> {
        let nodes = vec![0.0; self.meta.keypoints * self.node_features];
        self.run(&nodes)?;
        finite(&self.info.origin, "probabilities", &self.probabilities)
    }

    /// Runs one graph (`k x node_features` values) into `probabilities`.
    pub fn run(&mut self, nodes: &[f32]) -> Result<&[f32], EngineError> {
        let (k, n) = (self.meta.keypoints, self.node_features);
        run_one(
            &mut self.session,
            &self.info.origin,
            [1, k, n],
            nodes,
            &mut self.probabilities,
            "class logits",
        )?;
        crate::posture::softmax(&mut self.probabilities);
        Ok(&self.probabilities)
    }
}
