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
//! (each with its own sequence number) since UDP may lose one. Flag bit 1 ([`FLAG_NEW_SIZE`])
//! announces a frame size other than the last: a sender sets it on the first few frames after
//! its size changed.
//!
//! A [`Receiver`] decides what each datagram is ([`Receiver::classify`]): it follows one
//! sender (SSRC), its sequence, its frame size; whatever else arrives is counted and dropped,
//! so no stray or forged datagram ends the stream, fakes a loss or changes the frame size.
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
/// Flag: this frame's size is new (the sender's mat changed size).
pub const FLAG_NEW_SIZE: u8 = 2;
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
        /// [`FLAG_NEW_SIZE`]: the sender says its size changed.
        new_size: bool,
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
            new_size: flags & FLAG_NEW_SIZE != 0,
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
    /// Jumps of the sequence number too large for loss: the sender restarted (or another
    /// sender took over after the first fell silent).
    pub restarts: u64,
    /// Packets of a sender other than the one followed: dropped.
    pub other_source: u64,
    /// Frames of a size other than the stream's, not announced: dropped.
    pub wrong_size: u64,
    /// End-of-stream marks out of the sequence (or before any frame): not taken.
    pub refused_ends: u64,
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

    /// What [`Sequence::order`] would say of `seq`, without taking it.
    pub fn peek(&self, seq: u16) -> Order {
        let Some(next) = self.next else {
            return Order::Next { lost: 0 };
        };
        let ahead = seq.wrapping_sub(next);
        if ahead < MAX_DROPOUT {
            Order::Next { lost: ahead }
        } else if next.wrapping_sub(seq) <= MAX_MISORDER {
            if self.missing.contains(&seq) {
                Order::Late
            } else {
                Order::Duplicate
            }
        } else {
            Order::Restart
        }
    }

    /// Whether `seq` is exactly the one expected next (a sequence under way).
    pub fn is_next(&self, seq: u16) -> bool {
        self.next == Some(seq)
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

/// How long the sender followed must have been silent before another is followed instead
/// (a sender restarted with a new SSRC), ns: two interleaved senders never take turns.
pub const SOURCE_SILENCE_NS: u64 = 2_000_000_000;
/// Frames of one new size in a row that make it the stream's without [`FLAG_NEW_SIZE`] (a
/// sender that does not announce): one odd frame never changes the size.
pub const SIZE_CONFIRM: u32 = 3;

/// A frame's size and depth: (width, height, bits per cell).
pub type FrameFormat = (u16, u16, u8);

/// What a datagram is, for the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A frame to pass on: `lost` frames were missing before it; `restart`: the sequence (or
    /// the sender) started again; `new_format`: its size or depth is not the last frame's.
    Frame {
        format: FrameFormat,
        cells: &'a [u8],
        lost: u16,
        restart: bool,
        new_format: bool,
    },
    /// The sender ended its stream.
    End,
    /// Dropped, counted in [`Counts`].
    Dropped(Dropped),
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dropped {
    /// Not a valid packet of this payload, and why.
    Malformed(String),
    Late,
    Duplicate,
    /// A sender other than the one followed.
    OtherSource(u32),
    /// A frame of a size other than the stream's, not announced.
    WrongSize(FrameFormat),
    /// An end-of-stream mark out of the sequence, or before any frame.
    RefusedEnd,
}

impl Dropped {
    /// Its name in an `spmkd-transport` message.
    pub fn event(&self) -> &'static str {
        match self {
            Dropped::Malformed(_) => "malformed",
            Dropped::Late => "late",
            Dropped::Duplicate => "duplicate",
            Dropped::OtherSource(_) => "other-source",
            Dropped::WrongSize(_) => "wrong-size",
            Dropped::RefusedEnd => "refused-end",
        }
    }
}

/// The receiving end of one stream: which sender it follows, where its sequence is, the
/// stream's frame size. GStreamer-free: `rtppmatdepay` parses the RTP header and acts on what
/// this says.
#[derive(Debug, Default)]
pub struct Receiver {
    pub sequence: Sequence,
    /// The SSRC followed, and when it was last heard of (ns, the caller's clock).
    source: Option<(u32, u64)>,
    format: Option<FrameFormat>,
    /// A new size seen without announcement, and how many frames in a row had it.
    candidate: Option<(FrameFormat, u32)>,
}

impl Receiver {
    pub fn counts(&self) -> Counts {
        self.sequence.counts
    }

    /// Forgets where the sequence was (a flush); the sender and the size stay.
    pub fn resync(&mut self) {
        self.sequence.resync();
    }

    /// What the datagram of sender `ssrc` with sequence number `seq` and `payload`, arrived
    /// at `now_ns`, is; counts it.
    pub fn classify<'a>(
        &mut self,
        ssrc: u32,
        seq: u16,
        payload: &'a [u8],
        now_ns: u64,
    ) -> Packet<'a> {
        let parsed = Payload::parse(payload);
        // Only a packet that is ours (our payload's version) is trusted with its SSRC and
        // sequence number: noise that happens to look like RTP must not fake a loss.
        if let Err(e @ (PayloadError::Short(_) | PayloadError::Version(_))) = &parsed {
            return self.malformed(e.to_string());
        }
        let mut restart = false;
        match self.source {
            Some((followed, _)) if followed == ssrc => {}
            Some((_, heard)) if now_ns.saturating_sub(heard) < SOURCE_SILENCE_NS => {
                self.sequence.counts.other_source += 1;
                return Packet::Dropped(Dropped::OtherSource(ssrc));
            }
            Some(_) => {
                // The followed sender fell silent: this one is the stream now, with its own
                // sequence and size.
                self.sequence.resync();
                self.sequence.counts.restarts += 1;
                self.format = None;
                self.candidate = None;
                restart = true;
            }
            // Only a whole frame makes a sender the one followed: a stray datagram first
            // must not lock the stream to its source.
            None if !matches!(parsed, Ok(Payload::Frame { .. })) => {}
            None => self.source = Some((ssrc, now_ns)),
        }
        if self.source.is_some() {
            self.source = Some((ssrc, now_ns));
        }
        let payload = match parsed {
            Ok(p) => p,
            Err(e) => {
                // A frame of a bad size takes its place in the sequence (it is not lost) only
                // where it is the one expected: one with any other number must not move it.
                if self.sequence.is_next(seq) {
                    self.sequence.order(seq);
                }
                return self.malformed(e.to_string());
            }
        };
        match payload {
            Payload::End => match self.sequence.peek(seq) {
                Order::Next { .. } if self.format.is_some() => {
                    self.sequence.order(seq);
                    Packet::End
                }
                Order::Late | Order::Duplicate => self.drop_by_order(seq),
                _ => {
                    self.sequence.counts.refused_ends += 1;
                    Packet::Dropped(Dropped::RefusedEnd)
                }
            },
            Payload::Frame {
                width,
                height,
                bits,
                cells,
                new_size,
            } => {
                let (lost, restarted) = match self.sequence.peek(seq) {
                    Order::Late | Order::Duplicate => return self.drop_by_order(seq),
                    _ => match self.sequence.order(seq) {
                        Order::Next { lost } => (lost, false),
                        _ => (0, true),
                    },
                };
                let format = (width, height, bits);
                let new_format = self.format != Some(format);
                if new_format && self.format.is_some() && !new_size {
                    let seen = match self.candidate {
                        Some((f, n)) if f == format => n + 1,
                        _ => 1,
                    };
                    if seen < SIZE_CONFIRM {
                        self.candidate = Some((format, seen));
                        self.sequence.counts.wrong_size += 1;
                        return Packet::Dropped(Dropped::WrongSize(format));
                    }
                }
                self.candidate = None;
                self.format = Some(format);
                self.sequence.counts.frames += 1;
                Packet::Frame {
                    format,
                    cells,
                    lost,
                    restart: restart || restarted,
                    new_format,
                }
            }
        }
    }

    fn malformed<'a>(&mut self, reason: String) -> Packet<'a> {
        self.sequence.counts.malformed += 1;
        Packet::Dropped(Dropped::Malformed(reason))
    }

    /// A late or duplicate packet: taken (and counted) by the sequence, dropped.
    fn drop_by_order<'a>(&mut self, seq: u16) -> Packet<'a> {
        match self.sequence.order(seq) {
            Order::Late => Packet::Dropped(Dropped::Late),
            _ => Packet::Dropped(Dropped::Duplicate),
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
                cells: &p[HEADER_BYTES..],
                new_size: false,
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

    const MS: u64 = 1_000_000;

    fn end() -> Vec<u8> {
        Payload::header(0, 0, 0, true).to_vec()
    }

    fn is_frame(p: &Packet<'_>) -> bool {
        matches!(p, Packet::Frame { .. })
    }

    #[test]
    fn the_end_is_taken_only_from_the_sender_followed_in_its_sequence() {
        let mut r = Receiver::default();
        let f = frame(4, 2, 16, 16);
        // Before any frame: no end (a forged first datagram would stop the receiver).
        assert_eq!(
            r.classify(7, 1, &end(), 0),
            Packet::Dropped(Dropped::RefusedEnd)
        );
        for seq in 10..60 {
            assert!(is_frame(&r.classify(7, seq, &f, u64::from(seq) * MS)));
        }
        // Another source, any seq: refused; ours far out of sequence: refused.
        assert_eq!(
            r.classify(8, 60, &end(), 60 * MS),
            Packet::Dropped(Dropped::OtherSource(8))
        );
        assert_eq!(
            r.classify(7, 9_000, &end(), 61 * MS),
            Packet::Dropped(Dropped::RefusedEnd)
        );
        assert_eq!(
            r.classify(7, 30, &end(), 61 * MS),
            Packet::Dropped(Dropped::Duplicate)
        );
        assert!(is_frame(&r.classify(7, 60, &f, 62 * MS)));
        // The sender's own, next in sequence: the end.
        assert_eq!(r.classify(7, 61, &end(), 63 * MS), Packet::End);
        let c = r.counts();
        assert_eq!(
            (c.refused_ends, c.other_source, c.restarts, c.lost),
            (2, 1, 0, 0)
        );
    }

    #[test]
    fn a_second_sender_is_counted_and_never_mixed_in_until_the_first_falls_silent() {
        let mut r = Receiver::default();
        let f = frame(4, 2, 16, 16);
        // Two senders interleaved, each with its own sequence.
        for i in 0..100u16 {
            let now = u64::from(i) * 100 * MS;
            assert!(is_frame(&r.classify(1, i, &f, now)), "{i}");
            assert!(!is_frame(&r.classify(2, 5_000 + i, &f, now + MS)));
        }
        let c = r.counts();
        assert_eq!(
            (c.frames, c.other_source, c.lost, c.restarts),
            (100, 100, 0, 0)
        );
        // Sender 1 stops; 2 s later sender 2 is the stream (a restart, not a loss).
        let later = 100 * 100 * MS + SOURCE_SILENCE_NS;
        assert!(matches!(
            r.classify(2, 6_000, &f, later),
            Packet::Frame {
                restart: true,
                lost: 0,
                ..
            }
        ));
        assert!(is_frame(&r.classify(2, 6_001, &f, later + MS)));
        assert_eq!(r.counts().restarts, 1);
    }

    #[test]
    fn a_bad_datagram_never_moves_the_sequence() {
        let mut r = Receiver::default();
        let f = frame(4, 2, 16, 16);
        assert!(is_frame(&r.classify(1, 100, &f, 0)));
        // A short frame with a wild sequence number: malformed, and nothing else.
        let short = frame(4, 2, 16, 15);
        assert!(matches!(
            r.classify(1, 40_000, &short, MS),
            Packet::Dropped(Dropped::Malformed(_))
        ));
        assert!(matches!(
            r.classify(1, 101, &f, 2 * MS),
            Packet::Frame { lost: 0, .. }
        ));
        // A short one where the next is expected takes its place: the one after is not lost.
        r.classify(1, 102, &short, 3 * MS);
        assert!(matches!(
            r.classify(1, 103, &f, 4 * MS),
            Packet::Frame { lost: 0, .. }
        ));
        let c = r.counts();
        assert_eq!(
            (c.frames, c.malformed, c.lost, c.late, c.restarts),
            (3, 2, 0, 0, 0)
        );
    }

    #[test]
    fn a_new_size_is_taken_when_announced_or_when_it_lasts() {
        let mut r = Receiver::default();
        let a = frame(32, 64, 16, 32 * 64 * 2);
        let odd = frame(1, 1, 16, 2);
        assert!(matches!(
            r.classify(1, 1, &a, 0),
            Packet::Frame {
                new_format: true,
                ..
            }
        ));
        // One odd frame: dropped, the stream keeps its size.
        assert_eq!(
            r.classify(1, 2, &odd, MS),
            Packet::Dropped(Dropped::WrongSize((1, 1, 16)))
        );
        assert!(matches!(
            r.classify(1, 3, &a, 2 * MS),
            Packet::Frame {
                new_format: false,
                lost: 0,
                ..
            }
        ));
        // Announced: at once.
        let mut b = frame(27, 64, 16, 27 * 64 * 2);
        b[1] |= FLAG_NEW_SIZE;
        assert!(matches!(
            r.classify(1, 4, &b, 3 * MS),
            Packet::Frame {
                new_format: true,
                ..
            }
        ));
        // Not announced, but lasting: from its SIZE_CONFIRM-th frame.
        let got: Vec<bool> = (5..5 + SIZE_CONFIRM as u16)
            .map(|seq| is_frame(&r.classify(1, seq, &a, u64::from(seq) * MS)))
            .collect();
        assert_eq!(got, [false, false, true]);
        assert_eq!(r.counts().wrong_size, 3);
    }
}
