//! `SpmkdPoseMeta`: the pose of a frame, carried on its buffer.
//!
//! GStreamer 1.22 has no analytics meta, so the pose is a custom meta (registered once, tags
//! `video` and `size`) holding a `spmkd/pose` structure with the fields of
//! [`spmkd_core::schema`]; keypoints are four parallel float arrays `x`, `y`, `confidence`,
//! `pressure`. C and Python read it with `gst_buffer_get_custom_meta (buffer, "SpmkdPoseMeta")`;
//! Rust code uses [`PoseMeta`], so no field name is spelled outside core.
//!
//! Coordinates are in cells of the frame the meta is on. When an element scales the frame
//! (`videoscale`, or anything that transforms metas with the video scale transform), the meta
//! is rescaled with it: x and y by the ratio of the widths and heights, and the reference
//! width/height become the new frame's. Any other transform except copy drops the meta, as a
//! pose that may no longer match the pixels is worse than none.

use std::sync::Once;

use gst::glib;
use gst::glib::translate::{FromGlib, IntoGlib};
use spmkd_core::orientation::Orientation;
use spmkd_core::schema::fields::monitor as mf;
use spmkd_core::schema::{
    ExposedRegion, Keypoint, MonitorRecord, POSE_META, POSE_STRUCTURE, PoseRecord, PostureEstimate,
    PostureLabel, fields,
};

/// Why a `SpmkdPoseMeta` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PoseMetaError {
    #[error("SpmkdPoseMeta: field {field:?}: {message}")]
    Field {
        field: &'static str,
        message: String,
    },
    #[error("SpmkdPoseMeta: the keypoint arrays differ in length (or the features are not k x f)")]
    Ragged,
}

/// Registers the meta (idempotent; the plugin does it when it loads).
pub fn register() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        let name = std::ffi::CString::new(POSE_META).expect("no NUL in the meta name");
        let mut tags = [
            gst_video::ffi::GST_META_TAG_VIDEO_STR.as_ptr() as *const std::ffi::c_char,
            gst_video::ffi::GST_META_TAG_VIDEO_SIZE_STR.as_ptr() as *const std::ffi::c_char,
            std::ptr::null(),
        ];
        // The safe `CustomMeta::register_with_transform` does not pass the transform's data
        // (the in and out video infos of a scale), which rescaling needs; hence the FFI call.
        // SAFETY: the name and tags are NUL-terminated and outlive the call (GStreamer copies
        // them); the transform function matches GstCustomMetaTransformFunction.
        unsafe {
            gst::ffi::gst_meta_register_custom(
                name.as_ptr(),
                tags.as_mut_ptr(),
                Some(transform),
                std::ptr::null_mut(),
                None,
            );
        }
    });
}

/// Typed access to the `SpmkdPoseMeta` of a buffer.
pub struct PoseMeta;

impl PoseMeta {
    /// Attaches `record` (timestamps come from the buffer and are not stored).
    pub fn add(buffer: &mut gst::BufferRef, record: &PoseRecord) -> Result<(), glib::BoolError> {
        let mut meta = gst::meta::CustomMeta::add(buffer, POSE_META)?;
        write(meta.mut_structure(), record);
        Ok(())
    }

    /// Replaces the buffer's pose (or attaches one).
    pub fn set(buffer: &mut gst::BufferRef, record: &PoseRecord) -> Result<(), glib::BoolError> {
        match gst::meta::CustomMeta::from_mut_buffer(buffer, POSE_META) {
            Ok(mut meta) => {
                write(meta.mut_structure(), record);
                Ok(())
            }
            Err(_) => Self::add(buffer, record),
        }
    }

    /// Writes `posture` into the buffer's pose, leaving the rest of it as it is; `false` when the
    /// buffer has no pose. (A posture element needs no copy of the keypoint arrays.)
    pub fn set_posture(buffer: &mut gst::BufferRef, posture: Option<&PostureEstimate>) -> bool {
        match gst::meta::CustomMeta::from_mut_buffer(buffer, POSE_META) {
            Ok(mut meta) => {
                write_posture(meta.mut_structure(), posture);
                true
            }
            Err(_) => false,
        }
    }

    /// Writes the monitor's findings (and, when given, the per-cell seconds under load) into
    /// the buffer's pose; `false` when the buffer has no pose.
    pub fn set_monitor(
        buffer: &mut gst::BufferRef,
        monitor: &MonitorRecord,
        exposure_map: Option<&[f32]>,
    ) -> bool {
        match gst::meta::CustomMeta::from_mut_buffer(buffer, POSE_META) {
            Ok(mut meta) => {
                let s = meta.mut_structure();
                s.set(fields::MONITOR, monitor_structure(monitor));
                match exposure_map {
                    Some(map) => s.set(fields::EXPOSURE_MAP, floats(map.iter().copied())),
                    None => s.remove_field(fields::EXPOSURE_MAP),
                }
                true
            }
            Err(_) => false,
        }
    }

    /// The per-cell seconds under load `spmkdmonitor` wrote, `Ok(None)` without one.
    pub fn exposure_map(buffer: &gst::BufferRef) -> Result<Option<Vec<f32>>, PoseMetaError> {
        let Ok(meta) = gst::meta::CustomMeta::from_buffer(buffer, POSE_META) else {
            return Ok(None);
        };
        let s = meta.structure();
        if s.has_field(fields::EXPOSURE_MAP) {
            float_array(s, fields::EXPOSURE_MAP).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The buffer's pose, `Ok(None)` when it has none. PTS and duration are the buffer's.
    pub fn read(buffer: &gst::BufferRef) -> Result<Option<PoseRecord>, PoseMetaError> {
        let Ok(meta) = gst::meta::CustomMeta::from_buffer(buffer, POSE_META) else {
            return Ok(None);
        };
        let mut record = read(meta.structure())?;
        record.pts_ns = buffer.pts().map(gst::ClockTime::nseconds);
        record.duration_ns = buffer.duration().map(gst::ClockTime::nseconds);
        Ok(Some(record))
    }
}

fn floats(values: impl Iterator<Item = f32>) -> gst::Array {
    gst::Array::new(values)
}

fn write(s: &mut gst::StructureRef, r: &PoseRecord) {
    s.set_name(POSE_STRUCTURE);
    s.set(fields::SCHEMA, r.schema);
    s.set(fields::WIDTH, r.width);
    s.set(fields::HEIGHT, r.height);
    s.set(fields::MODEL, r.model.as_str());
    s.set(fields::INFERENCE_US, r.inference_us);
    s.set(fields::STALE, r.stale);
    match r.quality {
        Some(q) => s.set(fields::QUALITY, q),
        None => s.remove_field(fields::QUALITY),
    }
    match r.confidence_reference {
        Some(c) => s.set(fields::CONFIDENCE_REFERENCE, c),
        None => s.remove_field(fields::CONFIDENCE_REFERENCE),
    }
    match r.layout {
        Some(l) => s.set(fields::LAYOUT, l),
        None => s.remove_field(fields::LAYOUT),
    }
    match r.layout_ramp {
        Some((lo, hi)) => s.set(fields::LAYOUT_RAMP, floats([lo, hi].into_iter())),
        None => s.remove_field(fields::LAYOUT_RAMP),
    }
    if r.orientation.is_identity() {
        s.remove_field(fields::ORIENTATION);
    } else {
        s.set(fields::ORIENTATION, r.orientation.as_str());
    }
    match r.occupied {
        Some(o) => s.set(fields::OCCUPIED, o),
        None => s.remove_field(fields::OCCUPIED),
    }
    write_posture(s, r.posture.as_ref());
    match &r.monitor {
        Some(m) => s.set(fields::MONITOR, monitor_structure(m)),
        None => s.remove_field(fields::MONITOR),
    }
    let k = &r.keypoints;
    s.set(fields::X, floats(k.iter().map(|p| p.x)));
    s.set(fields::Y, floats(k.iter().map(|p| p.y)));
    s.set(fields::CONFIDENCE, floats(k.iter().map(|p| p.confidence)));
    s.set(fields::PRESSURE, floats(k.iter().map(|p| p.pressure)));
    if r.features.is_empty() {
        s.remove_field(fields::FEATURES);
    } else {
        s.set(fields::FEATURES, floats(r.features.iter().copied()));
    }
}

fn write_posture(s: &mut gst::StructureRef, posture: Option<&PostureEstimate>) {
    match posture {
        Some(p) => {
            s.set(fields::POSTURE, p.label.to_string());
            s.set(
                fields::POSTURE_PROBABILITIES,
                floats(p.probabilities.iter().copied()),
            );
        }
        None => {
            s.remove_field(fields::POSTURE);
            s.remove_field(fields::POSTURE_PROBABILITIES);
        }
    }
}

fn monitor_structure(m: &MonitorRecord) -> gst::Structure {
    let mut b = gst::Structure::builder(mf::STRUCTURE)
        .field(mf::OCCUPIED, m.occupied)
        .field(mf::CONTACT, m.contact)
        .field(mf::EDGE, m.edge)
        .field(mf::EDGE_SIDE, m.edge_side.as_str())
        .field(mf::AT_EDGE, m.at_edge)
        .field(mf::FLOOR, m.floor)
        .field(mf::NOISE, m.noise)
        .field(mf::MOVEMENT, m.movement)
        .field(mf::MOVED, m.moved)
        .field(mf::STILL_NS, m.still_ns)
        .field(mf::PRESSURE_CHANGE, m.pressure_change)
        .field(mf::LOADED_CELLS, m.loaded_cells)
        .field(mf::OFFLOADED, m.offloaded)
        .field(mf::TRUST, m.trust);
    if let Some(shift) = m.keypoint_shift {
        b = b.field(mf::KEYPOINT_SHIFT, shift);
    }
    let r = &m.regions;
    b.field(mf::REGION_X, floats(r.iter().map(|r| r.x)))
        .field(mf::REGION_Y, floats(r.iter().map(|r| r.y)))
        .field(mf::REGION_CELLS, gst::Array::new(r.iter().map(|r| r.cells)))
        .field(
            mf::REGION_UNDER_LOAD_NS,
            gst::Array::new(r.iter().map(|r| r.under_load_ns)),
        )
        .field(mf::REGION_DOSE, floats(r.iter().map(|r| r.dose)))
        .build()
}

fn array<T: for<'a> glib::value::FromValue<'a>>(
    s: &gst::StructureRef,
    name: &'static str,
) -> Result<Vec<T>, PoseMetaError> {
    field::<gst::ArrayRef>(s, name)?
        .iter()
        .map(|v| {
            v.get::<T>().map_err(|e| PoseMetaError::Field {
                field: name,
                message: e.to_string(),
            })
        })
        .collect()
}

fn read_monitor(s: &gst::StructureRef) -> Result<MonitorRecord, PoseMetaError> {
    let (x, y) = (
        array::<f32>(s, mf::REGION_X)?,
        array::<f32>(s, mf::REGION_Y)?,
    );
    let cells = array::<u32>(s, mf::REGION_CELLS)?;
    let under = array::<u64>(s, mf::REGION_UNDER_LOAD_NS)?;
    let dose = array::<f32>(s, mf::REGION_DOSE)?;
    if [y.len(), cells.len(), under.len(), dose.len()]
        .iter()
        .any(|&n| n != x.len())
    {
        return Err(PoseMetaError::Ragged);
    }
    Ok(MonitorRecord {
        occupied: field(s, mf::OCCUPIED)?,
        contact: field(s, mf::CONTACT)?,
        edge: field(s, mf::EDGE)?,
        edge_side: field(s, mf::EDGE_SIDE)?,
        at_edge: field(s, mf::AT_EDGE)?,
        floor: field(s, mf::FLOOR)?,
        noise: field(s, mf::NOISE)?,
        movement: field(s, mf::MOVEMENT)?,
        moved: field(s, mf::MOVED)?,
        still_ns: field(s, mf::STILL_NS)?,
        pressure_change: field(s, mf::PRESSURE_CHANGE)?,
        keypoint_shift: optional(s, mf::KEYPOINT_SHIFT)?,
        loaded_cells: field(s, mf::LOADED_CELLS)?,
        regions: (0..x.len())
            .map(|i| ExposedRegion {
                x: x[i],
                y: y[i],
                cells: cells[i],
                under_load_ns: under[i],
                dose: dose[i],
            })
            .collect(),
        offloaded: field(s, mf::OFFLOADED)?,
        trust: field(s, mf::TRUST)?,
    })
}

fn field<'a, T: glib::value::FromValue<'a>>(
    s: &'a gst::StructureRef,
    name: &'static str,
) -> Result<T, PoseMetaError> {
    s.get::<T>(name).map_err(|e| PoseMetaError::Field {
        field: name,
        message: e.to_string(),
    })
}

/// A field that may be absent.
fn optional<'a, T: glib::value::FromValue<'a>>(
    s: &'a gst::StructureRef,
    name: &'static str,
) -> Result<Option<T>, PoseMetaError> {
    s.has_field(name).then(|| field(s, name)).transpose()
}

fn float_array(s: &gst::StructureRef, name: &'static str) -> Result<Vec<f32>, PoseMetaError> {
    array::<f32>(s, name)
}

/// The two ends of a ramp, when the field is there.
fn optional_ramp(
    s: &gst::StructureRef,
    name: &'static str,
) -> Result<Option<(f32, f32)>, PoseMetaError> {
    if !s.has_field(name) {
        return Ok(None);
    }
    match float_array(s, name)?[..] {
        [lo, hi] => Ok(Some((lo, hi))),
        ref other => Err(PoseMetaError::Field {
            field: name,
            message: format!("{} values, expected 2", other.len()),
        }),
    }
}

fn read(s: &gst::StructureRef) -> Result<PoseRecord, PoseMetaError> {
    let (x, y) = (float_array(s, fields::X)?, float_array(s, fields::Y)?);
    let confidence = float_array(s, fields::CONFIDENCE)?;
    let pressure = float_array(s, fields::PRESSURE)?;
    if [y.len(), confidence.len(), pressure.len()]
        .iter()
        .any(|&n| n != x.len())
    {
        return Err(PoseMetaError::Ragged);
    }
    let keypoints = (0..x.len())
        .map(|i| Keypoint {
            x: x[i],
            y: y[i],
            confidence: confidence[i],
            pressure: pressure[i],
        })
        .collect();
    let features = if s.has_field(fields::FEATURES) {
        float_array(s, fields::FEATURES)?
    } else {
        Vec::new()
    };
    if !x.is_empty() && !features.len().is_multiple_of(x.len()) {
        return Err(PoseMetaError::Ragged);
    }
    let posture = if s.has_field(fields::POSTURE) {
        let label: String = field(s, fields::POSTURE)?;
        Some(PostureEstimate {
            label: label
                .parse::<PostureLabel>()
                .map_err(|e| PoseMetaError::Field {
                    field: fields::POSTURE,
                    message: e.to_string(),
                })?,
            probabilities: float_array(s, fields::POSTURE_PROBABILITIES)?,
        })
    } else {
        None
    };
    Ok(PoseRecord {
        schema: field(s, fields::SCHEMA)?,
        pts_ns: None,
        duration_ns: None,
        running_time_ns: None,
        width: field(s, fields::WIDTH)?,
        height: field(s, fields::HEIGHT)?,
        model: field(s, fields::MODEL)?,
        inference_us: field(s, fields::INFERENCE_US)?,
        stale: field(s, fields::STALE)?,
        quality: optional(s, fields::QUALITY)?,
        confidence_reference: optional(s, fields::CONFIDENCE_REFERENCE)?,
        layout: optional(s, fields::LAYOUT)?,
        layout_ramp: optional_ramp(s, fields::LAYOUT_RAMP)?,
        orientation: optional::<String>(s, fields::ORIENTATION)?
            .map(|name| {
                name.parse::<Orientation>()
                    .map_err(|e| PoseMetaError::Field {
                        field: fields::ORIENTATION,
                        message: e.to_string(),
                    })
            })
            .transpose()?
            .unwrap_or_default(),
        occupied: optional(s, fields::OCCUPIED)?,
        posture,
        monitor: if s.has_field(fields::MONITOR) {
            Some(field::<gst::Structure>(s, fields::MONITOR).and_then(|m| read_monitor(&m))?)
        } else {
            None
        },
        keypoints,
        features,
    })
}

/// GstCustomMetaTransformFunction: copy as is, rescale on a video scale, drop otherwise.
unsafe extern "C" fn transform(
    dest: *mut gst::ffi::GstBuffer,
    meta: *mut gst::ffi::GstCustomMeta,
    _src: *mut gst::ffi::GstBuffer,
    type_: glib::ffi::GQuark,
    data: glib::ffi::gpointer,
    _user_data: glib::ffi::gpointer,
) -> glib::ffi::gboolean {
    // SAFETY: GStreamer passes a valid meta of this API and a writable destination buffer;
    // for the scale transform `data` is a GstVideoMetaTransform with both video infos.
    let (meta, dest, kind) = unsafe {
        (
            &*(meta as *const gst::meta::CustomMeta),
            gst::BufferRef::from_mut_ptr(dest),
            glib::Quark::from_glib(type_),
        )
    };
    let Ok(record) = read(meta.structure()) else {
        return false.into_glib();
    };
    let record = if kind == glib::Quark::from_str("gst-copy") {
        let map = meta
            .structure()
            .get::<gst::Array>(fields::EXPOSURE_MAP)
            .ok();
        if PoseMeta::set(dest, &record).is_err() {
            return false.into_glib();
        }
        // The exposure map is on the same grid in a copy (a scaled frame drops it).
        if let (Some(map), Ok(mut meta)) =
            (map, gst::meta::CustomMeta::from_mut_buffer(dest, POSE_META))
        {
            meta.mut_structure().set(fields::EXPOSURE_MAP, map);
        }
        return true.into_glib();
    } else if kind == glib::Quark::from_str("gst-video-scale") && !data.is_null() {
        let t = unsafe { &*(data as *const gst_video::ffi::GstVideoMetaTransform) };
        if t.out_info.is_null() {
            return false.into_glib();
        }
        let o = unsafe { &*t.out_info };
        if o.width <= 0 || o.height <= 0 {
            return false.into_glib();
        }
        record.rescaled(o.width as u32, o.height as u32)
    } else {
        return false.into_glib();
    };
    PoseMeta::set(dest, &record).is_ok().into_glib()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> PoseRecord {
        PoseRecord {
            schema: spmkd_core::schema::SCHEMA_VERSION,
            pts_ns: None,
            duration_ns: None,
            running_time_ns: None,
            width: 32,
            height: 64,
            model: "m".into(),
            inference_us: 12,
            stale: false,
            quality: Some(0.5),
            confidence_reference: Some(0.25),
            layout: Some(-0.75),
            layout_ramp: Some((0.5, 0.75)),
            orientation: Orientation::UpperRightLowerLeft,
            occupied: Some(false),
            posture: Some(PostureEstimate {
                label: spmkd_core::posture::Posture::Right.into(),
                probabilities: vec![0.1, 0.2, 0.7],
            }),
            monitor: None,
            keypoints: vec![
                Keypoint {
                    x: 1.5,
                    y: 2.5,
                    confidence: 0.25,
                    pressure: 0.75,
                },
                Keypoint {
                    x: 30.0,
                    y: 60.0,
                    confidence: 0.5,
                    pressure: 0.0,
                },
            ],
            features: vec![0.5, 1.5, -2.0, 0.0],
        }
    }

    #[test]
    fn round_trip_through_a_buffer_and_a_copy() {
        gst::init().unwrap();
        register();
        let mut buffer = gst::Buffer::with_size(4).unwrap();
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_seconds(3));
            PoseMeta::add(b, &record()).unwrap();
        }
        let read = PoseMeta::read(&buffer).unwrap().unwrap();
        assert_eq!(read.pts_ns, Some(3_000_000_000));
        assert_eq!(
            PoseRecord {
                pts_ns: None,
                ..read
            },
            record()
        );
        // A deep copy goes through the transform function's copy branch.
        let copy = buffer.copy_deep().unwrap();
        assert_eq!(
            PoseMeta::read(&copy).unwrap().map(|r| r.keypoints),
            Some(record().keypoints)
        );
        assert!(
            PoseMeta::read(&gst::Buffer::new()).unwrap().is_none(),
            "no meta"
        );
    }

    #[test]
    fn set_posture_changes_only_the_posture() {
        gst::init().unwrap();
        register();
        let mut buffer = gst::Buffer::with_size(4).unwrap();
        let b = buffer.get_mut().unwrap();
        assert!(!PoseMeta::set_posture(b, None), "no pose to write into");
        let without = PoseRecord {
            posture: None,
            monitor: None,
            ..record()
        };
        PoseMeta::add(b, &without).unwrap();
        assert!(PoseMeta::set_posture(b, record().posture.as_ref()));
        assert_eq!(PoseMeta::read(&buffer).unwrap().unwrap(), record());
        assert!(PoseMeta::set_posture(buffer.get_mut().unwrap(), None));
        assert_eq!(PoseMeta::read(&buffer).unwrap().unwrap(), without);
    }

    #[test]
    fn features_that_are_not_k_by_f_are_refused() {
        gst::init().unwrap();
        register();
        let mut buffer = gst::Buffer::with_size(4).unwrap();
        let ragged = PoseRecord {
            features: vec![1.0, 2.0, 3.0],
            ..record()
        };
        PoseMeta::add(buffer.get_mut().unwrap(), &ragged).unwrap();
        assert!(matches!(
            PoseMeta::read(&buffer),
            Err(PoseMetaError::Ragged)
        ));
    }

    #[test]
    fn a_layout_ramp_that_is_not_two_numbers_is_refused() {
        gst::init().unwrap();
        let mut s = gst::Structure::new_empty(POSE_STRUCTURE);
        write(&mut s, &record());
        assert_eq!(read(&s).unwrap().layout_ramp, Some((0.5, 0.75)));
        s.set(fields::LAYOUT_RAMP, floats([0.5].into_iter()));
        assert!(matches!(
            read(&s),
            Err(PoseMetaError::Field { field, .. }) if field == fields::LAYOUT_RAMP
        ));
    }

    #[test]
    fn rescale_scales_coordinates_and_grid() {
        let r = record().rescaled(64, 32);
        assert_eq!((r.width, r.height), (64, 32));
        assert_eq!((r.keypoints[0].x, r.keypoints[0].y), (3.0, 1.25));
    }
}
