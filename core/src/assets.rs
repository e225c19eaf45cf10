//! Files from Debian packages that the project uses at run time (scripts/setup installs them).

/// The font labels are drawn with: training plots and `spmkdoverlay`'s posture label
/// (Debian's fonts-dejavu-core).
pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
