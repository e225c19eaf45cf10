//! The live transport of pressure frames: one frame per RTP packet (RFC 3550), so a lost,
//! short, long, late or duplicated datagram costs at most its own frame and is counted.
//!
//! RTP carries what a datagram stream lacks: a sequence number (loss and order), a timestamp
//! (90 kHz) and a marker. The payload (encoding name [`ENCODING_NAME`]) is self-describing, so
//! a receiver needs no frame size configured and a mat can change size mid-stream:
//!
//! ```text
//!  0               1               2               3
//! +---------------+---------------+---------------+---------------+
//! | version (1)   | flags         | bits per cell | reserved (0)  |
//! +---------------+---------------+---------------+---------------+
//! | width (cells, big endian)     | height (cells, big endian)    |
//! +-------------------------------+-------------------------------+
//! | width x height cells, row 0 (head end) first, no row padding: |
//! | 8 bits: one byte per cell; 16 bits: little endian (GRAY16_LE) |
//! +---------------------------------------------------------------+
//! ```
//!
//! Flag bit 0 ([`FLAG_END`]) marks the end of the stream: no cells follow, and the receiver
//! ends its stream (EOS) instead of waiting for the next frame. A sender sends it a few times
//! (each with its own sequence number) since UDP may lose one.
//!
//! This module is free of GStreamer so a mat's firmware or another receiver can follow it;
//! `rtppmatpay` and `rtppmatdepay` are its GStreamer ends.

/// RTP encoding name of the payload (`a=rtpmap:96 X-PMAT/90000` in SDP).
pub const ENCODING_NAME: &str = "X-PMAT";
/// RTP clock rate of the payload, as for video.
pub const CLOCK_RATE: u32 = 90_000;
/// Version of the payload header this code writes and reads.
pub const VERSION: u8 = 1;
/// Bytes of the payload header before the cells.
pub const HEADER_BYTES: usize = 8;
/// Flag: end of stream, no cells follow.
pub const FLAG_END: u8 = 1;
/// The largest payload one UDP datagram carries over IPv4 with a 12-byte RTP header.
pub const MAX_PAYLOAD_BYTES: usize = 65_507 - 12;

/// What one payload holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// A frame: its size, cell depth and cells as they travel (see the module docs).
    Frame {
        width: u16,
        height: u16,
        bits: u8,
        cells: &'a [u8],
    },
    /// The sender ended its stream.
    End,
}

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("{0} bytes: shorter than the {HEADER_BYTES}-byte payload header")]
    Short(usize),
    #[error("payload version {0}, this receiver reads version {VERSION}")]
    Version(u8),
    #[error("{0} bits per cell: 8 or 16 expected")]
    Bits(u8),
    #[error(
        "a {width}x{height} frame of {bits}-bit cells needs {expected} bytes of cells, the payload has {got}"
    )]
    Size {
        width: u16,
        height: u16,
        bits: u8,
        expected: usize,
        got: usize,
    },
}

impl Payload<'_> {
    /// Reads a payload; a frame's cells must be exactly `width x height` cells long, so a
    /// truncated or padded datagram is refused, never read as another frame's start.
    pub fn parse(payload: &[u8]) -> Result<Payload<'_>, PayloadError> {
        let [version, flags, bits, _, w0, w1, h0, h1, ..] = *payload else {
            return Err(PayloadError::Short(payload.len()));
        };
        if version != VERSION {
            return Err(PayloadError::Version(version));
        }
        if flags & FLAG_END != 0 {
            return Ok(Payload::End);
        }
        if bits != 8 && bits != 16 {
            return Err(PayloadError::Bits(bits));
        }
        let (width, height) = (u16::from_be_bytes([w0, w1]), u16::from_be_bytes([h0, h1]));
        let cells = &payload[HEADER_BYTES..];
        let expected = usize::from(width) * usize::from(height) * usize::from(bits / 8);
        if cells.len() != expected || expected == 0 {
            return Err(PayloadError::Size {
                width,
                height,
                bits,
                expected,
                got: cells.len(),
            });
        }
        Ok(Payload::Frame {
            width,
            height,
            bits,
            cells,
        })
    }

    /// The payload header of a frame (`end`: of the end-of-stream mark, with no cells).
    pub fn header(width: u16, height: u16, bits: u8, end: bool) -> [u8; HEADER_BYTES] {
        let [w0, w1] = width.to_be_bytes();
        let [h0, h1] = height.to_be_bytes();
        let flags = if end { FLAG_END } else { 0 };
        [VERSION, flags, bits, 0, w0, w1, h0, h1]
    }
}

/// Packets the receiver has seen, by what became of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Frames passed on.
    pub frames: u64,
    /// Sequence numbers never received (so far): frames lost on the way.
    pub lost: u64,
    /// Packets that came after a later one had been passed on: dropped, their frame is late.
    pub late: u64,
    /// Packets received twice: the copy is dropped.
    pub duplicates: u64,
    /// Datagrams that are not a valid packet of this payload: dropped.
    pub malformed: u64,
    /// Jumps of the sequence number too large for loss: the sender restarted.
    pub restarts: u64,
}

/// What to do with a packet, by its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Next in order after `lost` missing ones: pass it on.
    Next { lost: u16 },
    /// A missing packet arriving after later ones: drop it.
    Late,
    /// Seen before: drop it.
    Duplicate,
    /// The sequence starts again (a new sender, or one restarted): pass it on.
    Restart,
}

/// Jumps ahead beyond this are a restart, not loss (RFC 3550 A.1, `MAX_DROPOUT`).
const MAX_DROPOUT: u16 = 3000;
/// Packets this far behind are late or duplicates; further behind, a restart (`MAX_MISORDER`).
const MAX_MISORDER: u16 = 100;
/// Missing sequence numbers remembered, to tell a late packet from a duplicate.
const REMEMBERED_MISSING: usize = 512;

/// Follows the sequence numbers of one sender.
#[derive(Debug, Default)]
pub struct Sequence {
    next: Option<u16>,
    /// Sequence numbers skipped and not seen since (the most recent ones).
    missing: std::collections::VecDeque<u16>,
    pub counts: Counts,
}

impl Sequence {
    /// Forgets where the sequence was (after a flush), keeping the counts: the next packet is
    /// taken as the first.
    pub fn resync(&mut self) {
        self.next = None;
        self.missing.clear();
    }

    /// Takes the sequence number of a valid packet; says what to do with it and counts it.
    pub fn order(&mut self, seq: u16) -> Order {
        let Some(next) = self.next else {
            self.next = Some(seq.wrapping_add(1));
            return Order::Next { lost: 0 };
        };
        let ahead = seq.wrapping_sub(next);
        let behind = next.wrapping_sub(seq);
        if ahead == 0 {
            self.next = Some(seq.wrapping_add(1));
            Order::Next { lost: 0 }
        } else if ahead < MAX_DROPOUT {
            for skipped in 0..ahead {
                if self.missing.len() == REMEMBERED_MISSING {
                    self.missing.pop_front();
                }
                self.missing.push_back(next.wrapping_add(skipped));
            }
            self.counts.lost += u64::from(ahead);
            self.next = Some(seq.wrapping_add(1));
            Order::Next { lost: ahead }
        } else if behind <= MAX_MISORDER {
            if let Some(i) = self.missing.iter().position(|&m| m == seq) {
                self.missing.remove(i);
                self.counts.lost -= 1;
                self.counts.late += 1;
                Order::Late
            } else {
                self.counts.duplicates += 1;
                Order::Duplicate
            }
        } else {
            self.missing.clear();
            self.counts.restarts += 1;
            self.next = Some(seq.wrapping_add(1));
            Order::Restart
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(width: u16, height: u16, bits: u8, cells: usize) -> Vec<u8> {
        let mut p = Payload::header(width, height, bits, false).to_vec();
        p.extend(std::iter::repeat_n(7u8, cells));
        p
    }

    #[test]
    fn frames_parse_only_at_their_exact_size() {
        let p = frame(32, 64, 16, 32 * 64 * 2);
        assert_eq!(
            Payload::parse(&p),
            Ok(Payload::Frame {
                width: 32,
                height: 64,
                bits: 16,
                cells: &p[HEADER_BYTES..]
            })
        );
        // Short, long, empty frames, bad header fields: each refused with the reason.
        assert!(matches!(
            Payload::parse(&p[..p.len() - 1]),
            Err(PayloadError::Size { got: 4095, .. })
        ));
        let mut long = p.clone();
        long.push(0);
        assert!(matches!(
            Payload::parse(&long),
            Err(PayloadError::Size {
                expected: 4096,
                got: 4097,
                ..
            })
        ));
        assert_eq!(Payload::parse(&p[..3]), Err(PayloadError::Short(3)));
        assert!(matches!(
            Payload::parse(&frame(0, 64, 16, 0)),
            Err(PayloadError::Size { .. })
        ));
        assert_eq!(
            Payload::parse(&frame(2, 2, 12, 8)),
            Err(PayloadError::Bits(12))
        );
        let mut v2 = p.clone();
        v2[0] = 2;
        assert_eq!(Payload::parse(&v2), Err(PayloadError::Version(2)));
        assert_eq!(
            Payload::parse(&Payload::header(0, 0, 0, true)),
            Ok(Payload::End)
        );
        let gray8 = frame(27, 64, 8, 27 * 64);
        assert!(matches!(
            Payload::parse(&gray8),
            Ok(Payload::Frame { bits: 8, .. })
        ));
    }

    #[test]
    fn loss_lateness_duplicates_and_restarts_are_told_apart() {
        let mut s = Sequence::default();
        assert_eq!(s.order(65_534), Order::Next { lost: 0 });
        assert_eq!(s.order(65_535), Order::Next { lost: 0 });
        // Wrapping is in order.
        assert_eq!(s.order(0), Order::Next { lost: 0 });
        // 1 and 2 missing...
        assert_eq!(s.order(3), Order::Next { lost: 2 });
        assert_eq!(s.counts.lost, 2);
        // ...then 2 arrives late: no longer lost, but late.
        assert_eq!(s.order(2), Order::Late);
        assert_eq!((s.counts.lost, s.counts.late), (1, 1));
        // 2 again, and 3 again, are duplicates.
        assert_eq!(s.order(2), Order::Duplicate);
        assert_eq!(s.order(3), Order::Duplicate);
        assert_eq!(s.counts.duplicates, 2);
        // A swap: 5 before 4.
        assert_eq!(s.order(5), Order::Next { lost: 1 });
        assert_eq!(s.order(4), Order::Late);
        assert_eq!((s.counts.lost, s.counts.late), (1, 2));
        // A sender restarting far away in the sequence is not thousands of losses.
        assert_eq!(s.order(40_000), Order::Restart);
        assert_eq!(s.order(40_001), Order::Next { lost: 0 });
        assert_eq!((s.counts.lost, s.counts.restarts), (1, 1));
    }
}
