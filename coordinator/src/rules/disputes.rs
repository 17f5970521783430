//! A dispute's bisection game as the coordinator referees it: which
//! question each party is asked, what their answers move the game to, and
//! when the dispute goes to the arbiter — for one step, or in full. The
//! game itself (reveals, hashes, the first differing leaf) is
//! [`assay_protocol::trace`]; this module is its bookkeeping between rounds,
//! without SQL. The store keeps a [`Game`] as JSON between answers.
//!
//! ```text
//!  disagreeing verdict (both traces recorded)
//!     └─► claim ─ both claims ─┬─ traces agree / a claim does not hash ───────► full
//!                              └─► node … node (one level a round) ─► leaf ─┐
//!                       ┌────────────────────────────────────────────────────┘
//!                       ├─ same call, different outputs ─► inputs ─ evidence ─► step
//!                       │      (a call without tensor inputs goes to step at once)
//!                       ├─ different calls, or a trace ended ─────────────────► step (re-run the guest)
//!                       └─ an upload, a bad reveal ─────────────────────────────► full
//!  any question unanswered by the game's deadline, or `unable` ─────────────► full
//! ```
//!
//! `step`: the arbiter recomputes the one op from the revealed inputs, or
//! (different calls) re-runs the guest up to that step and sees which call
//! it makes there; `full`: it re-executes the job (the dispute as before bisection). A bad
//! reveal does not decide the dispute by itself: the full re-execution
//! does, and slashes whoever was wrong.

use assay_protocol::trace::{
    self, Bisection, Call, Claim, Divergence, LeafReveal, NodeReveal, Opening, Party, Progress,
    Query,
};
use assay_protocol::{Hash32, NodeId};
use serde::{Deserialize, Serialize};

/// How a full re-execution's arbitration note, and an arbiter's give-back
/// of a step it could not recompute, begin (a wire word: the verifier
/// hands a step back with this reason).
pub const FULL_RE_EXECUTION: &str = "full re-execution: ";

/// Steps whose calls cannot be recomputed from earlier steps: their data
/// came from the guest. A divergence there is the guest's own code's.
pub const UNREPLAYABLE: [&str; 2] = ["tensor.upload-f32", "tensor.upload-i32"];

/// Where a game is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Asking both parties for their trace's length and top.
    Claim,
    /// Asking for the children of a node.
    Node,
    /// Asking for the first differing step.
    Leaf,
    /// Asking for the output tensors of the differing step's inputs.
    Inputs,
    /// The arbiter recomputes one step.
    Step,
    /// The arbiter re-executes the job.
    Full,
    /// The arbiter's verdict decided the dispute.
    Decided,
}

impl Phase {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Claim => "claim",
            Phase::Node => "node",
            Phase::Leaf => "leaf",
            Phase::Inputs => "inputs",
            Phase::Step => "step",
            Phase::Full => "full",
            Phase::Decided => "decided",
        }
    }

    /// The parties still answer questions.
    pub fn asking(self) -> bool {
        matches!(
            self,
            Phase::Claim | Phase::Node | Phase::Leaf | Phase::Inputs
        )
    }
}

/// The question both parties are asked now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    /// `claim`, `node`, `leaf` or `inputs` ([`Phase::as_str`]).
    pub phase: Phase,
    /// `node`: the node's height.
    pub level: u32,
    /// `node`: its position; `leaf`: the step.
    pub index: u64,
    /// `inputs`: the steps whose outputs to reveal.
    pub steps: Vec<u64>,
}

/// A tensor revealed as an input of the differing step, already checked
/// against the agreed prefix of the traces (by the service, which reads
/// the blob).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevealedInput {
    /// The producing step.
    pub step: u64,
    /// Its call bytes.
    pub call: Vec<u8>,
    /// The inclusion proof: the revealing trace's step count and siblings.
    pub trace_steps: u64,
    /// See `trace_steps`.
    pub siblings: Vec<Hash32>,
    /// `trace::Dtype` code.
    pub dtype: u8,
    /// Its shape.
    pub shape: Vec<u64>,
    /// The blob of its bytes.
    pub blob: Hash32,
    /// Its size.
    pub size: u64,
}

/// One party's answer to the current question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// Its trace's length and top.
    Claim(Claim),
    /// The children of the asked node.
    Node(NodeReveal),
    /// The asked step (`None`: its trace ended before it).
    Leaf(Option<LeafReveal>),
    /// The asked steps' outputs, checked.
    Inputs(Vec<RevealedInput>),
    /// It cannot answer, or its evidence did not check: why.
    Unable(String),
}

impl Answer {
    /// Bytes it took on the wire, as the arbitration's cost counts them.
    pub fn wire_bytes(&self) -> u64 {
        match self {
            Answer::Claim(_) => 8 + 32,
            Answer::Node(_) => NodeReveal::WIRE_BYTES,
            Answer::Leaf(Some(r)) => r.wire_bytes(),
            Answer::Leaf(None) | Answer::Unable(_) => 1,
            Answer::Inputs(ts) => ts
                .iter()
                .map(|t| {
                    t.size
                        + t.call.len() as u64
                        + 32 * t.siblings.len() as u64
                        + 8 * t.shape.len() as u64
                        + 32
                })
                .sum(),
        }
    }
}

/// What the arbiter decides about the step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// The same call, different outputs: recompute the op from its inputs.
    #[default]
    Output,
    /// Different calls (or a trace that ended): re-run the guest up to the
    /// step and see which call it makes there.
    Call,
}

impl StepKind {
    /// The wire name (`DisputedStep.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Output => "output",
            StepKind::Call => "call",
        }
    }
}

/// What the arbiter recomputes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepToRecompute {
    /// An op's output, or the guest's call.
    #[serde(default)]
    pub kind: StepKind,
    /// The step.
    pub index: u64,
    /// Its call bytes (kind output).
    pub call: Vec<u8>,
    /// Kind call: each party's call there (`None`: its trace ended).
    #[serde(default)]
    pub calls: [Option<Vec<u8>>; 2],
    /// The provider's and the verifier's output digests (kind call: their
    /// calls' [`trace::call_digest`]s).
    pub outputs: [Hash32; 2],
    /// The trace roots both signed.
    pub roots: [Hash32; 2],
    /// One per input of the call, in order.
    pub inputs: Vec<RevealedInput>,
}

/// A dispute's game between the provider (side A, index 0) and the
/// verifier that disputed (side B, index 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Game {
    /// The dispute's id (every reveal names it).
    pub dispute: Hash32,
    /// The parties.
    pub parties: [NodeId; 2],
    /// The trace roots their receipt and verdict signed.
    pub roots: [Hash32; 2],
    /// Where it is.
    pub phase: Phase,
    /// The bisection, once both claims are in.
    pub bisection: Option<Bisection>,
    /// The question asked now (while [`Phase::asking`]).
    pub question: Question,
    /// The answers to it so far.
    pub answers: [Option<Answer>; 2],
    /// The divergence being settled (from the leaf on).
    pub divergence: Option<(u64, Vec<u8>, [Hash32; 2])>,
    /// Node rounds played.
    pub rounds: u32,
    /// Bytes the parties revealed so far.
    pub revealed_bytes: u64,
    /// Why it went to a full re-execution, or how the step was found.
    pub note: String,
    /// For [`Phase::Step`]: what to recompute.
    pub step: Option<StepToRecompute>,
}

impl Game {
    /// A game about a receipt whose provider's trace root is `roots[0]`,
    /// disputed by a verdict whose trace root is `roots[1]`.
    pub fn open(dispute: Hash32, parties: [NodeId; 2], roots: [Hash32; 2]) -> Game {
        Game {
            dispute,
            parties,
            roots,
            phase: Phase::Claim,
            bisection: None,
            question: Question {
                phase: Phase::Claim,
                level: 0,
                index: 0,
                steps: Vec::new(),
            },
            answers: [None, None],
            divergence: None,
            rounds: 0,
            revealed_bytes: 0,
            note: String::new(),
            step: None,
        }
    }

    /// What the dispute waits for, in words (`job status`).
    pub fn status(&self, arbiter_online: bool) -> String {
        let arbiter = if arbiter_online {
            "the arbiter"
        } else {
            "the arbiter (not online: the coordinator names it with --arbiter-key; start it with `assay verifier`)"
        };
        match self.phase {
            Phase::Claim | Phase::Node | Phase::Leaf => format!(
                "disputed: bisecting the provider's and the verifier's traces ({} rounds so far, {} bytes revealed)",
                self.rounds, self.revealed_bytes
            ),
            Phase::Inputs => format!(
                "disputed: the traces first differ at step {}; waiting for its inputs to be revealed",
                self.question.index
            ),
            Phase::Step => format!(
                "disputed: bisected to {}; {arbiter} recomputes that step",
                self.note
            ),
            Phase::Full => format!("disputed: {arbiter} re-executes the job ({})", self.note),
            Phase::Decided => String::new(),
        }
    }

    /// What the referee's verdict records about how the dispute reached the
    /// arbiter (`VerdictRecord.arbitration`); `on_step`: the verdict
    /// decided the step (not a full re-execution).
    pub fn arbitration(&self, on_step: bool) -> String {
        if !on_step {
            return format!("{FULL_RE_EXECUTION}{}", self.note);
        }
        let done = match self.step.as_ref().map(|s| s.kind) {
            Some(StepKind::Call) => "the arbiter re-ran the guest up to it",
            _ => "recomputed by the arbiter",
        };
        format!(
            "{}, {} bytes revealed: {done}",
            self.note, self.revealed_bytes
        )
    }

    /// What the arbiter does with the step, in words.
    pub fn arbiter_work(&self) -> &'static str {
        match self.step.as_ref().map(|s| s.kind) {
            Some(StepKind::Call) => "re-runs the guest up to that step",
            _ => "recomputes that step",
        }
    }

    /// Which side `node` is, if a party.
    pub fn side_of(&self, node: &NodeId) -> Option<usize> {
        self.parties.iter().position(|p| p == node)
    }

    /// Whether `side` still owes an answer to the current question.
    pub fn awaits(&self, side: usize) -> bool {
        self.phase.asking() && self.answers.get(side).is_some_and(Option::is_none)
    }

    /// Records `side`'s answer and moves the game on when it can.
    ///
    /// # Errors
    ///
    /// A message for the party when the answer is not to the current
    /// question (answered twice, the wrong kind): nothing changes.
    pub fn answer(&mut self, side: usize, answer: Answer) -> Result<(), String> {
        if !self.awaits(side) {
            return Err(format!(
                "dispute {} asks nothing of this party now (phase {})",
                self.dispute.short(),
                self.phase.as_str()
            ));
        }
        let fits = matches!(
            (&answer, self.phase),
            (Answer::Unable(_), _)
                | (Answer::Claim(_), Phase::Claim)
                | (Answer::Node(_), Phase::Node)
                | (Answer::Leaf(_), Phase::Leaf)
                | (Answer::Inputs(_), Phase::Inputs)
        );
        if !fits {
            return Err(format!(
                "the question of dispute {} is `{}`",
                self.dispute.short(),
                self.phase.as_str()
            ));
        }
        self.revealed_bytes = self.revealed_bytes.saturating_add(answer.wire_bytes());
        // Inputs come from either party: the first evidence that checks is
        // enough (both hold the same prefix).
        if let (Phase::Inputs, Answer::Inputs(inputs)) = (self.phase, &answer) {
            let inputs = inputs.clone();
            self.go_step(inputs);
            return Ok(());
        }
        if let Answer::Unable(why) = &answer {
            let who = if side == 0 {
                "the provider"
            } else {
                "the verifier"
            };
            if self.phase == Phase::Inputs && self.answers[1 - side].is_none() {
                // The other party may still reveal them.
                self.answers[side] = Some(answer.clone());
                return Ok(());
            }
            self.go_full(format!("{who} could not answer ({why})"));
            return Ok(());
        }
        if let (0, Answer::Claim(claim)) = (side, &answer) {
            // The provider commits to its data trace now: its receipt may
            // state a calls-only trace (outputs by dtype and shape). The
            // commitment cannot help a wrong provider: the game finds the
            // first step where it differs from the verifier's trace
            // (committed in the signed verdict), and the arbiter recomputes
            // that step from inputs both traces agree on.
            self.roots[0] = trace::root_of(claim.steps, &claim.top);
        }
        self.answers[side] = Some(answer);
        if self.answers.iter().all(Option::is_some) {
            self.play();
        }
        Ok(())
    }

    /// The deadline passed with the question open.
    pub fn time_out(&mut self) {
        if !self.phase.asking() {
            return;
        }
        let missing: Vec<&str> = (0..2)
            .filter(|s| self.answers[*s].is_none())
            .map(|s| {
                if s == 0 {
                    "the provider"
                } else {
                    "the verifier"
                }
            })
            .collect();
        self.go_full(format!(
            "{} did not answer `{}` in time",
            missing.join(" and "),
            self.phase.as_str()
        ));
    }

    /// The arbiter's verdict decided it.
    pub fn decided(&mut self) {
        self.phase = Phase::Decided;
    }

    /// The arbiter could not recompute the step: it re-executes instead.
    pub fn step_failed(&mut self, why: &str) {
        if self.phase == Phase::Step {
            self.note = format!("{}; the step could not be recomputed ({why})", self.note);
            self.phase = Phase::Full;
        }
    }

    fn go_full(&mut self, why: String) {
        self.note = why;
        self.phase = Phase::Full;
        self.answers = [None, None];
    }

    fn go_step(&mut self, inputs: Vec<RevealedInput>) {
        let Some((index, call, outputs)) = self.divergence.clone() else {
            self.go_full("evidence without a divergence".into());
            return;
        };
        self.note = format!(
            "step {index} ({}) after {} rounds",
            call_name(&call),
            self.rounds
        );
        self.hand_to_arbiter(StepToRecompute {
            kind: StepKind::Output,
            index,
            call,
            calls: [None, None],
            outputs,
            roots: self.roots,
            inputs,
        });
    }

    /// The game is over: the arbiter decides `step`.
    fn hand_to_arbiter(&mut self, step: StepToRecompute) {
        self.step = Some(step);
        self.phase = Phase::Step;
        self.answers = [None, None];
    }

    fn ask(&mut self, question: Question) {
        self.phase = question.phase;
        self.question = question;
        self.answers = [None, None];
    }

    fn ask_query(&mut self, q: Query) {
        match q {
            Query::Node { level, index } => self.ask(Question {
                phase: Phase::Node,
                level,
                index,
                steps: Vec::new(),
            }),
            Query::Leaf { index } => self.ask(Question {
                phase: Phase::Leaf,
                level: 0,
                index,
                steps: Vec::new(),
            }),
        }
    }

    /// Both answered: the next question, or the end of the game.
    fn play(&mut self) {
        let answers = std::mem::take(&mut self.answers);
        match (self.phase, answers) {
            (Phase::Claim, [Some(Answer::Claim(a)), Some(Answer::Claim(b))]) => {
                let party = |i: usize, claim: Claim| Party {
                    id: self.parties[i],
                    trace_root: self.roots[i],
                    claim,
                };
                match Bisection::open(self.dispute, party(0, a), party(1, b)) {
                    Opening::Game(g) => {
                        let q = g.query();
                        self.bisection = Some(*g);
                        self.ask_query(q);
                    }
                    Opening::Agree => self.go_full(
                        "the traces agree: the difference is not in a host call's output".into(),
                    ),
                    Opening::Forfeit(side, why) => self.go_full(forfeit(side, &why)),
                }
            }
            (Phase::Node, [Some(Answer::Node(a)), Some(Answer::Node(b))]) => {
                let Some(game) = self.bisection.as_mut() else {
                    return self.go_full("a node round without a game".into());
                };
                match game.reveal_nodes(&a, &b) {
                    Ok(Progress::Continue) => {
                        self.rounds = game.rounds();
                        let q = game.query();
                        self.ask_query(q);
                    }
                    Ok(Progress::Forfeit(side, why)) => self.go_full(forfeit(side, &why)),
                    Err(e) => self.go_full(e.to_string()),
                }
            }
            (Phase::Leaf, [Some(Answer::Leaf(a)), Some(Answer::Leaf(b))]) => {
                let Some(game) = self.bisection.as_ref() else {
                    return self.go_full("a leaf round without a game".into());
                };
                match game.judge_leaves(a.as_ref(), b.as_ref()) {
                    Ok(Divergence::Output {
                        index,
                        call,
                        outputs,
                    }) => self.settle_output(index, &call, outputs),
                    Ok(Divergence::Call {
                        index,
                        calls,
                        reason,
                    }) => self.settle_call(index, calls, &reason),
                    Ok(Divergence::Forfeit(side, why)) => self.go_full(forfeit(side, &why)),
                    Err(e) => self.go_full(e.to_string()),
                }
            }
            (phase, _) => self.go_full(format!("answers that do not fit `{}`", phase.as_str())),
        }
    }

    /// The guest's code diverged at `index`: the arbiter re-runs it up to
    /// there and sees which call it makes.
    fn settle_call(&mut self, index: u64, calls: [Option<Vec<u8>>; 2], reason: &str) {
        if calls[0] == calls[1] {
            // Both signed the same undecodable call: no run makes it.
            return self.go_full(format!("step {index}: {reason}"));
        }
        let names = calls
            .iter()
            .map(|c| {
                c.as_deref()
                    .map_or_else(|| "its trace ended".into(), call_name)
            })
            .collect::<Vec<_>>();
        self.note = format!(
            "the guest's calls at step {index} ({} against {}) after {} rounds",
            names[0], names[1], self.rounds
        );
        let outputs = [
            trace::call_digest(calls[0].as_deref()),
            trace::call_digest(calls[1].as_deref()),
        ];
        self.hand_to_arbiter(StepToRecompute {
            kind: StepKind::Call,
            index,
            call: Vec::new(),
            calls,
            outputs,
            roots: self.roots,
            inputs: Vec::new(),
        });
    }

    fn settle_output(&mut self, index: u64, call: &Call, outputs: [Hash32; 2]) {
        if UNREPLAYABLE.contains(&call.name.as_str()) {
            return self.go_full(format!(
                "step {index} is an upload ({}): its data came from the guest",
                call.name
            ));
        }
        self.divergence = Some((index, call.encode(), outputs));
        let mut steps = call.inputs.clone();
        steps.sort_unstable();
        steps.dedup();
        if steps.iter().any(|s| *s >= index) {
            return self.go_full(format!(
                "step {index} names an input that is not an earlier step"
            ));
        }
        if steps.is_empty() {
            self.go_step(Vec::new());
        } else {
            self.ask(Question {
                phase: Phase::Inputs,
                level: 0,
                index,
                steps,
            });
        }
    }
}

fn forfeit(side: trace::Side, why: &str) -> String {
    let who = match side {
        trace::Side::A => "the provider",
        trace::Side::B => "the verifier",
    };
    format!("{who}'s answer did not verify ({why})")
}

/// The WIT name in call bytes, for people.
pub fn call_name(call: &[u8]) -> String {
    Call::decode(call).map_or_else(|_| "?".into(), |c| c.name)
}

/// The evidence of one input, in the form [`trace::InputEvidence::check`]
/// takes (the tensor's bytes read from its blob).
pub fn evidence(input: &RevealedInput, bytes: Vec<u8>) -> Result<trace::InputEvidence, String> {
    let dtype = trace::Dtype::from_code(input.dtype)
        .ok_or_else(|| format!("step {}: no dtype {}", input.step, input.dtype))?;
    Ok(trace::InputEvidence {
        call: input.call.clone(),
        proof: trace::InclusionProof {
            index: input.step,
            steps: input.trace_steps,
            siblings: input.siblings.clone(),
        },
        tensor: trace::RevealedTensor {
            dtype,
            shape: input.shape.clone(),
            bytes,
        },
    })
}

/// Checks revealed inputs against the question (one per asked step) — the
/// tensors themselves are checked by [`trace::InputEvidence::check`] — and
/// orders them as the call names its inputs.
///
/// # Errors
///
/// Why the answer does not fit.
pub fn order_inputs(call: &[u8], revealed: &[RevealedInput]) -> Result<Vec<RevealedInput>, String> {
    let call = Call::decode(call).map_err(|e| e.to_string())?;
    call.inputs
        .iter()
        .map(|step| {
            revealed
                .iter()
                .find(|r| r.step == *step)
                .cloned()
                .ok_or_else(|| format!("no tensor for step {step}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_protocol::NodeKey;
    use assay_protocol::trace::{Attr, Step, TraceTree, step_leaf, tensor_digest};

    struct Traced {
        key: NodeKey,
        steps: Vec<Step>,
        tree: TraceTree,
    }

    fn traced(seed: u8, steps: Vec<Step>) -> Traced {
        let leaves = steps
            .iter()
            .enumerate()
            .map(|(i, s)| step_leaf(i as u64, &s.call, &s.output))
            .collect();
        Traced {
            key: NodeKey::from_seed([seed; 32]),
            steps,
            tree: TraceTree::new(leaves),
        }
    }

    /// Ten steps: a fill, then scales of the previous step.
    fn honest() -> Vec<Step> {
        (0..10u64)
            .map(|i| {
                let call = if i == 0 {
                    Call::new(
                        "tensor.fill",
                        vec![],
                        vec![Attr::U32s(vec![2]), Attr::f32(1.0)],
                    )
                } else {
                    Call::new("tensor.scale", vec![i - 1], vec![Attr::f32(2.0)])
                };
                Step {
                    call: call.encode(),
                    output: tensor_digest(trace::Dtype::F32, &[2], &i.to_le_bytes()),
                }
            })
            .collect()
    }

    fn play(game: &mut Game, parties: &[&Traced; 2]) {
        for _ in 0..64 {
            if !game.phase.asking() || game.phase == Phase::Inputs {
                return;
            }
            for (side, p) in parties.iter().enumerate() {
                let q = game.question.clone();
                let a = match q.phase {
                    Phase::Claim => Answer::Claim(p.tree.claim()),
                    Phase::Node => {
                        Answer::Node(p.tree.reveal_node(&p.key, &game.dispute, q.level, q.index))
                    }
                    Phase::Leaf => Answer::Leaf(
                        p.steps
                            .get(q.index as usize)
                            .map(|s| LeafReveal::sign(&p.key, &game.dispute, q.index, s)),
                    ),
                    _ => unreachable!(),
                };
                game.answer(side, a).expect("fits");
            }
        }
    }

    fn game_of(a: &Traced, b: &Traced) -> Game {
        Game::open(
            Hash32([7; 32]),
            [a.key.id(), b.key.id()],
            [a.tree.root(), b.tree.root()],
        )
    }

    #[test]
    fn a_wrong_output_is_bisected_to_its_step_and_its_inputs_asked() {
        let a = traced(1, honest());
        let mut wrong = honest();
        wrong[6].output = Hash32([9; 32]);
        let b = traced(2, wrong);
        let mut g = game_of(&a, &b);
        play(&mut g, &[&a, &b]);
        assert_eq!(g.phase, Phase::Inputs, "{}", g.note);
        assert_eq!(g.question.steps, vec![5]);
        assert_eq!(g.rounds, 4, "⌈log₂ 10⌉ node rounds");
        let (index, _, outputs) = g.divergence.clone().expect("divergence");
        assert_eq!((index, outputs[1]), (6, Hash32([9; 32])));
        // One party cannot reveal; the other can: the step goes on.
        g.answer(1, Answer::Unable("gone".into())).expect("fits");
        assert_eq!(g.phase, Phase::Inputs);
        let input = RevealedInput {
            step: 5,
            call: a.steps[5].call.clone(),
            trace_steps: 10,
            siblings: Vec::new(),
            dtype: 0,
            shape: vec![2],
            blob: Hash32::ZERO,
            size: 8,
        };
        g.answer(0, Answer::Inputs(vec![input])).expect("fits");
        assert_eq!(g.phase, Phase::Step);
        let step = g.step.as_ref().expect("step");
        assert_eq!((step.index, step.inputs.len()), (6, 1));
        assert!(g.note.contains("tensor.scale"), "{}", g.note);
        assert!(g.revealed_bytes > 0);
    }

    #[test]
    fn a_step_without_tensor_inputs_goes_to_the_arbiter_at_once() {
        let a = traced(1, honest());
        let mut wrong = honest();
        wrong[0].output = Hash32([9; 32]);
        let b = traced(2, wrong);
        let mut g = game_of(&a, &b);
        play(&mut g, &[&a, &b]);
        assert_eq!(g.phase, Phase::Step, "{}", g.note);
        assert!(
            g.step
                .as_ref()
                .is_some_and(|s| s.index == 0 && s.inputs.is_empty())
        );
    }

    #[test]
    fn what_one_step_cannot_settle_goes_to_a_full_re_execution() {
        // The same trace: the difference is elsewhere.
        let a = traced(1, honest());
        let b = traced(2, honest());
        let mut g = game_of(&a, &b);
        play(&mut g, &[&a, &b]);
        assert_eq!(g.phase, Phase::Full);
        assert!(g.note.contains("agree"), "{}", g.note);
        // An upload: its data came from the guest.
        let mut other = honest();
        other[0] = Step {
            call: Call::new("tensor.upload-f32", vec![], vec![Attr::U32s(vec![2])]).encode(),
            output: Hash32([1; 32]),
        };
        let mut first = honest();
        first[0] = Step {
            call: other[0].call.clone(),
            output: Hash32([2; 32]),
        };
        let (a2, b) = (traced(1, first), traced(2, other));
        let mut g = game_of(&a2, &b);
        play(&mut g, &[&a2, &b]);
        assert_eq!(g.phase, Phase::Full);
        assert!(g.note.contains("upload"), "{}", g.note);
        // The verifier's claim must be the root its verdict signed (the
        // provider's is its commitment: its receipt may be calls-only).
        let b = traced(2, honest()[..9].to_vec());
        let mut g = game_of(&a, &b);
        g.roots[0] = Hash32([2; 32]);
        g.roots[1] = Hash32([1; 32]);
        play(&mut g, &[&a, &b]);
        assert_eq!(g.phase, Phase::Full);
        assert!(
            g.note.contains("the verifier's answer did not verify"),
            "{}",
            g.note
        );
        // A party that cannot answer, and one that does not in time.
        let mut g = game_of(&a, &b);
        g.answer(0, Answer::Unable("restarted".into()))
            .expect("fits");
        assert_eq!(g.phase, Phase::Full);
        let mut g = game_of(&a, &b);
        g.answer(0, Answer::Claim(a.tree.claim())).expect("fits");
        g.time_out();
        assert_eq!(g.phase, Phase::Full);
        assert!(
            g.note.starts_with("the verifier did not answer"),
            "{}",
            g.note
        );
    }

    #[test]
    fn different_calls_send_the_arbiter_to_re_run_the_guest_up_to_them() {
        let a = traced(1, honest());
        let mut other = honest();
        other[3].call = Call::new("tensor.scale", vec![2], vec![Attr::f32(3.0)]).encode();
        let b = traced(2, other.clone());
        let mut g = game_of(&a, &b);
        play(&mut g, &[&a, &b]);
        assert_eq!(g.phase, Phase::Step, "{}", g.note);
        let step = g.step.clone().expect("step");
        assert_eq!((step.kind, step.index), (StepKind::Call, 3));
        assert_eq!(
            step.calls,
            [Some(honest()[3].call.clone()), Some(other[3].call.clone())]
        );
        assert_eq!(step.outputs[0], trace::call_digest(Some(&honest()[3].call)));
        assert!(step.inputs.is_empty());
        assert!(g.note.contains("calls at step 3"), "{}", g.note);
        // A trace that ends early: its side states no call.
        let b = traced(2, honest()[..7].to_vec());
        let mut g = game_of(&a, &b);
        play(&mut g, &[&a, &b]);
        let step = g.step.clone().expect("step");
        assert_eq!((step.kind, step.index), (StepKind::Call, 7));
        assert_eq!(step.outputs[1], trace::call_digest(None));
        assert!(g.note.contains("its trace ended"), "{}", g.note);
    }

    #[test]
    fn an_answer_out_of_turn_changes_nothing() {
        let a = traced(1, honest());
        let b = traced(2, honest());
        let mut g = game_of(&a, &b);
        let before = g.clone();
        let node = a.tree.reveal_node(&a.key, &g.dispute, 1, 0);
        assert!(g.answer(0, Answer::Node(node)).is_err());
        assert!(g.answer(2, Answer::Claim(a.tree.claim())).is_err());
        assert_eq!(g, before);
        g.answer(0, Answer::Claim(a.tree.claim())).expect("fits");
        assert!(
            g.answer(0, Answer::Claim(a.tree.claim())).is_err(),
            "answered twice"
        );
    }

    #[test]
    fn inputs_are_ordered_as_the_call_names_them() {
        let call = Call::new("tensor.matmul", vec![4, 2], vec![]).encode();
        let r = |step| RevealedInput {
            step,
            call: Vec::new(),
            trace_steps: 5,
            siblings: Vec::new(),
            dtype: 0,
            shape: Vec::new(),
            blob: Hash32::ZERO,
            size: 0,
        };
        let ordered = order_inputs(&call, &[r(2), r(4)]).expect("ordered");
        assert_eq!(
            ordered.iter().map(|x| x.step).collect::<Vec<_>>(),
            vec![4, 2]
        );
        assert!(order_inputs(&call, &[r(2)]).is_err());
    }
}
