//! Opening a recording's container: a local file by its path, an S3 object through an
//! AVIO context over its [`crate::location::ReadSeek`] reader. [`Opened`] is the demuxer
//! and, for the latter, the I/O it reads through, freed after it.

use std::ffi::{CStr, CString, c_int, c_void};
use std::io::SeekFrom;
use std::ops::{Deref, DerefMut};
use std::ptr;

use ff::ffi;
use ffmpeg_next as ff;

use crate::location::{ReadSeek, Source};

/// Bytes libav asks the reader for at a time.
const IO_BUFFER: usize = 256 * 1024;

/// An open demuxer. Derefs to `ffmpeg-next`'s input context.
pub struct Opened {
    // Declared first: dropped (closed) before the I/O it reads through.
    input: ff::format::context::Input,
    _io: Option<CustomIo>,
}

impl Deref for Opened {
    type Target = ff::format::context::Input;

    fn deref(&self) -> &Self::Target {
        &self.input
    }
}

impl DerefMut for Opened {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.input
    }
}

/// An AVIO context over a reader; freed (buffer, context, reader) on drop.
struct CustomIo {
    context: *mut ffi::AVIOContext,
    reader: *mut Box<dyn ReadSeek>,
}

// SAFETY: the context and the reader are used by one thread at a time (the demuxer's
// owner), and the reader is `Send`.
unsafe impl Send for CustomIo {}

impl CustomIo {
    fn new(reader: Box<dyn ReadSeek>) -> Result<Self, ff::Error> {
        let reader = Box::into_raw(Box::new(reader));
        // SAFETY: the buffer is av_malloc'ed as avio_alloc_context requires; on failure it
        // and the reader are freed here; the callbacks get `reader` back as their opaque.
        unsafe {
            let buffer = ffi::av_malloc(IO_BUFFER) as *mut u8;
            let context = if buffer.is_null() {
                ptr::null_mut()
            } else {
                ffi::avio_alloc_context(
                    buffer,
                    IO_BUFFER as c_int,
                    0,
                    reader as *mut c_void,
                    Some(read_packet),
                    None,
                    Some(seek),
                )
            };
            if context.is_null() {
                ffi::av_free(buffer as *mut c_void);
                drop(Box::from_raw(reader));
                return Err(ff::Error::Other { errno: ff::util::error::ENOMEM });
            }
            Ok(Self { context, reader })
        }
    }
}

impl Drop for CustomIo {
    fn drop(&mut self) {
        // SAFETY: the demuxer that used the context is closed (`Opened` drops it first);
        // the buffer may have been replaced by libav, so it is freed through the context.
        unsafe {
            ffi::av_freep(ptr::addr_of_mut!((*self.context).buffer) as *mut c_void);
            ffi::avio_context_free(&mut self.context);
            drop(Box::from_raw(self.reader));
        }
    }
}

unsafe extern "C" fn read_packet(opaque: *mut c_void, buf: *mut u8, size: c_int) -> c_int {
    // SAFETY: `opaque` is the `CustomIo`'s reader, alive while its context is; libav hands a
    // buffer of `size` writable bytes.
    let (reader, buf) = unsafe {
        (&mut *(opaque as *mut Box<dyn ReadSeek>), std::slice::from_raw_parts_mut(buf, size.max(0) as usize))
    };
    match reader.read(buf) {
        Ok(0) => ffi::AVERROR_EOF,
        Ok(n) => n as c_int,
        Err(_) => ffi::AVERROR(ffi::EIO),
    }
}

unsafe extern "C" fn seek(opaque: *mut c_void, offset: i64, whence: c_int) -> i64 {
    // SAFETY: as in `read_packet`.
    let reader = unsafe { &mut *(opaque as *mut Box<dyn ReadSeek>) };
    let whence = whence & !(ffi::AVSEEK_FORCE as c_int);
    let to = match whence {
        w if w == ffi::AVSEEK_SIZE as c_int => {
            let size = (|| {
                let here = reader.stream_position()?;
                let end = reader.seek(SeekFrom::End(0))?;
                reader.seek(SeekFrom::Start(here))?;
                Ok::<u64, std::io::Error>(end)
            })();
            return size.map_or(i64::from(ffi::AVERROR(ffi::EIO)), |n| n as i64);
        }
        libc::SEEK_SET => SeekFrom::Start(offset.max(0) as u64),
        libc::SEEK_CUR => SeekFrom::Current(offset),
        libc::SEEK_END => SeekFrom::End(offset),
        _ => return i64::from(ffi::AVERROR(ffi::EINVAL)),
    };
    reader.seek(to).map_or(i64::from(ffi::AVERROR(ffi::EIO)), |n| n as i64)
}

/// Opens `source`'s container and reads its streams' information, as
/// `ffmpeg_next::format::input` does for a path.
pub fn open_with_info(source: &Source, protocols: &CStr) -> Result<Opened, ff::Error> {
    let mut input = open(source, protocols)?;
    // SAFETY: an open context; no per-stream options.
    let r = unsafe { ffi::avformat_find_stream_info(input.as_mut_ptr(), ptr::null_mut()) };
    if r < 0 {
        return Err(ff::Error::from(r));
    }
    Ok(input)
}

/// Opens `source`'s container: its header, no packet read yet. Local files through the
/// protocols `protocols` allows; S3 objects through their reader (no protocol at all).
pub fn open(source: &Source, protocols: &CStr) -> Result<Opened, ff::Error> {
    crate::media::init();
    let (url, io) = match source {
        Source::Local(path) => {
            let url = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| ff::Error::InvalidData)?;
            (url, None)
        }
        Source::Remote(_) => {
            let reader = source.reader().map_err(|_| ff::Error::InvalidData)?;
            // The name's extension only helps libav's format guess.
            let name = source.name().display().to_string();
            (CString::new(name).map_err(|_| ff::Error::InvalidData)?, Some(CustomIo::new(reader)?))
        }
    };
    // SAFETY: the standard open sequence; with custom I/O the context is allocated first
    // and given `pb` (libav neither closes nor frees it); on failure avformat_open_input
    // frees the context, and `io` is freed when dropped.
    unsafe {
        let mut ctx = ptr::null_mut::<ffi::AVFormatContext>();
        if let Some(io) = &io {
            ctx = ffi::avformat_alloc_context();
            if ctx.is_null() {
                return Err(ff::Error::Other { errno: ff::util::error::ENOMEM });
            }
            (*ctx).pb = io.context;
            (*ctx).flags |= ffi::AVFMT_FLAG_CUSTOM_IO as c_int;
        }
        let mut options: *mut ffi::AVDictionary = ptr::null_mut();
        ffi::av_dict_set(&mut options, c"protocol_whitelist".as_ptr(), protocols.as_ptr(), 0);
        let r = ffi::avformat_open_input(&mut ctx, url.as_ptr(), ptr::null(), &mut options);
        ffi::av_dict_free(&mut options);
        if r < 0 {
            return Err(ff::Error::from(r));
        }
        Ok(Opened { input: ff::format::context::Input::wrap(ctx), _io: io })
    }
}
