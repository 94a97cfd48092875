//! The continuation seam filter (`cloud::continuation::ContinuationFilter`): an opener and
//! the cloud's deltas (the input split at 0xFF bytes: opener first, then one delta each),
//! never a panic, streamed or whole.
#![no_main]
use cloud::continuation::ContinuationFilter;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0xFF);
    let opener = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let deltas: Vec<String> = parts.map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    let mut f = ContinuationFilter::new(&opener);
    for d in &deltas {
        let _ = f.push(d);
    }
    let _ = f.finish();
    let _ = f.repaired();
    let _ = cloud::continuation::filter_complete(&opener, &deltas.concat());
});
