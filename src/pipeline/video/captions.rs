//! Closed captions carried in the video (CEA-608 and CEA-708 in A/53 `cc_data`, the SEI a
//! broadcast or an OBS/vMix captioner puts in H.264): libav's decoder attaches them to each
//! picture as side data; [`SlotCaptions`] gives each output slot the captions of the source
//! pictures it stands for, and the rung threads attach them to their pictures so that
//! libx264 writes them into the rung as SEI again (its `a53cc`, on by default).

use std::collections::BTreeSet;
use std::sync::Arc;

use ffmpeg_next::{self as ff, frame::side_data::Type as SideData};

/// A picture's `cc_data`: 3-byte constructs (`cc_valid`/`cc_type`, two data bytes).
pub(crate) type CcData = Arc<[u8]>;

/// Constructs an A/53 SEI holds (`cc_count` is 5 bits).
const MAX_CONSTRUCTS: usize = 31;

/// The `cc_data` a decoded picture carries.
pub(super) fn of_frame(frame: &ff::frame::Video) -> Option<&[u8]> {
    // SAFETY: the side data belongs to `frame` and lives as long as the borrow of it.
    let data = unsafe {
        let side = ff::ffi::av_frame_get_side_data(frame.as_ptr(), SideData::A53CC.into());
        if side.is_null() || (*side).data.is_null() {
            return None;
        }
        std::slice::from_raw_parts((*side).data, (*side).size)
    };
    Some(data).filter(|d| d.len() >= 3)
}

/// Attaches `cc` to `picture` for the encoder.
pub(super) fn attach(picture: &mut ff::frame::Video, cc: &[u8]) -> Result<(), ff::Error> {
    // SAFETY: `picture` is a valid frame; the side data returned has `cc.len()` bytes.
    unsafe {
        let side = ff::ffi::av_frame_new_side_data(
            picture.as_mut_ptr(),
            ff::ffi::AVFrameSideDataType::AV_FRAME_DATA_A53_CC,
            cc.len(),
        );
        if side.is_null() {
            return Err(ff::Error::Other { errno: ff::util::error::ENOMEM });
        }
        std::ptr::copy_nonoverlapping(cc.as_ptr(), (*side).data, cc.len());
    }
    Ok(())
}

/// Which output slot each source picture's captions go to: the slot whose interval holds
/// the picture's time (`[n - ½, n + ½)` frames). That slot shows the picture, or, when the
/// picture is dropped (the source runs faster than the output), a later one of the same
/// interval, which then carries both pictures' captions; a picture shown again over a gap
/// gives its captions only once. A picture before or after the pass's slots belongs to a
/// neighbouring chunk, which gives its captions.
#[derive(Default)]
pub(super) struct SlotCaptions {
    /// Captions waiting for their slot, by slot.
    waiting: std::collections::BTreeMap<u64, Vec<u8>>,
}

impl SlotCaptions {
    /// A source picture of slot `slot` (within `slots`) with `cc`.
    pub(super) fn add(&mut self, slot: u64, slots: &std::ops::Range<u64>, cc: &[u8]) {
        if slots.contains(&slot) {
            self.waiting.entry(slot).or_default().extend_from_slice(cc);
        }
    }

    /// The captions of output slot `slot`, once.
    pub(super) fn take(&mut self, slot: u64) -> Option<CcData> {
        let cc = self.waiting.remove(&slot)?;
        Some(fit(cc).into())
    }
}

/// `cc` within one SEI: when two pictures' captions meet in one slot, the padding goes
/// first (constructs marked invalid, and 608 null pairs), then what still does not fit.
fn fit(cc: Vec<u8>) -> Vec<u8> {
    if cc.len() / 3 <= MAX_CONSTRUCTS {
        return cc;
    }
    let padding = |c: &[u8]| c[0] & 0x04 == 0 || (c[0] & 0x03 < 2 && c[1] & 0x7f == 0 && c[2] & 0x7f == 0);
    let kept: Vec<u8> = cc.chunks_exact(3).filter(|c| !padding(c)).flatten().copied().collect();
    if kept.len() / 3 > MAX_CONSTRUCTS {
        tracing::warn!(
            constructs = kept.len() / 3,
            "more caption data meets in one output frame than an SEI holds: the excess is dropped"
        );
    }
    kept.into_iter().take(MAX_CONSTRUCTS * 3).collect()
}

/// The caption channels a stream carries, named as HLS's `INSTREAM-ID` names them: `CC1`
/// to `CC4` (CEA-608: field 1 or 2, data channel 1 or 2, told by the control codes) and
/// `SERVICE1` to `SERVICE63` (CEA-708 service blocks).
#[derive(Debug, Default)]
pub(crate) struct Channels {
    found: BTreeSet<Channel>,
    /// The CEA-708 packet being gathered (DTVCC packets span several pictures).
    packet: Vec<u8>,
}

/// One caption channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Channel {
    Cea608(u8),
    Cea708(u8),
}

impl Channel {
    /// HLS's `INSTREAM-ID`.
    pub(crate) fn instream_id(self) -> String {
        match self {
            Channel::Cea608(n) => format!("CC{n}"),
            Channel::Cea708(n) => format!("SERVICE{n}"),
        }
    }
}

impl Channels {
    /// Reads one picture's `cc_data`.
    pub(crate) fn read(&mut self, cc: &[u8]) {
        for c in cc.chunks_exact(3) {
            let (valid, kind) = (c[0] & 0x04 != 0, c[0] & 0x03);
            match (valid, kind) {
                (true, 0 | 1) => self.cea608(kind, c[1] & 0x7f),
                (_, 3) => self.dtvcc_start(valid, &c[1..]),
                (true, 2) if !self.packet.is_empty() => self.dtvcc_data(&c[1..]),
                _ => {}
            }
        }
    }

    /// A 608 control code names its data channel (bit 3 of its first byte); the field is
    /// the construct's.
    fn cea608(&mut self, field: u8, first: u8) {
        if (0x10..=0x1f).contains(&first) {
            self.found.insert(Channel::Cea608(1 + 2 * field + ((first >> 3) & 1)));
        }
    }

    fn dtvcc_start(&mut self, valid: bool, bytes: &[u8]) {
        self.packet.clear();
        if valid {
            self.dtvcc_data(bytes);
        }
    }

    fn dtvcc_data(&mut self, bytes: &[u8]) {
        self.packet.extend_from_slice(bytes);
        let size = match self.packet[0] & 0x3f {
            0 => 128,
            n => usize::from(n) * 2,
        };
        if self.packet.len() >= size {
            let packet = std::mem::take(&mut self.packet);
            self.service_blocks(&packet[1..size]);
        }
    }

    /// The services a DTVCC packet's blocks are for.
    fn service_blocks(&mut self, mut blocks: &[u8]) {
        while let Some(&header) = blocks.first() {
            let (mut service, size, mut skip) = (header >> 5, usize::from(header & 0x1f), 1);
            if service == 7 {
                let Some(&extended) = blocks.get(1) else { return };
                service = extended & 0x3f;
                skip = 2;
            }
            if service == 0 || size == 0 {
                return;
            }
            self.found.insert(Channel::Cea708(service));
            blocks = blocks.get(skip + size..).unwrap_or_default();
        }
    }

    /// The `INSTREAM-ID`s found, in order (608 first).
    pub(crate) fn instream_ids(&self) -> Vec<String> {
        self.found.iter().copied().map(Channel::instream_id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_codes_name_the_608_channel_and_service_blocks_the_708_service() {
        let mut channels = Channels::default();
        // RCL on CC1 (0x14 0x20, odd parity), then text on CC1; field 2 EDM on CC3 (0x15 0x2c).
        channels.read(&[0xfc, 0x94, 0x20, 0xfc, 0xc1, 0xc2, 0xfd, 0x15, 0x2c]);
        // A DTVCC packet (size code 2: 4 bytes) with one block of service 1, 2 bytes.
        channels.read(&[0xff, 0x02, 0x22, 0xfe, 0x41, 0x42, 0xfa, 0x00, 0x00]);
        assert_eq!(channels.instream_ids(), ["CC1", "CC3", "SERVICE1"]);
        // CC2's control codes (0x1c) and padding (invalid, null pairs) only.
        let mut other = Channels::default();
        other.read(&[0xf8, 0x80, 0x80, 0xfc, 0x80, 0x80, 0xfc, 0x1c, 0x20]);
        assert_eq!(other.instream_ids(), ["CC2"]);
    }

    #[test]
    fn captions_go_to_the_slot_of_their_picture_once_and_merge_when_pictures_are_dropped() {
        let mut slots = SlotCaptions::default();
        let range = 10..20;
        slots.add(9, &range, &[0xfc, 1, 1]);
        slots.add(10, &range, &[0xfc, 2, 2]);
        slots.add(10, &range, &[0xfc, 3, 3]);
        slots.add(20, &range, &[0xfc, 4, 4]);
        assert_eq!(slots.take(10).as_deref(), Some(&[0xfc, 2, 2, 0xfc, 3, 3][..]));
        assert_eq!(slots.take(10), None, "given once");
        assert_eq!(slots.take(9), None, "the chunk before gives it");
        assert_eq!(slots.take(20), None, "the chunk after gives it");
    }

    #[test]
    fn merged_captions_drop_padding_to_fit_one_sei() {
        let mut cc = Vec::new();
        for n in 0..40u8 {
            // Every other construct is padding.
            cc.extend_from_slice(if n % 2 == 0 { &[0xfc, 0xc1, 0xc2] } else { &[0xfa, 0, 0] });
        }
        let fitted = fit(cc);
        assert_eq!(fitted.len(), 20 * 3);
        assert!(fitted.chunks_exact(3).all(|c| c == [0xfc, 0xc1, 0xc2]));
    }
}
