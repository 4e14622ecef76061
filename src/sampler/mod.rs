//! Samplers: one module per algorithm. Nothing here knows about MPI, files or
//! threads beyond the rayon pool it is run inside.

pub mod ensemble;
pub mod moves;

pub use ensemble::{Ensemble, EnsembleSettings, Init, SampleError};
pub use moves::{Move, WeightedMove};
