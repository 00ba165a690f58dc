//! The drivers of the network core: they hand it its inputs and perform the effects it returns
//! (`core::effect`). A node's is [`run_blocking`], a thread that blocks on the core's inbox; a
//! simulation's is a task of the deterministic runtime (`sim/node.rs`).

use commonware_p2p::{AddressableManager, Blocker, Sender};

use super::core::{Core, CoreIo};
use super::{Event, Key};

/// The node's driver of the core: a thread that blocks on the core's inbox, hands it each
/// event and performs what it asks, until the core is told to stop (or its inbox closes); then
/// the core answers what it holds. A storage failure ends it with the error.
pub(crate) fn run_blocking<S, B>(
    mut core: Core,
    mut io: CoreIo<S, B>,
    inbox: std::sync::mpsc::Receiver<Event>,
) -> anyhow::Result<()>
where
    S: Sender<PublicKey = Key>,
    B: Blocker<PublicKey = Key> + AddressableManager<PublicKey = Key>,
{
    let mut result = core.start();
    while result.is_ok() {
        perform_all(&mut core, &mut io);
        let Ok(event) = inbox.recv() else {
            break;
        };
        match core.handle(event) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => result = Err(error),
        }
    }
    core.finish();
    perform_all(&mut core, &mut io);
    result
}

/// Performs every effect the core asked for, in order.
pub(crate) fn perform_all<S, B>(core: &mut Core, io: &mut CoreIo<S, B>)
where
    S: Sender<PublicKey = Key>,
    B: Blocker<PublicKey = Key> + AddressableManager<PublicKey = Key>,
{
    for effect in core.take_effects() {
        io.perform(effect);
    }
}
