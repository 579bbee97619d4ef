//! Progress of a run: `indicatif` bars on a terminal (overall and per rung: frames, fps,
//! speed × realtime, ETA), periodic `progress` events in the log otherwise (a pod's log:
//! JSON objects with typed fields, or text lines, whatever the log's format is), or nothing.
//! Workers only bump atomic counters; a display thread reads them.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::plan::Plan;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Bars,
    /// A `progress` event (info, target `ladder::progress`) in the log every
    /// `LINE_INTERVAL`, and one when the run stops.
    Lines,
    Off,
}

impl ProgressMode {
    /// Bars when stderr is a terminal that gets text logs; otherwise events in the log, so
    /// that a stream carries one format (a JSON log never gets bars or plain lines).
    pub fn auto() -> Self {
        let json_log = crate::logging::format() == Some(crate::logging::LogFormat::Json);
        if std::io::stderr().is_terminal() && !json_log { Self::Bars } else { Self::Lines }
    }
}

/// The bars being drawn, so that a log line can be written without tearing them.
static BARS: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// Runs `write` (which writes to stderr) with the progress bars cleared from the terminal,
/// and draws them again afterwards; just runs it when no bars are drawn.
pub fn clear_bars_while<R>(write: impl FnOnce() -> R) -> R {
    let bars = BARS.lock().unwrap_or_else(PoisonError::into_inner);
    match bars.as_ref() {
        Some(multi) => multi.suspend(write),
        None => write(),
    }
}

const LINE_INTERVAL: Duration = Duration::from_secs(5);

/// What workers report.
#[derive(Debug)]
pub struct Counters {
    /// Frames encoded per rung, in plan order (frames of reused chunks included).
    pub frames: Vec<AtomicU64>,
    pub total_frames: u64,
    /// Output frames per second of the plan, and its duration in seconds.
    pub fps: f64,
    pub duration_seconds: f64,
    /// Frames of the chunks earlier runs finished (counted in `frames` from the start).
    pub reused_frames: u64,
    /// Chunks this process encoded and stored so far, and their frames.
    pub chunks_stored: AtomicU64,
    pub frames_stored: AtomicU64,
}

impl Counters {
    /// Counts a chunk of `frames` frames as encoded and durably stored.
    pub fn chunk_stored(&self, frames: u64) {
        self.chunks_stored.fetch_add(1, Ordering::Relaxed);
        self.frames_stored.fetch_add(frames, Ordering::Relaxed);
    }

    /// Frames of the slowest rung: how far the run as a whole is.
    pub fn slowest_rung_frames(&self) -> u64 {
        self.frames.iter().map(|f| f.load(Ordering::Relaxed)).min().unwrap_or(0)
    }
}

/// A handle to a run's counters for readers outside the run (the metrics pusher): empty
/// until the run has planned, then the counters [`Progress::start`] made.
#[derive(Debug, Clone, Default)]
pub struct Watch(Arc<OnceLock<Arc<Counters>>>);

impl Watch {
    /// The run's counters, once it has planned.
    pub fn counters(&self) -> Option<&Counters> {
        self.0.get().map(Arc::as_ref)
    }
}

/// A running display; [`Progress::finish`] stops it.
pub struct Progress {
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    display: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts showing progress of `plan`; `done_frames` were done by earlier runs. The
    /// counters are also handed to `watch` (the first run started with it keeps them).
    pub fn start(mode: ProgressMode, plan: &Plan, done_frames: u64, watch: &Watch) -> Self {
        let counters = Arc::new(Counters {
            frames: plan.rungs.iter().map(|_| AtomicU64::new(done_frames)).collect(),
            total_frames: plan.total_frames,
            fps: plan.fps.as_f64(),
            duration_seconds: plan.duration_seconds,
            reused_frames: done_frames,
            chunks_stored: AtomicU64::new(0),
            frames_stored: AtomicU64::new(0),
        });
        let _ = watch.0.set(counters.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let labels: Vec<String> = plan.rungs.iter().map(|r| format!("v{} {}x{}", r.index, r.width, r.height)).collect();
        let fps = plan.fps.as_f64();
        let display = match mode {
            ProgressMode::Off => None,
            ProgressMode::Bars => {
                let (c, s) = (counters.clone(), stop.clone());
                Some(std::thread::spawn(move || show_bars(&c, &s, &labels, fps, done_frames)))
            }
            ProgressMode::Lines => {
                let (c, s) = (counters.clone(), stop.clone());
                Some(std::thread::spawn(move || show_lines(&c, &s, fps, done_frames)))
            }
        };
        Self { counters, stop, display }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Stops the display (after drawing the last state).
    pub fn finish(mut self) {
        self.stop_display();
    }

    fn stop_display(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.display.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop_display();
    }
}

/// Frames per second and speed (× realtime) since the display started.
fn rates(frames: u64, since: Instant, fps: f64) -> (f64, f64) {
    let seconds = since.elapsed().as_secs_f64().max(1e-3);
    let per_second = frames as f64 / seconds;
    (per_second, per_second / fps)
}

fn show_bars(counters: &Counters, stop: &AtomicBool, labels: &[String], fps: f64, done_frames: u64) {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    *BARS.lock().unwrap_or_else(PoisonError::into_inner) = Some(multi.clone());
    let rungs = counters.frames.len() as u64;
    let overall_style = ProgressStyle::with_template(
        "{prefix:>16} [{elapsed_precise}] {wide_bar:.cyan/blue} {percent:>3}% {msg} ETA {eta}",
    )
    .expect("a fixed, valid template");
    let rung_style = ProgressStyle::with_template("{prefix:>16} {bar:30.green/white} {pos}/{len} frames {msg}")
        .expect("a fixed, valid template");
    let overall = multi.add(ProgressBar::new(counters.total_frames * rungs));
    overall.set_style(overall_style);
    overall.set_prefix("all rungs");
    overall.set_position(done_frames * rungs);
    overall.reset_eta();
    let bars: Vec<ProgressBar> = labels
        .iter()
        .map(|label| {
            let bar = multi.add(ProgressBar::new(counters.total_frames));
            bar.set_style(rung_style.clone());
            bar.set_prefix(label.clone());
            bar
        })
        .collect();
    let start = Instant::now();
    loop {
        let finished = stop.load(Ordering::Relaxed);
        let mut sum = 0;
        for (bar, frames) in bars.iter().zip(&counters.frames) {
            let n = frames.load(Ordering::Relaxed);
            sum += n;
            let (per_second, speed) = rates(n.saturating_sub(done_frames), start, fps);
            bar.set_position(n);
            bar.set_message(format!("{per_second:.0} fps, {speed:.1}× realtime"));
        }
        overall.set_position(sum);
        let (per_second, speed) = rates(sum.saturating_sub(done_frames * rungs), start, fps * rungs as f64);
        overall.set_message(format!("{per_second:.0} frames/s, {speed:.2}× realtime"));
        if finished {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for bar in &bars {
        bar.finish();
    }
    overall.finish();
    *BARS.lock().unwrap_or_else(PoisonError::into_inner) = None;
}

fn show_lines(counters: &Counters, stop: &AtomicBool, fps: f64, done_frames: u64) {
    let start = Instant::now();
    let mut last = Instant::now();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if stopping || last.elapsed() >= LINE_INTERVAL {
            last = Instant::now();
            log_progress(counters, start, fps, done_frames);
        }
        if stopping {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One `progress` event: the slowest rung's frames (it decides when the run ends), rate,
/// speed and the time left, as numbers.
fn log_progress(counters: &Counters, start: Instant, fps: f64, done_frames: u64) {
    let frames = counters.frames.iter().map(|f| f.load(Ordering::Relaxed)).min().unwrap_or(0);
    let total = counters.total_frames.max(1);
    let (per_second, speed) = rates(frames.saturating_sub(done_frames), start, fps);
    let eta_seconds = (total.saturating_sub(frames) as f64 / per_second.max(1e-3)).round() as u64;
    let round = |x: f64, digits: i32| (x * 10f64.powi(digits)).round() / 10f64.powi(digits);
    tracing::info!(
        target: "ladder::progress",
        frames,
        total_frames = counters.total_frames,
        percent = round(frames as f64 * 100.0 / total as f64, 1),
        fps = round(per_second, 1),
        speed = round(speed, 2),
        eta_seconds,
        "progress"
    );
}
