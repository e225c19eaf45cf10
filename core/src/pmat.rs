//! Facts about the PmatData mats (PhysioNet "pmd" 1.0.0, ODC-By 1.0).

/// Experiment-i: Vista Medical FSA SoftFlex 2048, one frame per line.
pub const EXP_I_WIDTH: usize = 32;
pub const EXP_I_HEIGHT: usize = 64;
/// Experiment-ii: Vista Medical BodiTrak BT3510, one frame per file.
pub const EXP_II_WIDTH: usize = 27;
pub const EXP_II_HEIGHT: usize = 64;
/// Experiment-i was recorded at 1 frame per second.
pub const FRAME_RATE: (i32, i32) = (1, 1);
/// Both mats report 12-bit readings.
pub const MAX_READING: u16 = 4095;

/// The attribution the dataset's licence asks for, to be kept wherever its data or a model
/// trained on it goes.
pub const ATTRIBUTION: &str = "PmatData: M. Baran Pouyan, J. Birjandtalab, M. Heydarzadeh, \
M. Nourani, S. Ostadabbas, \"A Pressure Map Dataset for In-bed Posture Classification\", \
IEEE BHI 2017, doi:10.1109/BHI.2017.7897206; PhysioNet \"pmd\" 1.0.0, ODC-By 1.0";
