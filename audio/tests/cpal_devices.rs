//! The cpal path on a machine without a sound card: ALSA's "null" PCM opens for capture and
//! playback (its capture delivers silence, not paced in real time), so the real callbacks run
//! and move samples through the rings; a device that does not exist gives an error naming it.

use std::time::{Duration, Instant};

use audio::device::{check_device, AudioCounters, Capture, DeviceError, DeviceOptions, Direction, Playback};

fn null(ring_ms: u32) -> DeviceOptions {
    DeviceOptions { name: "null".into(), buffer_frames: None, ring_ms }
}

#[test]
fn null_device_streams_through_the_rings() {
    let counters = AudioCounters::new();
    let (capture, mut reader) = Capture::open(&null(2_000), counters.clone()).expect("ALSA null capture");
    let (playback, mut queue) = Playback::open(&null(2_000), counters.clone()).expect("ALSA null playback");
    assert!(capture.format().0 > 0 && playback.format().0 > 0);
    // The capture callback delivers (silent) samples; the playback callback drains the queue.
    assert_eq!(queue.push(&vec![0.25f32; 1_000]), 1_000);
    let (mut got, t0) = (0usize, Instant::now());
    let mut buf = vec![0.0f32; 4_096];
    while (got == 0 || queue.queued() > 0) && t0.elapsed() < Duration::from_secs(10) {
        got += reader.read(&mut buf);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(got > 0, "no samples captured from the null device");
    assert_eq!(queue.queued(), 0, "the playback callback never drained the queue");
    assert!(queue.control().played_samples() >= 1_000);
    drop(capture);
    drop(playback);
}

#[test]
fn a_missing_device_is_named_in_the_error() {
    for dir in [Direction::Input, Direction::Output] {
        let e = check_device("no-such-card-42", dir).unwrap_err();
        assert!(matches!(e, DeviceError::NotFound { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("no-such-card-42") && msg.contains(&dir.to_string()), "{msg}");
        let opened = match dir {
            Direction::Input => {
                Capture::open(&DeviceOptions { name: "no-such-card-42".into(), buffer_frames: None, ring_ms: 500 }, AudioCounters::new())
                    .map(|_| ())
            }
            Direction::Output => {
                Playback::open(&DeviceOptions { name: "no-such-card-42".into(), buffer_frames: None, ring_ms: 500 }, AudioCounters::new())
                    .map(|_| ())
            }
        };
        assert!(opened.unwrap_err().to_string().contains("no-such-card-42"));
    }
}
