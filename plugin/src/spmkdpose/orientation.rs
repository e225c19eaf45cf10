//! The `orientation` property: one of core's eight [`Orientation`]s under GStreamer's
//! `video-direction` names, or `auto`, the encoder's own (`spmkd.orientation`).

use gst::glib;
use spmkd_core::orientation::Orientation;

#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSpmkdOrientation")]
pub enum OrientationChoice {
    #[default]
    #[enum_value(
        name = "What the encoder's spmkd.orientation says (identity for the built-in model)",
        nick = "auto"
    )]
    Auto,
    #[enum_value(
        name = "As delivered: row 0 at the head end, column 0 at the left of a patient lying on their back",
        nick = "identity"
    )]
    Identity,
    #[enum_value(name = "Turn a quarter clockwise", nick = "90r")]
    Rotate90R,
    #[enum_value(name = "Turn half way round (a mat laid head to foot)", nick = "180")]
    Rotate180,
    #[enum_value(name = "Turn a quarter counter-clockwise", nick = "90l")]
    Rotate90L,
    #[enum_value(
        name = "Mirror left to right (a mat that numbers its columns the other way round)",
        nick = "horiz"
    )]
    FlipHorizontal,
    #[enum_value(name = "Mirror top to bottom", nick = "vert")]
    FlipVertical,
    #[enum_value(
        name = "Mirror across the upper-left/lower-right diagonal",
        nick = "ul-lr"
    )]
    UpperLeftLowerRight,
    #[enum_value(
        name = "Mirror across the upper-right/lower-left diagonal",
        nick = "ur-ll"
    )]
    UpperRightLowerLeft,
}

impl OrientationChoice {
    /// The orientation to lay frames with, for an encoder whose metadata says `model`.
    pub fn resolve(self, model: Orientation) -> Orientation {
        match self {
            OrientationChoice::Auto => model,
            OrientationChoice::Identity => Orientation::Identity,
            OrientationChoice::Rotate90R => Orientation::Rotate90R,
            OrientationChoice::Rotate180 => Orientation::Rotate180,
            OrientationChoice::Rotate90L => Orientation::Rotate90L,
            OrientationChoice::FlipHorizontal => Orientation::FlipHorizontal,
            OrientationChoice::FlipVertical => Orientation::FlipVertical,
            OrientationChoice::UpperLeftLowerRight => Orientation::UpperLeftLowerRight,
            OrientationChoice::UpperRightLowerLeft => Orientation::UpperRightLowerLeft,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glib::prelude::*;

    #[test]
    fn the_nicks_are_cores_names() {
        gst::init().unwrap();
        let class = glib::EnumClass::with_type(OrientationChoice::static_type()).unwrap();
        for o in Orientation::ALL {
            let value = class
                .value_by_nick(o.as_str())
                .unwrap_or_else(|| panic!("no nick {o}"));
            let choice: OrientationChoice = class
                .to_value(value.value())
                .and_then(|v| v.get().ok())
                .expect("a value of the enum");
            assert_eq!(choice.resolve(Orientation::Rotate90L), o);
        }
        let auto = class.value_by_nick("auto").unwrap();
        assert_eq!(auto.value(), OrientationChoice::Auto as i32);
        assert_eq!(class.values().len(), Orientation::ALL.len() + 1);
    }
}
