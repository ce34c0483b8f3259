//! What wakes a subcommand's main loop: a stdin line or EOF, SIGINT/SIGTERM, a closed
//! stdout.

use std::sync::mpsc::Sender;

pub(crate) enum Input {
    Line(String),
    Eof,
    Signal(&'static str),
    StdoutClosed,
}

#[cfg(unix)]
pub(crate) fn install_signal_handlers(tx: Sender<Input>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut term, mut int) = rt.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let name = rt.block_on(async {
                tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                }
            });
            let _ = tx.send(Input::Signal(name));
        })?;
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn install_signal_handlers(tx: Sender<Input>) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if rt.block_on(tokio::signal::ctrl_c()).is_ok() {
                let _ = tx.send(Input::Signal("Ctrl-C"));
            }
        })?;
    Ok(())
}
