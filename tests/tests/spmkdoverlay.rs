//! `spmkdoverlay`, checked pixel by pixel: colormap ends, upscaling, keypoint markers by
//! confidence, the posture label, and the pose meta rescaled onto the picture.

use gst::prelude::*;
use gst_check::Harness;
use gstspmkd::posemeta::PoseMeta;
use spmkd_core::posture::Posture;
use spmkd_core::schema::{Keypoint, MonitorRecord, PoseRecord, PostureEstimate, SCHEMA_VERSION};
use spmkd_tests::init;

const W: usize = 32;
const H: usize = 64;
const VIRIDIS_LOW: [u8; 4] = [68, 1, 84, 255];
const VIRIDIS_HIGH: [u8; 4] = [254, 232, 37, 255];

/// A frame with no pressure but one cell (x 10, y 40) at 1000.
fn hot_cell_frame(format: gst_video::VideoFormat) -> gst::Buffer {
    let info = gst_video::VideoInfo::builder(format, W as u32, H as u32)
        .build()
        .unwrap();
    let stride = info.stride()[0] as usize;
    let mut data = vec![0u8; info.size()];
    match format {
        gst_video::VideoFormat::Gray8 => data[40 * stride + 10] = 250,
        _ => data[40 * stride + 20..][..2].copy_from_slice(&1000u16.to_le_bytes()),
    }
    let mut b = gst::Buffer::from_mut_slice(data);
    b.get_mut().unwrap().set_pts(gst::ClockTime::ZERO);
    b
}

fn pose(keypoints: Vec<Keypoint>, posture: Option<Posture>) -> PoseRecord {
    PoseRecord {
        schema: SCHEMA_VERSION,
        pts_ns: None,
        duration_ns: None,
        running_time_ns: None,
        width: W as u32,
        height: H as u32,
        model: "test".into(),
        inference_us: 1,
        stale: false,
        quality: None,
        confidence_reference: None,
        layout: None,
        layout_ramp: None,
        orientation: Default::default(),
        occupied: None,
        posture: posture.map(|label| PostureEstimate {
            label: label.into(),
            probabilities: vec![0.0, 1.0, 0.0],
        }),
        monitor: None,
        keypoints,
        features: Vec::new(),
    }
}

fn keypoint(x: f32, y: f32, confidence: f32) -> Keypoint {
    Keypoint {
        x,
        y,
        confidence,
        pressure: 0.0,
    }
}

/// Runs one buffer through an overlay with `props`; the RGBA picture and its width.
fn render(
    props: &[(&str, glib::Value)],
    format: gst_video::VideoFormat,
    pose: Option<&PoseRecord>,
) -> (Vec<u8>, usize, usize, gst::Buffer) {
    render_with(props, format, pose, None)
}

/// [`render`], with an exposure map (seconds under load per cell) in the pose meta.
fn render_with(
    props: &[(&str, glib::Value)],
    format: gst_video::VideoFormat,
    pose: Option<&PoseRecord>,
    exposure: Option<(&MonitorRecord, &[f32])>,
) -> (Vec<u8>, usize, usize, gst::Buffer) {
    init();
    let mut builder = gst::ElementFactory::make("spmkdoverlay");
    for (name, value) in props {
        builder = builder.property(name, value.clone());
    }
    let element = builder.build().unwrap();
    let mut h = Harness::with_element(&element, Some("sink"), Some("src"));
    h.play();
    h.set_src_caps(
        gst_video::VideoInfo::builder(format, W as u32, H as u32)
            .fps(gst::Fraction::new(1, 1))
            .build()
            .unwrap()
            .to_caps()
            .unwrap(),
    );
    let mut input = hot_cell_frame(format);
    if let Some(p) = pose {
        PoseMeta::add(input.get_mut().unwrap(), p).unwrap();
    }
    if let Some((monitor, map)) = exposure {
        assert!(PoseMeta::set_monitor(
            input.get_mut().unwrap(),
            monitor,
            Some(map)
        ));
    }
    let out = h.push_and_pull(input).unwrap();
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    let info = gst_video::VideoInfo::from_caps(&caps).unwrap();
    assert_eq!(info.format(), gst_video::VideoFormat::Rgba);
    let (ow, oh) = (info.width() as usize, info.height() as usize);
    let stride = info.stride()[0] as usize;
    let map = out.map_readable().unwrap();
    let pixels = (0..oh)
        .flat_map(|y| map[y * stride..][..4 * ow].to_vec())
        .collect();
    drop(map);
    (pixels, ow, oh, out)
}

fn px(pixels: &[u8], width: usize, x: usize, y: usize) -> [u8; 4] {
    pixels[4 * (y * width + x)..][..4].try_into().unwrap()
}

use gst::glib;

#[test]
fn exposure_mode_paints_time_under_load_with_a_legend() {
    let monitor = MonitorRecord {
        occupied: true,
        contact: 0.1,
        edge: 0.0,
        edge_side: "left".into(),
        at_edge: false,
        floor: 0.0,
        noise: 1.0,
        movement: 0.0,
        moved: false,
        still_ns: 0,
        pressure_change: 0.0,
        keypoint_shift: None,
        loaded_cells: 2,
        regions: Vec::new(),
        offloaded: false,
        trust: 0.9,
    };
    // Cell (0, 0) two hours under load (the default top of the scale), (3, 2) three hours
    // (saturates); the hot pressure cell none.
    let mut map = vec![0.0f32; W * H];
    map[0] = 7200.0;
    map[2 * W + 3] = 3.0 * 3600.0;
    let props = [
        ("scale", 4u32.to_value()),
        ("mode", gstspmkd::spmkdoverlay::Mode::Exposure.to_value()),
        ("keypoints", false.to_value()),
        ("label", false.to_value()),
    ];
    let pose = pose(Vec::new(), None);
    let (p, w, h, _) = render_with(
        &props,
        gst_video::VideoFormat::Gray16Le,
        Some(&pose),
        Some((&monitor, &map)),
    );
    assert_eq!(px(&p, w, 1, 1), VIRIDIS_HIGH);
    assert_eq!(px(&p, w, 13, 9), VIRIDIS_HIGH);
    assert_eq!(
        px(&p, w, 41, 161),
        VIRIDIS_LOW,
        "pressure is not what is painted"
    );
    // The legend: the colour bar across the bottom rows, low to high.
    assert_eq!(px(&p, w, 0, h - 1), VIRIDIS_LOW);
    assert_eq!(px(&p, w, w - 1, h - 1), VIRIDIS_HIGH);
    // Without a map (no spmkdmonitor exposure-map=true upstream): pressure, as a fallback.
    let (p, w, _, _) = render_with(&props, gst_video::VideoFormat::Gray16Le, Some(&pose), None);
    assert_eq!(px(&p, w, 41, 161), VIRIDIS_HIGH);
}

#[test]
fn colormap_ends_and_integer_upscaling() {
    let (p, w, h, _) = render(
        &[("scale", 4u32.to_value())],
        gst_video::VideoFormat::Gray16Le,
        None,
    );
    assert_eq!((w, h), (4 * W, 4 * H));
    for y in 0..h {
        for x in 0..w {
            let hot = (40..44).contains(&x) && (160..164).contains(&y);
            let want = if hot { VIRIDIS_HIGH } else { VIRIDIS_LOW };
            assert_eq!(px(&p, w, x, y), want, "({x}, {y})");
        }
    }
    // Gray: black to white; GRAY8 input reads the same way.
    let (p, w, _, _) = render(
        &[
            ("scale", 2u32.to_value()),
            (
                "colormap",
                gstspmkd::spmkdoverlay::Colormap::Gray.to_value(),
            ),
        ],
        gst_video::VideoFormat::Gray8,
        None,
    );
    assert_eq!(px(&p, w, 20, 80), [255, 255, 255, 255]);
    assert_eq!(px(&p, w, 0, 0), [0, 0, 0, 255]);
}

#[test]
fn keypoints_are_drawn_by_confidence_and_the_pose_is_rescaled() {
    let record = pose(
        vec![keypoint(5.5, 5.5, 1.0), keypoint(20.5, 20.5, 0.2)],
        None,
    );
    let (p, w, _, out) = render(
        &[("scale", 8u32.to_value())],
        gst_video::VideoFormat::Gray16Le,
        Some(&record),
    );
    // A confident keypoint: an opaque white disc at (44, 44).
    assert_eq!(px(&p, w, 44, 44), [255, 255, 255, 255]);
    // A weak one: a paler, smaller mark; the background 4 pixels away is untouched.
    let weak = px(&p, w, 164, 164);
    assert!(weak[0] > VIRIDIS_LOW[0] && weak[0] < 255, "{weak:?}");
    assert_eq!(px(&p, w, 164 + 5, 164), VIRIDIS_LOW);
    assert_eq!(px(&p, w, 44 + 7, 44), VIRIDIS_LOW);
    // The meta goes on in output pixels.
    let moved = PoseMeta::read(&out).unwrap().unwrap();
    assert_eq!((moved.width, moved.height), (8 * W as u32, 8 * H as u32));
    assert_eq!((moved.keypoints[0].x, moved.keypoints[0].y), (44.0, 44.0));

    // Below min-confidence: not drawn.
    let (p, w, _, _) = render(
        &[
            ("scale", 8u32.to_value()),
            ("min-confidence", 0.5f32.to_value()),
        ],
        gst_video::VideoFormat::Gray16Le,
        Some(&record),
    );
    assert_eq!(px(&p, w, 164, 164), VIRIDIS_LOW);
    assert_eq!(px(&p, w, 44, 44), [255, 255, 255, 255]);
}

#[test]
fn the_posture_label_is_written_when_the_meta_has_one() {
    let count_white = |p: &[u8], w: usize| {
        (0..40)
            .flat_map(|y| (0..100).map(move |x| (x, y)))
            .filter(|&(x, y)| px(p, w, x, y)[..3].iter().all(|&c| c > 200))
            .count()
    };
    let labelled = pose(vec![], Some(Posture::Left));
    let (p, w, _, _) = render(&[], gst_video::VideoFormat::Gray16Le, Some(&labelled));
    let with_label = count_white(&p, w);
    assert!(with_label > 40, "{with_label} white pixels of text");
    let (p, w, _, _) = render(
        &[("label", false.to_value())],
        gst_video::VideoFormat::Gray16Le,
        Some(&labelled),
    );
    assert_eq!(count_white(&p, w), 0);
    let (p, w, _, _) = render(
        &[],
        gst_video::VideoFormat::Gray16Le,
        Some(&pose(vec![], None)),
    );
    assert_eq!(count_white(&p, w), 0);
}

/// `frames` zero frames of `width x height` as an `.npy`.
fn zeros(dir: &std::path::Path, width: usize, height: usize) -> std::path::PathBuf {
    let path = dir.join(format!("{width}x{height}.npy"));
    let data = vec![0u8; width * height * 2];
    std::fs::write(
        &path,
        spmkd_tests::npy_bytes("<u2", &[1, height, width], &data),
    )
    .unwrap();
    path
}

#[test]
fn a_frame_too_large_for_its_scale_is_drawn_smaller_and_one_too_large_for_any_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // 2048 cells wide at scale 64 would be a 131072-pixel-wide picture: drawn at 15, as
    // the capsfilter checks; a 1 x 32743 frame (an odd size a mat announced) at 1.
    for ((w, h), scale, fitted) in [((2048, 4), 64, 15), ((1, 32743), 8, 1)] {
        let outcome = spmkd_tests::run_pipeline(
            &format!(
                "pmatsrc location={} ! spmkdoverlay scale={scale} ! video/x-raw,width={},height={} ! fakesink name=sink",
                zeros(dir.path(), w, h).display(),
                w * fitted,
                h * fitted
            ),
            &["sink"],
            gst::ClockTime::from_seconds(30),
        );
        assert!(outcome.eos, "{w}x{h}: {outcome:?}");
        assert_eq!(outcome.buffers, [1]);
        assert!(
            outcome
                .warnings
                .iter()
                .any(|m| m.contains(&format!("{w}x{h} frame at scale={scale}"))
                    && m.contains(&format!("drawn at scale={fitted}"))),
            "{:?}",
            outcome.warnings
        );
    }
    // Wider than a picture can be at all: refused, with the reason.
    let outcome = spmkd_tests::run_pipeline(
        &format!(
            "pmatsrc location={} ! spmkdoverlay ! fakesink name=sink",
            zeros(dir.path(), 40000, 1).display()
        ),
        &["sink"],
        gst::ClockTime::from_seconds(30),
    );
    let error = outcome.error.expect("refused");
    assert!(
        error.contains("40000x1 frame is larger than 32767 pixels a side even at scale=1"),
        "{error}"
    );
}
