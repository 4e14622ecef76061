//! The `sampo` binary: parse the command line, start logging, dispatch, and
//! map errors to exit codes (0 success, 2 bad spec or usage, 1 runtime).

mod app;
mod cli;
mod run;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use sampo::exec::mpi::PeerExit;
use sampo::output::CreateError;
use sampo::output::TargetError;
use sampo::spec::SpecError;
use sampo::summary::SummaryError;

fn main() -> ExitCode {
    // Before any thread exists (MPI, rayon, the watchers).
    sampo::model::python::single_threaded_blas();
    let cli = cli::Cli::parse();
    let quiet = matches!(&cli.command, cli::Command::Run(a) if a.quiet);
    init_logging(cli.verbose, quiet);
    // A plugin's exit() (a Fortran STOP) is a failure, not a silent end.
    sampo::model::exit_hook::enable();
    let result = app::dispatch(cli);
    // From here the exit is sampo's own, not a plugin's.
    sampo::model::exit_hook::disarm();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Ranks other than 0 leave quietly: rank 0 prints the reason.
        Err(e) if e.downcast_ref::<PeerExit>().is_some() => {
            ExitCode::from(e.downcast_ref::<PeerExit>().map_or(1, |p| p.0))
        }
        // stdout closed early (`sampo summary … | head`): nothing to say.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        // Paused with a checkpoint: one line saying how to go on; 75
        // (EX_TEMPFAIL) tells a batch script to requeue.
        Err(e) if e.downcast_ref::<run::Paused>().is_some() => {
            say(&format!("sampo: {e}"));
            ExitCode::from(75)
        }
        Err(e) => {
            say(&format!("error: {e:#}"));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Writes a line to stderr, whatever becomes of it: an unwritable stderr (a
/// full disk under a batch system's log file) must not turn an exit code
/// into a panic.
pub(crate) fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// 2 for what the user must fix before anything runs, 128 + the signal for
/// a run stopped by one (as a shell reports it), 1 for the rest.
pub(crate) fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(sig) = sampo::exec::signals::received() {
        return 128 + sig as u8;
    }
    if e.downcast_ref::<SpecError>().is_some()
        || e.downcast_ref::<sampo::spec::overrides::OverrideError>()
            .is_some()
        || matches!(
            e.downcast_ref::<SummaryError>(),
            Some(SummaryError::Usage(_))
        )
        || matches!(
            e.downcast_ref::<sampo::plot::PlotError>(),
            Some(sampo::plot::PlotError::Usage(_))
        )
        || e.downcast_ref::<sampo::output::LayoutError>().is_some()
        || e.downcast_ref::<sampo::exec::mpi::SeparateCopies>()
            .is_some()
    {
        return 2;
    }
    if matches!(
        e.downcast_ref::<CreateError>(),
        Some(CreateError::Refused(_))
    ) {
        return 2;
    }
    let target = e
        .downcast_ref::<TargetError>()
        .or(match e.downcast_ref::<CreateError>() {
            Some(CreateError::Target(t)) => Some(t),
            _ => None,
        });
    if target.is_some() {
        2
    } else {
        1
    }
}

/// stderr for the log, whose writes never fail: a log line that cannot be
/// written (a full disk under a batch system's log file) is dropped, and the
/// run goes on and exits as it would have.
struct Unfailing(std::io::Stderr);

impl std::io::Write for Unfailing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(self.0.write(buf).unwrap_or(buf.len()))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Unfailing(std::io::stderr()))
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
