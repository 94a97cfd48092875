mod audio_types;
mod band_pass_filter;
mod encoder;
mod gain_normalizer_filter;
pub use audio_types::{Endianness, Sample, SampleFormat};
pub use band_pass_filter::BandPassFilter;
pub use encoder::AudioEncoder;
pub use gain_normalizer_filter::GainNormalizerFilter;
