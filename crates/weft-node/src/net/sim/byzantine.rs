//! Byzantine validators, as actors of the simulation: an honest node whose peer-to-peer
//! channels pass through a [`Tap`] that changes what it sends and drops what it hears. The
//! production core and engine know nothing of them.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use commonware_codec::{DecodeExt as _, Encode as _};
use commonware_consensus::simplex::elector::{
    Config as _, Elector as _, RoundRobin, RoundRobinElector,
};
use commonware_consensus::simplex::types::{Notarize, Proposal, Vote};
use commonware_cryptography::Sha256;
use commonware_p2p::{LimitedSender, Recipients};
use commonware_runtime::Clock as _;
use commonware_runtime::IoBufs;
use commonware_utils::ordered::Set;
use weft_core::encoding::{decode, encode};
use weft_core::{SigningKey, TxId};
use weft_ledger::Transaction;
use weft_ledger::block::SignedHeader;
use weft_ledger::ledger::{Admitted, Assembled, assemble};
use weft_ledger::store::Store as _;

use super::super::start::{NodeParts, Registered};
use super::super::wire::{Proposal as WireProposal, Sync};
use super::super::{Ctx, Digest, Event, Key, Scheme, engine_key};
use super::P2pSender;
use crate::submission::SharedLedger;

/// How a validator misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::net) enum Byzantine {
    /// Besides each notarize vote it sends, a second one in the same view for another block.
    Equivocator,
    /// Sends no finalize vote and ignores those of the others.
    Withholder,
    /// Leads with blocks holding a transaction whose signature has a bit flipped.
    Forger,
    /// Leads with blocks holding a transaction twice.
    Replayer,
    /// Leads with blocks whose state root is not the state after them.
    StateLiar,
    /// Answers requests for block bodies with a transaction's signature altered (or, for an
    /// empty block, a transaction it does not hold).
    BadBodies,
    /// Passes on peers' signed addresses with the address changed.
    AddressLiar,
    /// Answers asset history requests with a transaction added that is not on the chain.
    HistoryLiar,
}

/// What happens to one outgoing message: sent as is, replaced, dropped, and what is sent
/// after it to the same recipients.
struct Tapped {
    send: Option<Vec<u8>>,
    extra: Vec<Vec<u8>>,
}

/// Changes a node's outgoing messages on one channel and filters its incoming ones.
trait Tap: Send + std::marker::Sync {
    fn outgoing(&self, message: Vec<u8>) -> Tapped {
        Tapped {
            send: Some(message),
            extra: Vec::new(),
        }
    }

    /// Is this incoming message heard?
    fn incoming(&self, _message: &[u8]) -> bool {
        true
    }
}

/// A channel's sender, through a tap (none for an honest node).
#[derive(Clone)]
pub(in crate::net) struct TapSender {
    inner: P2pSender,
    tap: Option<Arc<dyn Tap>>,
}

pub(in crate::net) struct TapChecked<'a> {
    checked: <P2pSender as LimitedSender>::Checked<'a>,
    extra_to: P2pSender,
    tap: Option<Arc<dyn Tap>>,
}

impl LimitedSender for TapSender {
    type PublicKey = Key;
    type Checked<'a> = TapChecked<'a>;

    fn check(
        &mut self,
        recipients: Recipients<Key>,
    ) -> Result<Self::Checked<'_>, std::time::SystemTime> {
        let extra_to = self.inner.clone();
        let tap = self.tap.clone();
        self.inner.check(recipients).map(|checked| TapChecked {
            checked,
            extra_to,
            tap,
        })
    }
}

impl commonware_p2p::CheckedSender for TapChecked<'_> {
    type PublicKey = Key;

    fn recipients(&self) -> Vec<Key> {
        self.checked.recipients()
    }

    fn send(
        self,
        message: impl Into<IoBufs> + Send,
        priority: bool,
    ) -> commonware_actor::Unreliable<commonware_actor::Feedback> {
        let Some(tap) = self.tap else {
            return self.checked.send(message, priority);
        };
        let bytes = message.into().coalesce().as_ref().to_vec();
        let recipients = self.checked.recipients();
        let tapped = tap.outgoing(bytes);
        let feedback = match tapped.send {
            Some(bytes) => self.checked.send(bytes, priority),
            None => commonware_actor::Unreliable::new(commonware_actor::Feedback::Ok),
        };
        let mut extra_to = self.extra_to;
        for extra in tapped.extra {
            commonware_p2p::Sender::send(
                &mut extra_to,
                Recipients::Some(recipients.clone()),
                extra,
                priority,
            );
        }
        feedback
    }
}

/// A channel's receiver, through a tap.
pub(in crate::net) struct TapReceiver {
    inner: commonware_p2p::simulated::Receiver<Key>,
    tap: Option<Arc<dyn Tap>>,
}

impl std::fmt::Debug for TapReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapReceiver").finish_non_exhaustive()
    }
}

impl commonware_p2p::Receiver for TapReceiver {
    type Error = commonware_p2p::simulated::Error;
    type PublicKey = Key;

    async fn recv(&mut self) -> Result<commonware_p2p::Message<Key>, Self::Error> {
        loop {
            let (from, message) = self.inner.recv().await?;
            if self
                .tap
                .as_ref()
                .is_none_or(|tap| tap.incoming(message.as_ref()))
            {
                return Ok((from, message));
            }
        }
    }

    fn capacity(&self) -> NonZeroUsize {
        self.inner.capacity()
    }
}

type Channel = (P2pSender, commonware_p2p::simulated::Receiver<Key>);

fn tapped(channel: Channel, tap: Option<Arc<dyn Tap>>) -> (TapSender, TapReceiver) {
    (
        TapSender {
            inner: channel.0,
            tap: tap.clone(),
        },
        TapReceiver {
            inner: channel.1,
            tap,
        },
    )
}

/// A node's channels as it uses them: through the taps of `how` it misbehaves, if it does.
pub(in crate::net) fn wrap(
    how: Option<Byzantine>,
    registered: Registered<P2pSender, commonware_p2p::simulated::Receiver<Key>>,
    key: &SigningKey,
    parts: &NodeParts,
    validators: &[SigningKey],
    honest_from: Option<(super::Context, SystemTime)>,
) -> Registered<TapSender, TapReceiver> {
    let honest_from = honest_from.map(Arc::new);
    let until = |tap: Option<Arc<dyn Tap>>| -> Option<Arc<dyn Tap>> {
        match (tap, &honest_from) {
            (Some(inner), Some(from)) => Some(Arc::new(Until {
                inner,
                from: from.clone(),
            })),
            (tap, _) => tap,
        }
    };
    let votes: Option<Arc<dyn Tap>> = match how {
        Some(Byzantine::Equivocator) => {
            let participants = participants(validators);
            let me = participants
                .position(&engine_key(&key.public_key()).expect("a key"))
                .expect("a validator");
            Some(Arc::new(Equivocator {
                signer: signer(key, parts, validators),
                me,
                elector: RoundRobin::<Sha256>::default().build(&participants),
            }))
        }
        Some(Byzantine::Withholder) => Some(Arc::new(Withholder)),
        _ => None,
    };
    let sync: Option<Arc<dyn Tap>> = match how {
        Some(Byzantine::BadBodies) => Some(Arc::new(BadBodies)),
        Some(Byzantine::AddressLiar) => Some(Arc::new(AddressLiar)),
        Some(Byzantine::HistoryLiar) => Some(Arc::new(HistoryLiar)),
        _ => None,
    };
    Registered {
        votes: tapped(registered.votes, until(votes)),
        certificates: tapped(registered.certificates, None),
        resolver: tapped(registered.resolver, None),
        blocks: tapped(registered.blocks, None),
        txs: tapped(registered.txs, None),
        sync: tapped(registered.sync, until(sync)),
    }
}

/// The consensus signer of validator `key`, in the simulation's one epoch.
fn signer(key: &SigningKey, parts: &NodeParts, validators: &[SigningKey]) -> Scheme {
    Scheme::signer(
        &parts.core.namespace,
        participants(validators),
        ed25519_private(key),
    )
    .expect("a validator")
}

/// The simulation's validators, as the engine orders them.
fn participants(validators: &[SigningKey]) -> Set<Key> {
    Set::from_iter_dedup(
        validators
            .iter()
            .map(|validator| engine_key(&validator.public_key()).expect("a key")),
    )
}

fn ed25519_private(key: &SigningKey) -> commonware_cryptography::ed25519::PrivateKey {
    commonware_cryptography::ed25519::PrivateKey::decode(commonware_codec::Copying(&key.seed()[..]))
        .expect("a private key")
}

/// A vote frame of the engine's multiplexed channel: its subchannel (the epoch) and the vote.
fn vote_of(frame: &[u8]) -> Option<(u64, Vote<Scheme, Digest>)> {
    // The subchannel is a LEB128 varint.
    let mut subchannel = 0u64;
    let mut at = 0;
    loop {
        let byte = *frame.get(at)?;
        subchannel |= u64::from(byte & 0x7f) << (7 * at);
        at += 1;
        if byte & 0x80 == 0 {
            break;
        }
        if at >= 10 {
            return None;
        }
    }
    let vote = Vote::<Scheme, Digest>::decode(commonware_codec::Copying(&frame[at..])).ok()?;
    Some((subchannel, vote))
}

fn frame(subchannel: u64, vote: &Vote<Scheme, Digest>) -> Vec<u8> {
    let mut bytes = commonware_codec::varint::UInt(subchannel).encode().to_vec();
    bytes.extend_from_slice(&vote.encode());
    bytes
}

/// Double votes: in each view it leads, a validly signed notarize vote for another block first,
/// then its vote for its own proposal. A validator takes the leader's first vote as the view's
/// proposal, then holds both, signed: evidence it reports (commonware's engine blocks a double
/// vote that does not come from the leader without reporting it).
struct Equivocator {
    signer: Scheme,
    me: usize,
    elector: RoundRobinElector<Scheme>,
}

impl Tap for Equivocator {
    fn outgoing(&self, message: Vec<u8>) -> Tapped {
        let Some((subchannel, Vote::Notarize(notarize))) = vote_of(&message) else {
            return Tapped {
                send: Some(message),
                extra: Vec::new(),
            };
        };
        let leader: usize = self.elector.elect(notarize.proposal.round, ()).into();
        if leader != self.me {
            return Tapped {
                send: Some(message),
                extra: Vec::new(),
            };
        }
        let mut other = notarize.proposal.payload.0;
        other[0] ^= 0xff;
        let proposal = Proposal::new(
            notarize.proposal.round,
            notarize.proposal.parent,
            commonware_cryptography::sha256::Digest(other),
        );
        match Notarize::sign(&self.signer, proposal) {
            Some(double) => Tapped {
                send: Some(frame(subchannel, &Vote::Notarize(double))),
                extra: vec![message],
            },
            None => Tapped {
                send: Some(message),
                extra: Vec::new(),
            },
        }
    }
}

/// Withholds finality: sends no finalize vote, and drops the others' (else its engine could
/// assemble a finalization from theirs and its own unsent vote, and send it).
struct Withholder;

impl Withholder {
    fn is_finalize(frame: &[u8]) -> bool {
        matches!(vote_of(frame), Some((_, Vote::Finalize(_))))
    }
}

impl Tap for Withholder {
    fn outgoing(&self, message: Vec<u8>) -> Tapped {
        Tapped {
            send: (!Self::is_finalize(&message)).then_some(message),
            extra: Vec::new(),
        }
    }

    fn incoming(&self, message: &[u8]) -> bool {
        !Self::is_finalize(message)
    }
}

/// Alters the first body of each bodies answer: the body no longer matches its final header.
struct BadBodies;

impl Tap for BadBodies {
    fn outgoing(&self, message: Vec<u8>) -> Tapped {
        let send = match decode::<Sync>(&message) {
            Ok(Sync::Bodies {
                from_height,
                mut bodies,
            }) if !bodies.is_empty() => {
                let body = &mut bodies[0];
                match body.first_mut() {
                    Some(tx) => tx.signature.0[0] ^= 1,
                    None => body.push(Transaction {
                        signature: weft_core::Signature([7; 64]),
                        ..stray_transaction()
                    }),
                }
                encode(&Sync::Bodies {
                    from_height,
                    bodies,
                })
            }
            _ => message,
        };
        Tapped {
            send: Some(send),
            extra: Vec::new(),
        }
    }
}

/// Adds a transaction no block holds to every history it answers with: not the history the
/// state root commits to.
struct HistoryLiar;

impl Tap for HistoryLiar {
    fn outgoing(&self, message: Vec<u8>) -> Tapped {
        let send = match decode::<Sync>(&message) {
            Ok(Sync::History(mut answer)) => {
                answer.transactions.push(stray_transaction());
                encode(&Sync::History(answer))
            }
            _ => message,
        };
        Tapped {
            send: Some(send),
            extra: Vec::new(),
        }
    }
}

/// A transaction no block of the simulation holds.
fn stray_transaction() -> Transaction {
    let key = SigningKey::from_seed(&[0x77; 32]);
    Transaction::sign(
        weft_core::ChainId::from_name("elsewhere").expect("a name"),
        super::START_MS,
        weft_ledger::Signer::Authority,
        &key,
        weft_core::model::Payload::NetworkPeer(weft_core::model::NetworkPeer {
            key: key.public_key(),
            admitted: true,
            name: "stray".into(),
        }),
    )
    .expect("a transaction")
}

/// Changes the address in every signed address it passes on (the signature no longer holds).
struct AddressLiar;

impl Tap for AddressLiar {
    fn outgoing(&self, message: Vec<u8>) -> Tapped {
        let send = match decode::<Sync>(&message) {
            Ok(Sync::Addresses { mut records }) => {
                for record in &mut records {
                    record.address = "127.0.0.66:6666".into();
                }
                encode(&Sync::Addresses { records })
            }
            _ => message,
        };
        Tapped {
            send: Some(send),
            extra: Vec::new(),
        }
    }
}

/// A validator that leads with invalid blocks: it stands between the engine and its core, and
/// answers the engine's requests for a proposal itself with a block it broke (on the committed
/// head: it waits up to [`HOLD`] for the parent to be committed, else lets the core propose),
/// sent whole to every peer; the core proposes the rest of the time.
pub(in crate::net) struct InvalidProposer {
    pub how: Byzantine,
    pub ledger: SharedLedger,
    pub key: SigningKey,
    pub blocks: TapSender,
    /// A valid transaction of its own to break, by number and time.
    pub make_tx: Box<dyn Fn(u64, u64) -> Transaction + Send>,
}

/// How long an invalid proposer holds a request for a proposal, waiting for its parent to be
/// committed.
const HOLD: Duration = Duration::from_millis(1_000);

impl InvalidProposer {
    /// Runs between `inbox` (what the engine and the network send the core) and `core`.
    pub async fn run(self, inbox: Receiver<Event>, core: Sender<Event>, context: super::Context) {
        let mut broken: Vec<Digest> = Vec::new();
        let mut held: Vec<(
            Ctx,
            commonware_utils::channel::oneshot::Sender<Digest>,
            SystemTime,
        )> = Vec::new();
        let mut made = 0u64;
        loop {
            loop {
                let event = match inbox.try_recv() {
                    Ok(event) => event,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                };
                let passed = match event {
                    Event::Propose {
                        context: ctx,
                        response,
                    } => {
                        held.push((ctx, response, context.current()));
                        continue;
                    }
                    // Its broken blocks went whole to every peer already.
                    Event::Broadcast { digest, .. } if broken.contains(&digest) => continue,
                    other => other,
                };
                if core.send(passed).is_err() {
                    return;
                }
            }
            let now = context.current();
            let mut still = Vec::new();
            for (ctx, response, since) in held.drain(..) {
                let unix_ms = now
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |since| since.as_millis() as u64);
                if let Some(digest) = self.broken_proposal(&ctx, made, unix_ms) {
                    made += 1;
                    broken.push(digest);
                    let _ = response.send(digest);
                } else if now.duration_since(since).unwrap_or_default() >= HOLD {
                    let honest = Event::Propose {
                        context: ctx,
                        response,
                    };
                    if core.send(honest).is_err() {
                        return;
                    }
                } else {
                    still.push((ctx, response, since));
                }
            }
            held = still;
            context.sleep(Duration::from_millis(1)).await;
        }
    }

    /// A block on `ctx`'s parent, if that is the committed head, broken as `how` says, sealed
    /// and sent to every peer; its digest.
    fn broken_proposal(&self, ctx: &Ctx, n: u64, now: u64) -> Option<Digest> {
        let ledger = self.ledger.lock().ok()?;
        let head = ledger.head().clone();
        if head.header.hash().0.0 != ctx.parent.1.0 {
            return None;
        }
        let snapshot = ledger.store().snapshot().ok()?;
        let tx = (self.make_tx)(n, now);
        let Assembled { block, .. } = assemble(
            &snapshot,
            ledger.chain_id(),
            &head,
            Admitted::check(vec![tx]),
            &self.key,
            now,
        )
        .ok()?;
        drop(snapshot);
        drop(ledger);
        let mut block = block;
        let first = block.transactions.first()?.clone();
        match self.how {
            Byzantine::Forger => block.transactions[0].signature.0[0] ^= 1,
            Byzantine::Replayer => block.transactions.push(first),
            Byzantine::StateLiar => {}
            _ => return None,
        }
        let ids: Vec<TxId> = block.transactions.iter().map(Transaction::id).collect();
        let mut header = block.signed.header.clone();
        header.merkle_root = weft_ledger::block::merkle_levels(&block.transactions, &ids).root();
        header.tx_count = block.transactions.len() as u32;
        if let (Byzantine::StateLiar, Some(root)) = (self.how, &mut header.state_root) {
            root.0[0] ^= 1;
        }
        block.signed = SignedHeader::seal(header, &self.key);
        let digest = commonware_cryptography::sha256::Digest(block.signed.header.hash().0.0);
        let mut blocks = self.blocks.clone();
        commonware_p2p::Sender::send(
            &mut blocks,
            Recipients::All,
            encode(&WireProposal::Whole(block)),
            true,
        );
        Some(digest)
    }
}

/// A tap that misbehaves until a simulated time, then lets everything through.
struct Until {
    inner: Arc<dyn Tap>,
    from: Arc<(super::Context, SystemTime)>,
}

impl Until {
    fn honest(&self) -> bool {
        self.from.0.current() >= self.from.1
    }
}

impl Tap for Until {
    fn outgoing(&self, message: Vec<u8>) -> Tapped {
        if self.honest() {
            Tapped {
                send: Some(message),
                extra: Vec::new(),
            }
        } else {
            self.inner.outgoing(message)
        }
    }

    fn incoming(&self, message: &[u8]) -> bool {
        self.honest() || self.inner.incoming(message)
    }
}
