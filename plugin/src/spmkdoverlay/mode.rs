//! What the overlay paints: the pressure frame, or how long each cell has been under load.

use gst::glib;

/// The `mode` property.
#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSpmkdOverlayMode")]
pub enum Mode {
    #[default]
    #[enum_value(name = "Pressure: each frame's readings", nick = "pressure")]
    Pressure,
    #[enum_value(
        name = "Exposure: each cell's time under load (spmkdmonitor exposure-map=true upstream), 0 to exposure-max, with a legend",
        nick = "exposure"
    )]
    Exposure,
}

/// A duration for the legend: minutes below two hours, hours from there.
pub fn legend_text(ns: u64) -> String {
    let minutes = ns as f64 / 60e9;
    if minutes < 120.0 {
        format!("{} min", minutes.round() as u64)
    } else {
        let hours = minutes / 60.0;
        if (hours - hours.round()).abs() < 0.05 {
            format!("{} h", hours.round() as u64)
        } else {
            format!("{hours:.1} h")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legend_durations_read_as_a_nurse_would_say_them() {
        const MIN: u64 = 60_000_000_000;
        assert_eq!(legend_text(30 * MIN), "30 min");
        assert_eq!(legend_text(119 * MIN), "119 min");
        assert_eq!(legend_text(120 * MIN), "2 h");
        assert_eq!(legend_text(150 * MIN), "2.5 h");
    }
}
