//! Colormaps of the overlay as 256-entry lookup tables (a frame is coloured by table lookup).

use plotters::style::colors::colormaps::ViridisRGB;

use gst::glib;

/// The `colormap` property.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSpmkdColormap")]
pub enum Colormap {
    #[default]
    #[enum_value(
        name = "Viridis: perceptually uniform, readable in grey and by colour-blind viewers",
        nick = "viridis"
    )]
    Viridis,
    #[enum_value(
        name = "Turbo: rainbow-like with smooth lightness (Google, 2019)",
        nick = "turbo"
    )]
    Turbo,
    #[enum_value(
        name = "Jet: the classic rainbow (not perceptually uniform)",
        nick = "jet"
    )]
    Jet,
    #[enum_value(name = "Gray: black (no pressure) to white", nick = "gray")]
    Gray,
}

/// Turbo by its published polynomial approximation (A. Mikhailov's colormap, fit by R. Du,
/// "Turbo colormap polynomial approximation", 2019). It keeps turbo's hue order and smooth
/// lightness but is not the table: up to 0.13 off it at the dark ends (the test checks 0, 0.5
/// and 1 against the table's values).
fn turbo(x: f32) -> [f32; 3] {
    const R4: [f32; 4] = [0.135_721_38, 4.615_392_6, -42.660_323, 132.131_08];
    const G4: [f32; 4] = [0.091_402_61, 2.194_188_4, 4.842_966_6, -14.185_033];
    const B4: [f32; 4] = [0.106_673_3, 12.641_946, -60.582_047, 110.362_77];
    const R2: [f32; 2] = [-152.942_4, 59.286_38];
    const G2: [f32; 2] = [4.277_298_6, 2.829_566];
    const B2: [f32; 2] = [-89.903_11, 27.348_25];
    let v4 = [1.0, x, x * x, x * x * x];
    let v2 = [v4[2] * v4[2], v4[3] * v4[2]];
    let dot = |a: [f32; 4], b: [f32; 2]| {
        a.iter().zip(v4).map(|(c, v)| c * v).sum::<f32>() + b[0] * v2[0] + b[1] * v2[1]
    };
    [dot(R4, R2), dot(G4, G2), dot(B4, B2)]
}

/// Jet as MATLAB defines it: piecewise linear ramps of red, green and blue.
fn jet(x: f32) -> [f32; 3] {
    let ramp = |c: f32| (1.5 - (4.0 * x - c).abs()).clamp(0.0, 1.0);
    [ramp(3.0), ramp(2.0), ramp(1.0)]
}

impl Colormap {
    /// The colour of `x` in `[0, 1]`, as RGB bytes.
    pub fn rgb(self, x: f32) -> [u8; 3] {
        let x = x.clamp(0.0, 1.0);
        let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        match self {
            Colormap::Viridis => {
                let c = ViridisRGB::get_color(x);
                [c.0, c.1, c.2]
            }
            Colormap::Turbo => turbo(x).map(byte),
            Colormap::Jet => jet(x).map(byte),
            Colormap::Gray => [byte(x); 3],
        }
    }

    /// 256 RGBA entries, index = pressure scaled to 0..=255.
    pub fn table(self) -> [[u8; 4]; 256] {
        std::array::from_fn(|i| {
            let [r, g, b] = self.rgb(i as f32 / 255.0);
            [r, g, b, 255]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_middles_are_the_documented_colours() {
        // Viridis: dark purple to yellow.
        assert_eq!(Colormap::Viridis.rgb(0.0), [68, 1, 84]);
        assert_eq!(Colormap::Viridis.rgb(1.0), [254, 232, 37]);
        // Jet: dark blue, green, dark red.
        assert_eq!(Colormap::Jet.rgb(0.0), [0, 0, 128]);
        assert_eq!(Colormap::Jet.rgb(0.5), [128, 255, 128]);
        assert_eq!(Colormap::Jet.rgb(1.0), [128, 0, 0]);
        // Turbo, against the reference table (0.18995, 0.07176, 0.23217), (0.64362, 0.98999,
        // 0.23356), (0.4796, 0.01583, 0.01055): the approximation is within 0.13.
        for (x, want) in [
            (0.0, [0.18995, 0.07176, 0.23217]),
            (0.5, [0.64362, 0.98999, 0.23356]),
            (1.0, [0.4796, 0.01583, 0.01055]),
        ] {
            let got = Colormap::Turbo.rgb(x);
            for (g, w) in got.iter().zip(want) {
                assert!((*g as f32 / 255.0 - w).abs() < 0.13, "turbo({x}) = {got:?}");
            }
        }
        assert_eq!(Colormap::Gray.table()[255], [255, 255, 255, 255]);
    }
}
