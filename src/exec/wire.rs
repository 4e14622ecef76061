//! The messages ranks exchange, as plain byte buffers (little-endian), so
//! that MPI only ever moves bytes and the format is stated in one place.

use super::{Block, TaskRecord, TaskStats};

/// Message tags.
pub mod tag {
    /// worker → 0: ready for a task. Body: nothing but the sender's rank.
    pub const REQUEST: i32 = 1;
    /// 0 → worker: run this task. Body: task id.
    pub const ASSIGN: i32 = 2;
    /// leader → 0: a block of a task's chain.
    pub const BLOCK: i32 = 3;
    /// leader → 0: a task finished. Body: see [`super::encode_done`].
    pub const DONE: i32 = 4;
    /// any → 0: a task failed. Body: the message, UTF-8.
    pub const FAILED: i32 = 5;
    /// 0 → any: stop now (the job ends, or failed). Body: exit code.
    pub const STOP: i32 = 6;
    /// 0 → worker: the queue is empty (finish what you run, then wait for STOP).
    pub const NO_MORE: i32 = 8;
    /// any → 0: stopped; the last message a rank sends.
    pub const BYE: i32 = 7;
}

pub fn encode_u64s(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn decode_u64s(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

fn push_f64s(out: &mut Vec<u8>, values: &[f64]) {
    out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
}

fn f64s(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

/// Header (task, first_row, rows, chain len, log_prob len, accepted len),
/// then the three arrays. Floats travel as their bits: nothing is rounded.
pub fn encode_block(b: &Block) -> Vec<u8> {
    let header = [
        b.task as u64,
        b.first_row as u64,
        b.rows as u64,
        b.chain.len() as u64,
        b.log_prob.len() as u64,
        b.accepted.len() as u64,
    ];
    let mut out = encode_u64s(&header);
    out.reserve(8 * (b.chain.len() + b.log_prob.len() + b.accepted.len()));
    push_f64s(&mut out, &b.chain);
    push_f64s(&mut out, &b.log_prob);
    push_f64s(&mut out, &b.accepted);
    out
}

pub fn decode_block(bytes: &[u8]) -> Result<Block, String> {
    if bytes.len() < 48 {
        return Err(format!(
            "block message of {} bytes is too short",
            bytes.len()
        ));
    }
    let h = decode_u64s(&bytes[..48]);
    let (nc, nl, na) = (h[3] as usize, h[4] as usize, h[5] as usize);
    let body = &bytes[48..];
    if body.len() != 8 * (nc + nl + na) {
        return Err(format!(
            "block message has {} body bytes, expected {}",
            body.len(),
            8 * (nc + nl + na)
        ));
    }
    Ok(Block {
        task: h[0] as usize,
        first_row: h[1] as usize,
        rows: h[2] as usize,
        chain: f64s(&body[..8 * nc]),
        log_prob: f64s(&body[8 * nc..8 * (nc + nl)]),
        accepted: f64s(&body[8 * (nc + nl)..]),
    })
}

/// (task id, accepted, evaluations, NaN evaluations, start bits, end bits).
pub fn encode_done(task: usize, stats: &TaskStats, start: f64, end: f64) -> Vec<u8> {
    encode_u64s(&[
        task as u64,
        stats.accepted,
        stats.evaluations,
        stats.nan_evaluations,
        start.to_bits(),
        end.to_bits(),
    ])
}

/// The record of a finished task, given the rank that sent it and the plan.
pub fn decode_done(bytes: &[u8], rank: usize, tasks: &[super::Task]) -> Result<TaskRecord, String> {
    let v = decode_u64s(bytes);
    if v.len() != 6 {
        return Err(format!("done message with {} fields, expected 6", v.len()));
    }
    let task = *tasks
        .get(v[0] as usize)
        .ok_or_else(|| format!("done message for unknown task {}", v[0]))?;
    Ok(TaskRecord {
        task,
        rank,
        start: f64::from_bits(v[4]),
        end: f64::from_bits(v[5]),
        stats: TaskStats {
            accepted: v[1],
            evaluations: v[2],
            nan_evaluations: v[3],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_bit_for_bit() {
        let b = Block {
            task: 3,
            first_row: 100,
            rows: 2,
            chain: vec![0.1, -0.0, f64::MIN_POSITIVE, 1e300],
            log_prob: vec![f64::NEG_INFINITY, -3.5],
            accepted: vec![7.0, 9.0],
        };
        let back = decode_block(&encode_block(&b)).unwrap();
        assert_eq!(
            back.chain.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            b.chain.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(back, b);
        assert!(decode_block(&encode_block(&b)[..50]).is_err());
    }

    #[test]
    fn done_round_trips() {
        let tasks = [super::super::Task {
            id: 0,
            state: 1,
            replicate: 0,
        }];
        let stats = TaskStats {
            accepted: 5,
            evaluations: 10,
            nan_evaluations: 1,
        };
        let r = decode_done(&encode_done(0, &stats, 0.25, 1.5), 2, &tasks).unwrap();
        assert_eq!((r.rank, r.start, r.end, r.stats), (2, 0.25, 1.5, stats));
        assert!(decode_done(&encode_done(4, &stats, 0.0, 1.0), 2, &tasks).is_err());
    }
}
