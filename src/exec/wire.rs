//! The messages ranks exchange, for any job: serde data encoded with
//! postcard (floats travel as their bits), each sent with the tag of its
//! kind so that a rank can look for one kind (STOP) without taking others.

use serde::{Deserialize, Serialize};

use crate::jobs::{TaskError, TaskId};
use crate::output::Record;

/// Message tags.
pub mod tag {
    /// 0 → worker: run a task.
    pub const ASSIGN: i32 = 1;
    /// worker → 0: records, finished tasks, progress.
    pub const EVENTS: i32 = 2;
    /// 0 → worker: the next stage starts, with the previous one's carry.
    pub const STAGE: i32 = 3;
    /// 0 → any: stop now (the job ends, or failed).
    pub const STOP: i32 = 4;
    /// any → 0: stopped; the last message a rank sends.
    pub const BYE: i32 = 5;
    /// 0 → worker: pause every task at its next step (a checkpoint), or go on.
    pub const PAUSE: i32 = 6;
    /// 0 → worker (queue mode): rank 0 is alive, with nothing else to say.
    pub const ALIVE: i32 = 7;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Message {
    Assign {
        task: TaskId,
        /// The snapshot the task paused with in the previous round.
        resume: Option<Vec<u8>>,
    },
    /// 0 → every rank of a group (group mode), each round: the group's
    /// task and its snapshot, or none (the rank only joins the group's
    /// communicator).
    Group {
        task: Option<TaskId>,
        resume: Option<Vec<u8>>,
    },
    Events {
        /// Units of work done since the previous message.
        progress: u64,
        events: Vec<Event>,
    },
    Stage {
        stage: u32,
        carry: Vec<u8>,
    },
    Stop {
        code: u8,
    },
    /// Tasks pause at their next step and report (`on`), or may run again.
    Pause {
        on: bool,
    },
    Bye,
    /// 0 → every worker of a queue stage, at least every `HEARTBEAT`:
    /// rank 0 is alive (a worker that stops hearing it ends the job).
    Alive,
}

impl Message {
    pub fn tag(&self) -> i32 {
        match self {
            Message::Assign { .. } | Message::Group { .. } => tag::ASSIGN,
            Message::Events { .. } => tag::EVENTS,
            Message::Stage { .. } => tag::STAGE,
            Message::Stop { .. } => tag::STOP,
            Message::Pause { .. } => tag::PAUSE,
            Message::Bye => tag::BYE,
            Message::Alive => tag::ALIVE,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("messages are plain serde data")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        postcard::from_bytes(bytes).map_err(|e| format!("undecodable message: {e}"))
    }
}

/// What happened to a task, as reported to rank 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    Record(Record),
    Finished(Finished),
    /// This rank received a signal (its number): the job must stop.
    Interrupted(i32),
    /// This rank cannot go on (an evaluation that does not return), said
    /// with its context: the job fails.
    Failed(String),
}

/// A task that returned (done, paused, failed or cancelled), with where
/// and when it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    pub task: TaskId,
    pub end: End,
    /// Seconds since the rank started.
    pub start: f64,
    pub finish: f64,
    pub evaluations: u64,
    pub nan_evaluations: u64,
}

impl Finished {
    /// A task handed back before it started (a pause or a stop came first),
    /// with the snapshot it was given.
    pub fn returned(task: TaskId, resume: Option<Vec<u8>>) -> Self {
        Self {
            task,
            end: End::Returned(resume),
            start: 0.0,
            finish: 0.0,
            evaluations: 0,
            nan_evaluations: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum End {
    Done,
    /// Done, with the task's last state (`Outcome::Final`).
    Final(Vec<u8>),
    /// Paused at the end of a round (`Outcome::Paused`).
    Paused(Vec<u8>),
    /// Paused when asked (`Outcome::Yielded`).
    Yielded(Vec<u8>),
    /// Handed back unstarted, with the snapshot it was assigned with (if
    /// any), because a pause came before it could start.
    Returned(Option<Vec<u8>>),
    /// Failed (never `TaskError::Cancelled`: that is `Cancelled`).
    Failed(TaskError),
    Cancelled,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Column;

    #[test]
    fn messages_round_trip_bit_for_bit() {
        let values = vec![0.1, -0.0, f64::MIN_POSITIVE, 1e300, f64::NEG_INFINITY];
        let msg = Message::Events {
            progress: 7,
            events: vec![
                Event::Record(Record {
                    dataset: 3,
                    first_row: 100,
                    rows: 1,
                    lane: Some(2),
                    values: Column::F64(values.clone()),
                }),
                Event::Finished(Finished {
                    task: TaskId { stage: 1, index: 9 },
                    end: End::Paused(vec![1, 2, 3]),
                    start: 0.25,
                    finish: 1.5,
                    evaluations: 10,
                    nan_evaluations: 1,
                }),
            ],
        };
        let back = Message::decode(&msg.encode()).unwrap();
        assert_eq!(back, msg);
        let Message::Events { events, .. } = back else {
            unreachable!()
        };
        let Event::Record(r) = &events[0] else {
            unreachable!()
        };
        let Column::F64(v) = &r.values else {
            unreachable!()
        };
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(v), bits(&values));
        assert!(Message::decode(&msg.encode()[..5]).is_err());
    }
}
